"""Shared data plumbing for C-MCR: captions as the overlapping modality, memories, loaders.

C-MCR trains from embedding caches, so a training batch is just a set of caption indices
(``{"index": LongTensor[B]}``); the method looks the cached embeddings up. A C-MCR datamodule
offers, besides the usual evaluation sets:

- ``captions``: every caption text; ``caption_split[split]``: the indices used by that split's
  loader (held-out captions give a validation loss);
- ``memory(modality)``: the unpaired image / audio memory, items ``{modality, "label", "index"}``;
- ``cache_dir``: where embedding caches and locally trained towers go;
- ``fingerprint``: a short string that changes whenever the captions or memories change.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


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


class CaptionLoaders:
    """Mixin for C-MCR datamodules: caption-index loaders instead of pair loaders."""

    batch_size: int
    num_workers: int
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
