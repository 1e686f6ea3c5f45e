"""Zero-shot audio <-> image retrieval sets as datamodules: AVE and Flickr-SoundNet (C-MCR's
Table 1). Pairs and their single-modality views come from ``data/datasets/{ave,flickr_soundnet}.py``.
"""

from __future__ import annotations

from torch.utils.data import DataLoader

from assoc_lightning.data.base import SPLITS, AssocDataModule
from assoc_lightning.data.datasets.av_pairs import AVPairs
from assoc_lightning.data.datasets.ave import AVEPairs
from assoc_lightning.data.datasets.flickr_soundnet import FlickrSoundNetPairs
from assoc_lightning.errors import ConfigError


class PairSetDataModule(AssocDataModule):
    """Base of the fixed-pair retrieval sets: how their images and sounds are read.

    Args:
        image_size: side of the square uint8 image.
        sample_rate: audio output rate (48 kHz: CLAP's).
        clip_seconds: audio length (AVE: zero-padded or cropped; Flickr-SoundNet: looped).
        skip_corrupt: skip undecodable files (counted, warned) instead of raising.
        **kwargs: data_dir, batch_size, eval_batch_size, num_workers, seed (AssocDataModule).
    """

    def __init__(
        self,
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        skip_corrupt: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.pair_options = {
            "image_size": image_size,
            "sample_rate": sample_rate,
            "clip_seconds": clip_seconds,
            "skip_corrupt": skip_corrupt,
        }

    def fill(self, split: str, pairs: AVPairs) -> None:
        """``split``'s fixed pairs and their single-modality views (same rows and indices)."""
        self.paired[split] = pairs
        self.unpaired[split] = {m: pairs.view(m) for m in ("image", "audio")}


class AVERetrievalDataModule(PairSetDataModule):
    """AVE as fixed pairs for zero-shot retrieval (and, if wanted, training) per split.

    Fills ``paired`` and ``unpaired`` for ``train``/``val``/``test`` from the official lists.
    ``test_split="all"`` makes ``test`` every annotated video that is present (the C-MCR
    paper's protocol: 4,095 available of 4,143); the default is the official ``testSet.txt``.

    Args:
        test_split: ``test`` or ``all``.
        **kwargs: how pairs are read (``PairSetDataModule``) and AssocDataModule's arguments.
    """

    def __init__(self, test_split: str = "test", **kwargs) -> None:
        super().__init__(**kwargs)
        if test_split not in ("test", "all"):
            raise ConfigError(f"test_split must be 'test' or 'all', got {test_split!r}")
        self.test_split = test_split

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        for split in SPLITS:
            source = self.test_split if split == "test" else split
            pairs = AVEPairs(self.data_dir, source, **self.pair_options)
            self.fill(split, pairs)
        self.class_names = pairs.categories
        self.num_classes = len(pairs.categories)


class FlickrSoundNetDataModule(PairSetDataModule):
    """Flickr-SoundNet as fixed pairs for zero-shot retrieval: a ``test`` split only.

    There is no train or validation split (use ``assoc test``); ``val`` is not filled with the
    test pairs so that no model selection can silently run on the test set. Labels are all 0
    (``num_classes`` = 0: class-based evaluations do not apply).

    Args:
        layout, subset: as in :class:`FlickrSoundNetPairs`.
        gt_map: the pairs also carry ``gt_map``, the consensus map of their Senocak boxes
            (needs ``Annotations/<id>.xml`` beside the pairs), so the localization
            evaluation reports cIoU and AUC on them (use ``image_size`` 256, the boxes'
            frame).
        **kwargs: how pairs are read (``PairSetDataModule``) and AssocDataModule's arguments.
    """

    def __init__(
        self, layout: str = "auto", subset: str = "list", gt_map: bool = False, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.layout, self.subset, self.gt_map = layout, subset, gt_map

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        pairs = FlickrSoundNetPairs(
            self.data_dir, self.layout, self.subset, gt_map=self.gt_map, **self.pair_options
        )
        self.fill("test", pairs)

    def _test_only(self) -> DataLoader:
        raise ConfigError(
            "Flickr-SoundNet has only a test split (zero-shot retrieval): run `assoc test`, "
            "or evaluate it with val_split/final_split 'test'"
        )

    def train_dataloader(self) -> DataLoader:
        return self._test_only()

    def val_dataloader(self) -> DataLoader:
        return self._test_only()
