"""Zero-shot audio <-> image retrieval sets as datamodules: AVE and Flickr-SoundNet (C-MCR's
Table 1). Pairs and their single-modality views come from ``data/datasets/{ave,flickr_soundnet}.py``.
"""

from __future__ import annotations

from torch.utils.data import DataLoader

from assoc_lightning.data.base import SPLITS, AssocDataModule
from assoc_lightning.data.datasets.av_pairs import AVPairs
from assoc_lightning.data.datasets.ave import AVEPairs
from assoc_lightning.data.datasets.flickr_soundnet import FlickrSoundNetPairs


def _fill(dm: AssocDataModule, split: str, pairs: AVPairs) -> None:
    dm.paired[split] = pairs
    dm.unpaired[split] = {m: pairs.view(m) for m in ("image", "audio")}


class AVERetrievalDataModule(AssocDataModule):
    """AVE as fixed pairs for zero-shot retrieval (and, if wanted, training) per split.

    Fills ``paired`` and ``unpaired`` for ``train``/``val``/``test`` from the official lists.
    ``test_split="all"`` makes ``test`` every annotated video that is present (the C-MCR
    paper's protocol: 4,095 available of 4,143); the default is the official ``testSet.txt``.

    Args (besides :class:`AssocDataModule`'s): image_size, sample_rate, clip_seconds,
    skip_corrupt as in :class:`AVEPairs`; test_split: ``test`` or ``all``.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        test_split: str = "test",
        skip_corrupt: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, eval_batch_size, num_workers, seed)
        if test_split not in ("test", "all"):
            raise ValueError(f"test_split must be 'test' or 'all', got {test_split!r}")
        self.image_size, self.sample_rate = image_size, sample_rate
        self.clip_seconds, self.test_split = clip_seconds, test_split
        self.skip_corrupt = skip_corrupt

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        for split in SPLITS:
            pairs = AVEPairs(
                self.data_dir,
                self.test_split if split == "test" else split,
                self.image_size,
                self.sample_rate,
                self.clip_seconds,
                self.skip_corrupt,
            )
            _fill(self, split, pairs)
        self.class_names = pairs.categories
        self.num_classes = len(pairs.categories)


class FlickrSoundNetDataModule(AssocDataModule):
    """Flickr-SoundNet as fixed pairs for zero-shot retrieval: a ``test`` split only.

    There is no train or validation split (use ``assoc test``); ``val`` is not filled with the
    test pairs so that no model selection can silently run on the test set. Labels are all 0
    (``num_classes`` = 0: class-based evaluations do not apply).

    Args (besides :class:`AssocDataModule`'s): layout, subset, image_size, sample_rate,
    clip_seconds, skip_corrupt as in :class:`FlickrSoundNetPairs`.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        layout: str = "auto",
        subset: str = "list",
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        skip_corrupt: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, eval_batch_size, num_workers, seed)
        self.layout, self.subset = layout, subset
        self.image_size, self.sample_rate = image_size, sample_rate
        self.clip_seconds, self.skip_corrupt = clip_seconds, skip_corrupt

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        pairs = FlickrSoundNetPairs(
            self.data_dir,
            self.layout,
            self.subset,
            self.image_size,
            self.sample_rate,
            self.clip_seconds,
            self.skip_corrupt,
        )
        _fill(self, "test", pairs)

    def _test_only(self) -> DataLoader:
        raise ValueError(
            "Flickr-SoundNet has only a test split (zero-shot retrieval): run `assoc test`, "
            "or evaluate it with val_split/final_split 'test'"
        )

    def train_dataloader(self) -> DataLoader:
        return self._test_only()

    def val_dataloader(self) -> DataLoader:
        return self._test_only()
