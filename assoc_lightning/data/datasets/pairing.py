"""Pairing by class: subsets and relabelling, the paired fraction, class-paired datasets.

Datasets that share no instances (MNIST and Speech Commands, say) are paired through their
classes: shared class k is one class of each dataset, and an anchor item is paired with a
random item of the same shared class from every other modality.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.errors import ConfigError


class LabeledSubset(LabeledDataset):
    """The ``rows`` of ``base``, labelled ``labels`` (default: their own labels)."""

    def __init__(self, base: LabeledDataset, rows: np.ndarray, labels=None) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        super().__init__(base.labels[rows] if labels is None else labels)
        self.modality, self.base, self.rows = base.modality, base, rows

    @classmethod
    def relabeled(cls, base: LabeledDataset, mapping: dict[int, int]) -> LabeledSubset:
        """The items of ``base`` whose label is in ``mapping``, relabelled through it."""
        rows = np.flatnonzero(np.isin(base.labels, list(mapping)))
        return cls(base, rows, [mapping[int(c)] for c in base.labels[rows]])

    def load(self, index: int) -> torch.Tensor:
        return self.base.load(int(self.rows[index]))

    def load_same_class(self, index: int) -> torch.Tensor:
        # relabelling maps whole classes, so the base's same class is this subset's too
        return self.base.load_same_class(int(self.rows[index]))

    def extras(self, index: int) -> dict:
        extras = getattr(self.base, "extras", None)
        return extras(int(self.rows[index])) if extras is not None else {}


def check_fraction(fraction: float) -> float:
    """``fraction`` itself if it is a valid paired fraction, in (0, 1]; else ValueError."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"paired_fraction must be in (0, 1], got {fraction}")
    return fraction


def stratified_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded indices keeping ``fraction`` of each class (at least one item per class)."""
    if check_fraction(fraction) == 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, max(1, int(round(fraction * idx.size))), replace=False))
    return np.sort(np.concatenate(keep))


class ClassPairedDataset(Dataset):
    """Each anchor item with one same-class partner from every other modality.

    ``fixed=False`` draws the partners at random on every access (a new pairing each epoch,
    reproducible through the seeded global / worker RNG); ``fixed=True`` uses one pairing
    drawn once from ``seed`` (for validation and test). Item: every modality, ``label``,
    ``index`` = ``pair_id`` = the anchor's index, ``<modality>_index`` for each partner, and
    the anchor's ``extras(index)`` keys if it has any (an ``ImageCanvas``'s target cell).
    A corrupt file is replaced by a readable item of the same class (``load_same_class``), so
    a pair always holds one class.
    """

    def __init__(
        self,
        anchor: LabeledDataset,
        partners: dict[str, LabeledDataset],
        fixed: bool,
        seed: int = 0,
    ) -> None:
        self.anchor, self.partners = anchor, partners
        classes = np.unique(anchor.labels).tolist()
        self.by_class = {
            m: {c: np.flatnonzero(ds.labels == c) for c in classes} for m, ds in partners.items()
        }
        for m, by_class in self.by_class.items():
            empty = [c for c, idx in by_class.items() if idx.size == 0]
            if empty:
                raise ConfigError(
                    f"classes {empty} have {anchor.modality} items but no {m} items to pair with"
                )
        self.partner = None
        if fixed:
            rng = np.random.default_rng(seed)
            self.partner = {
                m: np.array([rng.choice(self.by_class[m][int(c)]) for c in anchor.labels])
                for m in partners
            }

    def __len__(self) -> int:
        return len(self.anchor)

    def __getitem__(self, index: int) -> dict:
        label = int(self.anchor.labels[index])
        item = {self.anchor.modality: self.anchor.load_same_class(index)}
        for m, ds in self.partners.items():
            if self.partner is not None:
                j = int(self.partner[m][index])
            else:
                candidates = self.by_class[m][label]
                j = int(candidates[torch.randint(len(candidates), ()).item()])
            item[m], item[f"{m}_index"] = ds.load_same_class(j), j
        extras = getattr(self.anchor, "extras", None)
        item.update(extras(index) if extras is not None else {})
        return {**item, "label": label, "index": index, "pair_id": index}
