"""One modality of extracted sample shards (``extraction.py``), read back: streamed for
training (:class:`ShardStream`), by index for evaluation sets (:class:`ShardItems`).

Streaming splits every epoch exactly: all ranks compute the same order of all samples (shards
in a seeded random order, then shuffled within windows of ``shuffle_window`` samples), each
rank takes an equal contiguous block of it, each DataLoader worker an equal part of its
rank's block. When the sample count does not divide by the world size, ``remainder: pad``
repeats the first samples of the epoch's order to fill the last ranks (as DistributedSampler
does), ``drop`` leaves the last ones out; either way every rank yields the same count, so DDP
never waits on a rank that ran out.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.data.datasets.extraction import INDEX, MANIFEST
from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.shards import decode_audio, decode_image, read_member
from assoc_lightning.errors import ConfigError
from assoc_lightning.utils import dist

REMAINDERS = ("pad", "drop")
OPEN_HANDLES = 32  # shard files kept open per process


DECODERS = {
    "jpg": decode_image,
    "png": decode_image,
    "audio.npy": lambda data, path: decode_audio(data),
}


class ShardIndex:
    """A finished shard folder: its manifest, per-sample labels and byte ranges, and the
    reads (shard files are opened once per process, at most ``OPEN_HANDLES`` at a time)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        with np.load(self.folder / INDEX, allow_pickle=False) as arrays:
            self.arrays = {k: arrays[k] for k in arrays.files}
        self.labels = self.arrays["label"]
        self.names = [s["name"] for s in self.manifest["shards"]]
        self.counts = [s["count"] for s in self.manifest["shards"]]
        self._fds: dict[int, int] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.labels)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fds": {}}  # open files stay in their process

    def __del__(self) -> None:
        if getattr(self, "_pid", None) == os.getpid():
            for fd in self._fds.values():
                os.close(fd)

    def _fd(self, k: int) -> int:
        if self._pid != os.getpid():  # a forked worker: its own files (closing the copies)
            for fd in self._fds.values():
                os.close(fd)
            self._fds, self._pid = {}, os.getpid()
        if k not in self._fds:
            if len(self._fds) >= OPEN_HANDLES:
                os.close(self._fds.pop(next(iter(self._fds))))
            self._fds[k] = os.open(self.folder / self.names[k], os.O_RDONLY)
        return self._fds[k]

    def read(self, index: int, ext: str) -> torch.Tensor:
        """Sample ``index``'s ``ext`` member, decoded."""
        k = int(self.arrays["shard"][index])
        offset = int(self.arrays[f"offset:{ext}"][index])
        size = int(self.arrays[f"size:{ext}"][index])
        path = self.folder / self.names[k]
        if offset < 0:
            raise DatasetCorruptError(path, f"a {ext} member for sample {index}", "none")
        return DECODERS[ext](read_member(self._fd(k), path, offset, size), path)


class ShardItems(LabeledDataset):
    """One modality of a shard folder by index (a map-style labelled dataset: evaluation
    sets, DistributedSampler, ``shuffle=True``). Random reads: fine on local disks."""

    def __init__(self, index: ShardIndex, modality: str, ext: str) -> None:
        super().__init__(index.labels)
        self.index, self.modality, self.ext = index, modality, ext
        self.classes = tuple(index.manifest.get("classes", ()))

    def load(self, index: int) -> torch.Tensor:
        return self.index.read(index, self.ext)


def epoch_order(
    counts: Sequence[int], seed: int, epoch: int, shuffle: bool, window: int
) -> np.ndarray:
    """Every sample index once, in this epoch's order (the same on every rank)."""
    starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    if not shuffle:
        return np.arange(starts[-1])
    rng = np.random.default_rng([seed, epoch])
    order = np.concatenate(
        [np.arange(starts[k], starts[k + 1]) for k in rng.permutation(len(counts))]
        or [np.zeros(0, np.int64)]
    )
    for w in range(0, len(order), max(window, 1)):
        rng.shuffle(order[w : w + max(window, 1)])
    return order


def rank_share(total: int, world_size: int, remainder: str = "pad") -> int:
    """Samples each rank yields per epoch."""
    if remainder not in REMAINDERS:
        raise ConfigError(f"remainder must be one of {REMAINDERS}, got {remainder!r}")
    return -(-total // world_size) if remainder == "pad" else total // world_size


def worker_part(
    order: np.ndarray,
    rank: int,
    world_size: int,
    worker: int,
    num_workers: int,
    remainder: str = "pad",
) -> np.ndarray:
    """The sample indices one DataLoader worker of one rank reads, in order."""
    share = rank_share(len(order), world_size, remainder)
    filled = np.resize(order, share * world_size) if len(order) else order  # pad: wrap around
    block = filled[rank * share : (rank + 1) * share]
    return np.array_split(block, num_workers)[worker]


class ShardStream(IterableDataset):
    """One modality of a shard folder, streamed for training: every sample once per epoch
    over all ranks and workers (see the module docstring), ``{modality, "label", "index"}``.

    ``len()`` is what this rank yields per epoch; ``labels`` covers all samples (by index).
    The order changes every epoch: the epoch counts the passes over the dataset in the
    process that iterates it (the main one, or persistent workers); with non-persistent
    workers call :meth:`set_epoch` each epoch, as for a DistributedSampler. ``rank`` and
    ``world_size`` default to the process group's.
    """

    def __init__(
        self,
        index: ShardIndex,
        modality: str,
        ext: str,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_window: int = 1000,
        remainder: str = "pad",
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        rank_share(len(index), 1, remainder)  # validates remainder
        self.index, self.modality, self.ext = index, modality, ext
        self.labels = index.labels
        self.classes = tuple(index.manifest.get("classes", ()))
        self.seed, self.shuffle, self.remainder = seed, shuffle, remainder
        self.shuffle_window = shuffle_window
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _place(self) -> tuple[int, int]:
        if self.rank is not None:
            return self.rank, self.world_size or 1
        return dist.rank(), dist.world_size()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.rank is None and dist.is_distributed():  # spawned workers know no process group
            state["rank"], state["world_size"] = self._place()
        return state

    def __len__(self) -> int:
        return rank_share(len(self.index), self._place()[1], self.remainder)

    def __iter__(self) -> Iterator[dict]:
        rank, world_size = self._place()
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info else (0, 1)
        order = epoch_order(
            self.index.counts, self.seed, self.epoch, self.shuffle, self.shuffle_window
        )
        self.epoch += 1
        for i in worker_part(order, rank, world_size, worker, num_workers, self.remainder):
            i = int(i)
            yield {
                self.modality: self.index.read(i, self.ext),
                "label": int(self.labels[i]),
                "index": i,
            }


def open_shards(
    folder: Path, modality: str, ext: str, access: str = "random", **stream_options
) -> ShardStream | ShardItems:
    """A shard folder's ``modality`` by index (``random``) or as a stream (``stream``)."""
    if access not in ("stream", "random"):
        raise ConfigError(f"access must be 'stream' or 'random', got {access!r}")
    index = ShardIndex(folder)
    if f"offset:{ext}" not in index.arrays:
        present = sorted(k.split(":", 1)[1] for k in index.arrays if k.startswith("offset:"))
        raise DatasetCorruptError(folder / INDEX, f"{ext} members ({modality})", f"{present}")
    if access == "random":
        return ShardItems(index, modality, ext)
    return ShardStream(index, modality, ext, **stream_options)
