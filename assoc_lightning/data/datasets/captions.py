"""Caption texts as a dataset of indices: C-MCR trains from embedding caches, so a training
item is only the index of a caption whose embeddings the method looks up."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class CaptionIndexDataset(Dataset):
    """Caption indices; fetched a whole batch at a time (``__getitems__``), no per-item work."""

    def __init__(self, indices: np.ndarray) -> None:
        self.indices = torch.as_tensor(np.asarray(indices, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        return {"index": self.indices[i]}

    def __getitems__(self, rows: list[int]) -> dict:
        return {"index": self.indices[torch.as_tensor(rows)]}


def split_captions(
    num: int, seed: int, held_out: float = 0.1, max_held_out: int = 10_000
) -> dict[str, np.ndarray]:
    """Seeded split of caption indices: ``held_out`` (capped) each for val and test."""
    perm = np.random.default_rng(seed).permutation(num)
    k = min(int(round(num * held_out)), max_held_out)
    return {
        "val": np.sort(perm[:k]),
        "test": np.sort(perm[k : 2 * k]),
        "train": np.sort(perm[2 * k :]),
    }
