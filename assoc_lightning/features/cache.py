"""Resumable memory-mapped embedding caches: a frozen encoder's output over a dataset, once.

C-MCR trains at projector speed from caches of what its frozen towers produce (caption
embeddings, memories, memory reads). A cache is a directory; rows are written at their
dataset index and flushed after every batch, so a killed build continues where it stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from assoc_lightning.errors import AssocError, ConfigError
from assoc_lightning.nn.towers.base import FrozenTower
from assoc_lightning.utils.files import atomic_write_text, cache_lock

log = logging.getLogger(__name__)


class EmbeddingCacheError(AssocError):
    """An embedding cache cannot be built or read (bad encoder output, incomplete source)."""


CACHE_VERSION = 1
_DTYPES = ("float16", "float32")


class EmbeddingCache:
    """A directory holding ``[num_items, dim]`` embeddings as a memory-mapped ``.npy``.

    Files: ``embeddings.npy`` (the rows), ``written.npy`` (one bool per row, the resume
    record), ``index.json`` (fingerprint, num_items, dim, dtype, done, keys digest) and, when
    item keys were given, ``keys.json``.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.data_path = self.directory / "embeddings.npy"
        self.mask_path = self.directory / "written.npy"
        self.index_path = self.directory / "index.json"
        self.keys_path = self.directory / "keys.json"

    def index(self) -> dict | None:
        """The JSON index, or None when absent or unreadable."""
        try:
            return json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return None

    @property
    def complete(self) -> bool:
        idx = self.index()
        return bool(idx) and idx.get("done") == idx.get("num_items")

    def load(self) -> np.ndarray:
        """The embeddings as a read-only memmap ``[num_items, dim]``; the cache must be complete."""
        if not self.complete:
            idx = self.index() or {}
            raise EmbeddingCacheError(
                f"embedding cache {self.directory} is incomplete "
                f"({idx.get('done', 0)}/{idx.get('num_items', '?')} rows): build it first"
            )
        return np.load(self.data_path, mmap_mode="r")

    def keys(self) -> list[str] | None:
        """The item keys given at build time (file names, caption hashes), or None."""
        return json.loads(self.keys_path.read_text()) if self.keys_path.is_file() else None

    def __repr__(self) -> str:
        idx = self.index() or {}
        return (
            f"EmbeddingCache({str(self.directory)!r}, rows={idx.get('done', 0)}/"
            f"{idx.get('num_items', '?')}, dim={idx.get('dim', '?')})"
        )


def build_embedding_cache(
    directory: str | Path,
    encode_fn: Callable[[Any], torch.Tensor | np.ndarray],
    source: Any,
    num_items: int,
    dim: int,
    keys: Sequence[str] | None = None,
    fingerprint: str = "",
    dtype: str = "float16",
    batch_size: int = 256,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    log_every: float = 0.1,
) -> EmbeddingCache:
    """Compute ``encode_fn`` over every item once, into a resumable on-disk cache.

    Args:
        directory: where the cache lives (one cache per directory).
        encode_fn: batch -> ``[B, dim]`` embeddings (tensor or array). The batch is
            ``collate_fn(items)`` for a dataset source, the loader's own batch otherwise.
        source: a map-style dataset (batched here, only the rows not yet written are loaded)
            or an iterable of dict batches with an ``index`` key (e.g. a DataLoader; every
            batch is loaded again on resume, fully written ones are not re-encoded). Rows are
            written at their dataset index, so the loader's order does not matter.
        num_items, dim: the array's shape.
        keys: optional per-item names (file names, caption hashes), stored and compared.
        fingerprint: identifies encoder + source (e.g. ``tower.fingerprint()`` plus a data id);
            a cache built with another fingerprint, shape, dtype or keys is rebuilt with a
            warning, never mixed.
        dtype: ``"float16"`` (half the disk) or ``"float32"``.
        batch_size, num_workers, collate_fn: the DataLoader built for a dataset ``source``.
        log_every: log progress each time this fraction of the rows is done.

    Progress (rows, then their ``written`` flags, then the index) is flushed after every batch,
    so a killed run continues where it stopped. Concurrent builders of one directory take
    turns under its inter-process lock (``utils/files.py``): the second finds the first's
    complete cache, or continues it. A complete cache is read without the lock (and so from
    a read-only folder). Building does not touch the caller's random stream (its loader
    draws from a forked generator), so a run that builds its caches and one that finds them
    train the same.
    """
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    if keys is not None and len(keys) != num_items:
        raise ConfigError(f"{len(keys)} keys for {num_items} items")
    cache = EmbeddingCache(directory)
    wanted = {
        "version": CACHE_VERSION,
        "fingerprint": fingerprint,
        "num_items": int(num_items),
        "dim": int(dim),
        "dtype": dtype,
        "keys_sha256": _digest_strings(keys) if keys is not None else None,
    }
    if cache.complete and _reusable(cache, wanted, quiet=True):
        return cache  # reused as is: nothing is opened for writing, no lock is taken
    with cache_lock(cache.directory):
        if not _reusable(cache, wanted):
            _create(cache, wanted, keys)
        elif cache.complete:
            return cache  # another process finished it while this one waited
        batches = functools.partial(
            _batches, source, batch_size=batch_size, num_workers=num_workers,
            collate_fn=collate_fn,
        )  # fmt: skip
        with torch.random.fork_rng(devices=[]):  # building never moves the caller's RNG
            _fill(cache, wanted, encode_fn, batches, log_every)
    return cache


def _fill(
    cache: EmbeddingCache,
    wanted: dict,
    encode_fn: Callable,
    batches: Callable[[np.ndarray], Iterable[tuple[Any, Any]]],
    log_every: float,
) -> None:
    """Encode the rows not yet written; flush rows, flags and index after every batch."""
    num_items, dim, dtype = wanted["num_items"], wanted["dim"], wanted["dtype"]
    data = np.load(cache.data_path, mmap_mode="r+")
    mask = np.load(cache.mask_path, mmap_mode="r+")
    done = int(mask.sum())
    if done:
        log.info("embedding cache %s: resuming at %d/%d rows", cache.directory, done, num_items)
    progress = _Progress(cache.directory, num_items, done, log_every)
    for indices, batch in batches(mask):
        rows = np.asarray(indices, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= num_items):
            raise EmbeddingCacheError(
                f"embedding cache {cache.directory}: batch indices outside [0, {num_items})"
            )
        if mask[rows].all():
            continue  # written before an interruption (iterable sources only)
        values = _check_values(encode_fn(batch), rows, dim, cache.directory)
        data[rows] = values.astype(dtype)
        data.flush()
        mask[rows] = True
        mask.flush()
        done = int(mask.sum())
        _write_index(cache, wanted, done)
        progress.update(done)
    _write_index(cache, wanted, done)
    if done != num_items:
        raise EmbeddingCacheError(
            f"embedding cache {cache.directory}: the source covered {done} of {num_items} items; "
            "check num_items and that every batch carries its dataset `index`"
        )


def build_text_cache(
    directory: str | Path,
    tower: FrozenTower,
    texts: Sequence[str],
    keys: Sequence[str] | None = None,
    dtype: str = "float16",
    batch_size: int = 256,
) -> EmbeddingCache:
    """Embed ``texts`` with ``tower.encode("text", ...)`` into an :func:`build_embedding_cache`.

    The fingerprint joins the tower's and a hash of all the texts, so editing a caption list
    rebuilds the cache.
    """
    texts = list(texts)
    fingerprint = f"{tower.fingerprint()}:text:{_digest_strings(texts)[:16]}"
    return build_embedding_cache(
        directory,
        lambda batch: tower.encode("text", batch),
        texts,
        num_items=len(texts),
        dim=tower.dim,
        keys=keys,
        fingerprint=fingerprint,
        dtype=dtype,
        batch_size=batch_size,
        collate_fn=list,
    )


def _digest_strings(strings: Iterable[str]) -> str:
    h = hashlib.sha256()
    for s in strings:
        b = str(s).encode()
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()


def _reusable(cache: EmbeddingCache, wanted: dict, quiet: bool = False) -> bool:
    """True when the directory holds a (partial) cache of exactly what is wanted (``quiet``:
    no warning when it does not)."""
    idx = cache.index()
    if idx is None:
        if cache.data_path.exists() and not quiet:
            msg = f"embedding cache {cache.directory} has no readable index; rebuilding it"
            warnings.warn(msg, stacklevel=3)
        return False
    diff = [k for k in wanted if idx.get(k) != wanted[k]]
    if not diff and _arrays_match(cache, wanted):
        return True
    if quiet:
        return False
    what = ", ".join(f"{k}: cached {idx.get(k)!r}, wanted {wanted[k]!r}" for k in diff)
    warnings.warn(
        f"embedding cache {cache.directory} does not match ({what or 'array files'}); "
        "rebuilding it from scratch",
        stacklevel=3,
    )
    return False


def _arrays_match(cache: EmbeddingCache, wanted: dict) -> bool:
    try:
        data = np.load(cache.data_path, mmap_mode="r")
        mask = np.load(cache.mask_path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    shape = (wanted["num_items"], wanted["dim"])
    return data.shape == shape and data.dtype == wanted["dtype"] and mask.shape == shape[:1]


def _create(cache: EmbeddingCache, wanted: dict, keys: Sequence[str] | None) -> None:
    if cache.directory.exists():
        for path in (cache.index_path, cache.data_path, cache.mask_path, cache.keys_path):
            path.unlink(missing_ok=True)
    cache.directory.mkdir(parents=True, exist_ok=True)
    shape = (wanted["num_items"], wanted["dim"])
    np.lib.format.open_memmap(cache.data_path, mode="w+", dtype=wanted["dtype"], shape=shape)
    mask = np.lib.format.open_memmap(cache.mask_path, mode="w+", dtype=bool, shape=shape[:1])
    mask.flush()
    if keys is not None:
        atomic_write_text(cache.keys_path, json.dumps(list(keys)))
    _write_index(cache, wanted, 0)


def _write_index(cache: EmbeddingCache, wanted: dict, done: int) -> None:
    atomic_write_text(cache.index_path, json.dumps({**wanted, "done": done}, indent=1))


def _check_values(values: Any, rows: np.ndarray, dim: int, directory: Path) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (len(rows), dim):
        raise EmbeddingCacheError(
            f"embedding cache {directory}: encode_fn returned shape {values.shape} for a batch "
            f"of {len(rows)} items, expected ({len(rows)}, {dim})"
        )
    if not np.isfinite(values).all():
        raise EmbeddingCacheError(
            f"embedding cache {directory}: non-finite embeddings for items {rows[:8].tolist()}..."
        )
    return values


class _IndexedItems(Dataset):
    """The rows still to compute, as ``(index, item)`` pairs."""

    def __init__(self, dataset: Any, indices: np.ndarray) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        index = int(self.indices[i])
        return index, self.dataset[index]


class _IndexedCollate:
    """Picklable collate: ``(indices, collate_fn(items))``."""

    def __init__(self, collate_fn: Callable | None) -> None:
        self.collate_fn = collate_fn or default_collate

    def __call__(self, pairs: list[tuple[int, Any]]) -> tuple[list[int], Any]:
        return [i for i, _ in pairs], self.collate_fn([item for _, item in pairs])


def _batches(
    source: Any, mask: np.ndarray, batch_size: int, num_workers: int, collate_fn: Callable | None
) -> Iterator[tuple[Any, Any]]:
    """``(indices, batch)`` pairs: only the missing rows of a dataset, every batch of a loader."""
    if isinstance(source, DataLoader) or not hasattr(source, "__getitem__"):
        for batch in source:
            if not isinstance(batch, dict) or "index" not in batch:
                raise EmbeddingCacheError("loader batches must be dicts with an `index` key")
            index = batch["index"]
            yield (index.cpu().numpy() if isinstance(index, torch.Tensor) else index), batch
        return
    todo = np.flatnonzero(~np.asarray(mask))
    loader = DataLoader(
        _IndexedItems(source, todo),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_IndexedCollate(collate_fn),
    )
    yield from loader


class _Progress:
    """Logs ``done/total`` each time another ``every`` fraction is reached."""

    def __init__(self, directory: Path, total: int, done: int, every: float) -> None:
        self.directory, self.total, self.step = directory, total, max(1, int(total * every))
        self.next = (done // self.step + 1) * self.step

    def update(self, done: int) -> None:
        if done >= self.next or done == self.total:
            log.info(
                "embedding cache %s: %d/%d rows (%.0f%%)",
                self.directory,
                done,
                self.total,
                100.0 * done / self.total,
            )
            self.next = (done // self.step + 1) * self.step
