"""Shared data layer: data_dir resolution, dict batches, class-conditional pairing, eval sets.

Every dataset item is a dict with fixed keys: ``image`` and/or ``audio`` (raw waveform; the
front-end runs on the device inside the method), ``label``, ``index`` and, for pairs,
``pair_id``. Training batches are pairs; evaluation callbacks ask the datamodule for
single-modality eval sets (``eval_dataset(split, modality)``) and build their own loaders.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, Dataset

from assoc_lightning.data.errors import DatasetCorruptError

SPLITS = ("train", "val", "test")
MODALITIES = ("image", "audio")


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """The argument if given, else ``$ASSOC_DATA_DIR``, else ``$XDG_CACHE_HOME/assoc/data``."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("ASSOC_DATA_DIR"):
        return Path(os.environ["ASSOC_DATA_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "assoc" / "data"


class LabeledDataset(Dataset):
    """One modality of one split: ``labels`` (shared class ids) and a ``load(i)`` for the sample.

    Subclasses implement :meth:`load`; items come out as ``{modality, "label", "index"}``.
    """

    modality: str = ""

    def __init__(self, labels: Sequence[int] | np.ndarray) -> None:
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        return {
            self.modality: self.load(index),
            "label": int(self.labels[index]),
            "index": index,
        }


class SkipCorruptDataset(LabeledDataset):
    """A file-backed dataset that survives corrupt files.

    Subclasses implement :meth:`read`. A file that raises ``DatasetCorruptError`` is skipped:
    a warning names it once, it is counted in ``num_corrupt``, and the next readable item is
    returned in its place, so a long run never stops on one bad file. ``skip_corrupt=False``
    raises instead.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, skip_corrupt: bool = True) -> None:
        super().__init__(labels)
        self.skip_corrupt = skip_corrupt
        self.corrupt: set[int] = set()

    @property
    def num_corrupt(self) -> int:
        """Corrupt files met so far (in this process)."""
        return len(self.corrupt)

    def read(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def readable(self, index: int) -> tuple[int, torch.Tensor]:
        """``(row, sample)``: ``index`` itself, or the next readable row if it is corrupt."""
        for step in range(len(self)):
            i = (index + step) % len(self)
            if i in self.corrupt:
                continue
            try:
                return i, self.read(i)
            except DatasetCorruptError as err:
                if not self.skip_corrupt:
                    raise
                self.corrupt.add(i)
                warnings.warn(
                    f"skipping corrupt file ({self.num_corrupt} so far in this split): {err}",
                    stacklevel=2,
                )
        raise DatasetCorruptError(type(self).__name__, "at least one readable file", "none")

    def load(self, index: int) -> torch.Tensor:
        return self.readable(index)[1]

    def __getitem__(self, index: int) -> dict:
        # a replacement keeps the requested index (so feature banks stay complete) but carries
        # the label of the row actually read
        row, sample = self.readable(index)
        return {self.modality: sample, "label": int(self.labels[row]), "index": index}


class TensorLabeledDataset(LabeledDataset):
    """A modality held in memory as one tensor (small datasets such as the embedded images)."""

    def __init__(self, modality: str, data: torch.Tensor, labels: Sequence[int]) -> None:
        super().__init__(labels)
        if len(data) != len(self.labels):
            raise ValueError(f"{len(data)} samples but {len(self.labels)} labels")
        self.modality = modality
        self.data = data

    def load(self, index: int) -> torch.Tensor:
        return self.data[index]


class ClassPairedDataset(Dataset):
    """Pairs each image with an audio clip of the same class.

    ``fixed=False`` draws the partner at random on every access (a new pairing each epoch,
    reproducible through the seeded global / worker RNG); ``fixed=True`` uses one pairing
    drawn once from ``seed`` (for validation and test). Item: ``{"image", "audio", "label",
    "index", "pair_id", "audio_index"}`` with ``index`` = ``pair_id`` = the image's index.
    """

    def __init__(
        self, image: LabeledDataset, audio: LabeledDataset, fixed: bool, seed: int = 0
    ) -> None:
        self.image, self.audio, self.fixed = image, audio, fixed
        self.by_class = {
            c: np.flatnonzero(audio.labels == c) for c in np.unique(image.labels).tolist()
        }
        empty = [c for c, idx in self.by_class.items() if idx.size == 0]
        if empty:
            raise ValueError(f"classes {empty} have images but no audio clips to pair with")
        self.partner = None
        if fixed:
            rng = np.random.default_rng(seed)
            self.partner = np.array([rng.choice(self.by_class[int(c)]) for c in image.labels])

    def __len__(self) -> int:
        return len(self.image)

    def __getitem__(self, index: int) -> dict:
        label = int(self.image.labels[index])
        if self.partner is not None:
            j = int(self.partner[index])
        else:
            candidates = self.by_class[label]
            j = int(candidates[torch.randint(len(candidates), ()).item()])
        return {
            "image": self.image.load(index),
            "audio": self.audio.load(j),
            "label": label,
            "index": index,
            "pair_id": index,
            "audio_index": j,
        }


class AssocDataModule(LightningDataModule):
    """Base datamodule: data_dir, batch sizes, loaders, and single-modality eval sets.

    Subclasses fill ``self.paired[split]`` (a paired dataset per split) and
    ``self.unpaired[split][modality]`` (a :class:`LabeledDataset`) in ``setup``.

    Args:
        data_dir: where datasets live or are generated; ``None`` -> ``$ASSOC_DATA_DIR`` ->
            ``~/.cache/assoc/data``.
        batch_size: pairs per batch (per device) in training, and in the validation/test loss
            loops so that losses whose negatives come from the batch stay comparable.
        eval_batch_size: items per batch when evaluation callbacks embed a split.
        num_workers: DataLoader worker processes.
        seed: seed for fixed validation/test pairings and any data-side sampling.
    """

    modalities: tuple[str, ...] = MODALITIES
    num_classes: int = 0
    class_names: tuple[str, ...] = ()

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.data_dir = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.paired: dict[str, Dataset] = {}
        self.unpaired: dict[str, dict[str, LabeledDataset]] = {}

    def _loader(self, dataset: Dataset, train: bool) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.paired["train"], train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.paired["val"], train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.paired["test"], train=False)

    def pair_dataset(self, split: str) -> Dataset:
        """The fixed pairs of ``split`` (validation/test), for cross-modal retrieval."""
        if split not in self.paired:
            raise KeyError(
                f"split {split!r} is not set up; call setup() first (have {list(self.paired)})"
            )
        return self.paired[split]

    def eval_dataset(self, split: str, modality: str) -> LabeledDataset:
        """The whole ``split`` of one modality, with evaluation transforms, for callbacks."""
        if split not in self.unpaired:
            raise KeyError(
                f"split {split!r} is not set up; call setup() first (have {list(self.unpaired)})"
            )
        return self.unpaired[split][modality]
