"""C-MCR's datamodules: captions as the overlapping modality, unpaired memories, loaders.

C-MCR trains from embedding caches, so a training batch is just a set of caption indices
(``{"index": LongTensor[B]}``); the method looks the cached embeddings up. Besides the usual
evaluation sets, a C-MCR datamodule offers what ``data/protocols.py: CaptionMemoryData``
declares:

- ``captions``: every caption text; ``caption_split[split]``: the indices used by that split's
  loader (held-out captions give a validation loss);
- ``memory(modality)``: the unpaired image / audio memory, items ``{modality, "label", "index"}``;
- ``cache_dir``: where embedding caches and locally trained towers go;
- ``fingerprint``: a short string that changes whenever the captions or memories change.

The offline default (:class:`CMCRDigitsDataModule`) also offers ``space_training_data`` to
train its two local stand-in spaces (``data/protocols.py: SpaceTrainingData``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.datamodules.digits import DigitsDataModule
from assoc_lightning.data.datamodules.retrieval import (
    AVERetrievalDataModule,
    FlickrSoundNetDataModule,
)
from assoc_lightning.data.datasets.audioset import AudioSetClips
from assoc_lightning.data.datasets.captions import CaptionIndexDataset, split_captions
from assoc_lightning.data.datasets.digit_captions import (
    AUDITORY,
    VISUAL,
    all_digit_captions,
    digit_captions,
)
from assoc_lightning.data.datasets.digits import IMAGE_SPLIT_FILE
from assoc_lightning.data.datasets.image_folder import ImageFolderImages
from assoc_lightning.data.io.captions import read_captions
from assoc_lightning.errors import ConfigError


def _identity(batch):
    return batch


def caption_loader(
    indices: np.ndarray, batch_size: int, train: bool, num_workers: int = 0
) -> DataLoader:
    """Batches of caption indices (shuffled and full in training)."""
    return DataLoader(
        CaptionIndexDataset(indices),
        batch_size=batch_size,
        shuffle=train,
        drop_last=train and len(indices) >= batch_size,
        num_workers=num_workers,
        collate_fn=_identity,
    )


class CaptionLoaders:
    """Mixin for C-MCR datamodules: caption-index loaders instead of pair loaders."""

    batch_size: int
    num_workers: int
    captions: list[str]
    caption_split: dict[str, np.ndarray]
    data_dir: Path

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache" / "cmcr"

    def train_dataloader(self) -> DataLoader:
        return caption_loader(self.caption_split["train"], self.batch_size, True, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        return caption_loader(self.caption_split["val"], self.batch_size, False, self.num_workers)

    def test_dataloader(self) -> DataLoader:
        return caption_loader(self.caption_split["test"], self.batch_size, False, self.num_workers)


class CMCRDataModule(CaptionLoaders, AssocDataModule):
    """C-MCR on real data: caption files, an image-folder memory, an AudioSet memory, and a
    zero-shot retrieval set (AVE or Flickr-SoundNet) for evaluation.

    The paper: 2.33M captions (COCO, CC3M, MSR-VTT, MAD, AudioCaps, Clotho), ImageNet-1K train
    as the image memory (1.3M), AudioSet train as the audio memory (1.8M), evaluation on AVE
    (all 4,095 available videos) and Flickr-SoundNet (5k). Images come out uint8 ``[3, S, S]``
    (the CLIP tower normalizes), audio float at ``sample_rate`` (48 kHz for CLAP).

    Args:
        captions: caption files or glob patterns (txt, COCO json, AudioCaps / Clotho csv, ...).
        image_memory: an ImageNet-style folder (``<root>/<class>/<image>``).
        audio_memory: the AudioSet folder (PANNs wav folders or hdf5 packs).
        audio_memory_split: ``train`` (balanced + unbalanced, the paper), ``balanced_train``, ...
        retrieval: ``ave`` or ``flickr``: the set behind ``test`` (and ``val`` for AVE).
        retrieval_root: its folder (default: ``data_dir``).
        ave_test_split: ``all`` (every available AVE video, the paper) or ``test``.
        image_size, sample_rate, clip_seconds: inputs as the towers expect them.
        caption_seed, held_out_captions: the held-out caption split (val / test loss).
        data_dir, batch_size, eval_batch_size, num_workers, seed: see ``AssocDataModule``.
    """

    def __init__(
        self,
        captions: list[str] | None = None,
        image_memory: str | None = None,
        audio_memory: str | None = None,
        audio_memory_split: str = "train",
        retrieval: str = "ave",
        retrieval_root: str | None = None,
        ave_test_split: str = "all",
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        caption_seed: int = 0,
        held_out_captions: float = 0.005,
        data_dir: str | None = None,
        batch_size: int = 10240,
        eval_batch_size: int = 64,
        num_workers: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__(data_dir, batch_size, eval_batch_size, num_workers, seed)
        if retrieval not in ("ave", "flickr"):
            raise ConfigError(f"retrieval must be 'ave' or 'flickr', got {retrieval!r}")
        self.caption_paths = captions or [str(self.data_dir / "captions" / "*")]
        self.image_root = Path(image_memory or self.data_dir / "imagenet" / "train")
        self.audio_root = Path(audio_memory or self.data_dir / "audioset")
        self.audio_memory_split = audio_memory_split
        self.retrieval = retrieval
        self.retrieval_root = retrieval_root or str(self.data_dir)
        self.ave_test_split = ave_test_split
        self.image_size, self.sample_rate, self.clip_seconds = image_size, sample_rate, clip_seconds
        self.caption_seed, self.held_out_captions = caption_seed, held_out_captions
        self.captions: list[str] = []
        self.caption_split: dict[str, np.ndarray] = {}
        self.memories: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.captions:
            return
        self.captions = read_captions(self.caption_paths)
        self.caption_split = split_captions(
            len(self.captions), self.caption_seed, self.held_out_captions
        )
        self.memories = {
            "image": ImageFolderImages(self.image_root, self.image_size),
            "audio": AudioSetClips(
                self.audio_root, self.audio_memory_split, self.sample_rate, self.clip_seconds
            ),
        }
        common = dict(
            data_dir=self.retrieval_root, image_size=self.image_size,
            sample_rate=self.sample_rate, clip_seconds=self.clip_seconds,
        )  # fmt: skip
        if self.retrieval == "ave":
            evalset = AVERetrievalDataModule(test_split=self.ave_test_split, **common)
        else:
            evalset = FlickrSoundNetDataModule(**common)
        evalset.setup(stage)
        self.paired, self.unpaired = evalset.paired, evalset.unpaired
        self.num_classes, self.class_names = evalset.num_classes, evalset.class_names

    @property
    def fingerprint(self) -> str:
        """Changes with the captions, the memory file lists and the input settings."""
        h = hashlib.sha1("\n".join(self.captions).encode())
        for name, mem in sorted(self.memories.items()):
            files = getattr(mem, "files", None) or getattr(mem, "ytids", [])
            h.update(
                f"{name}:{len(mem)}:{hashlib.sha1(str(list(files)).encode()).hexdigest()}".encode()
            )
        h.update(f"{self.image_size}:{self.sample_rate}:{self.clip_seconds}".encode())
        return h.hexdigest()[:16]

    def memory(self, modality: str) -> Dataset:
        return self.memories[modality]


class CMCRDigitsDataModule(CaptionLoaders, DigitsDataModule):
    """Captions + image memory + audio memory built from the embedded digits (C-MCR default).

    Args:
        batch_size: captions per training batch (the paper: 10,240 on 2.33M captions).
        caption_seed: seed of the caption train/val/test split (10% / 10% held out).
        num_speakers, generation_seed, test_voices, unseen_speakers, data_dir,
            eval_batch_size, num_workers, seed: see ``DigitsDataModule``.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 256,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        num_speakers: int = 240,
        generation_seed: int = 0,
        caption_seed: int = 0,
        test_voices: str = "seen",
        unseen_speakers: int = 40,
    ) -> None:
        super().__init__(
            num_speakers=num_speakers, generation_seed=generation_seed, data_dir=data_dir,
            batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers,
            seed=seed, test_voices=test_voices, unseen_speakers=unseen_speakers,
        )  # fmt: skip
        self.caption_seed = caption_seed
        self.captions: list[str] = []
        self.caption_labels = np.zeros(0, dtype=np.int64)
        self.caption_split: dict[str, np.ndarray] = {}

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.captions:
            return
        captions, labels = all_digit_captions()
        self.captions, self.caption_labels = captions, np.asarray(labels)
        self.caption_split = split_captions(len(captions), self.caption_seed)

    @property
    def fingerprint(self) -> str:
        manifest = (self.audio_root / "manifest.json").read_bytes()
        parts = [manifest, IMAGE_SPLIT_FILE.read_bytes(), "\n".join(self.captions).encode()]
        return hashlib.sha1(b"".join(parts)).hexdigest()[:16]

    def memory(self, modality: str):
        """The unpaired training memory of ``modality`` (no pairs are ever formed)."""
        return self.unpaired["train"][modality]

    def space_training_data(
        self, modality: str
    ) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """Inputs, labels and per-class captions to train the local ``modality``<->text space.

        Only training-split data and only the modality's own caption family (visual or
        auditory) are used, like CLIP never heard audio and CLAP never saw images.
        """
        data = self.unpaired["train"][modality]
        if modality == "image":
            inputs = data.data
        else:
            inputs = torch.stack([data.load(i) for i in range(len(data))])
        templates = VISUAL if modality == "image" else AUDITORY
        captions = [digit_captions(templates, d) for d in range(10)]
        return inputs, torch.as_tensor(data.labels), captions
