"""The torch Datasets every dataset file builds on: one modality of one split, labelled.

Items are dicts with fixed keys: the modality's sample (``image`` tensor or ``audio`` raw
waveform; front-ends run on the device inside the method), ``label`` (a shared class id) and
``index`` (the row, so evaluation features stay keyed by dataset index under DDP).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from assoc_lightning.data.errors import DatasetCorruptError


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

    def load_same_class(self, index: int) -> torch.Tensor:
        """Item ``index``'s sample, or (file-backed sets) a readable one of the same class in
        its place: what a class pair needs to stay a pair of one class."""
        return self.load(index)

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

    def readable(self, index: int, same_class: bool = False) -> tuple[int, torch.Tensor]:
        """``(row, sample)``: ``index`` itself, or the next readable row if it is corrupt (with
        ``same_class``, the next readable row of the same label)."""
        label = self.labels[index]
        for step in range(len(self)):
            i = (index + step) % len(self)
            if i in self.corrupt or (same_class and self.labels[i] != label):
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
        what = f"class {label}" if same_class else "this split"
        raise DatasetCorruptError(
            type(self).__name__, f"at least one readable file of {what}", "every one is corrupt"
        )

    def load(self, index: int) -> torch.Tensor:
        return self.readable(index)[1]

    def load_same_class(self, index: int) -> torch.Tensor:
        return self.readable(index, same_class=True)[1]

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
