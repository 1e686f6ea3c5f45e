"""Files that several processes may build at once (a sweep's first jobs on one data dir, DDP
ranks): an inter-process lock per cache, private temporary names, atomic replacement.

Every cache the project writes follows one recipe: take :func:`cache_lock` on the cache, look
again whether it is complete (another process may have finished it while this one waited),
build into :func:`private_tmp_dir` / a private temporary file, and move the result in place
with one rename. A killed builder leaves only its private temporary, never a half cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from assoc_lightning.errors import AssocError

log = logging.getLogger(__name__)
T = TypeVar("T")


class CacheWriteError(AssocError, PermissionError):
    """A cache cannot be written where it should live (read-only or missing folder)."""


def _writable_parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheWriteError(_write_message(path, err)) from err
    if not os.access(parent, os.W_OK):
        raise CacheWriteError(_write_message(path, "the folder is not writable"))
    return parent


def _write_message(path: Path, why) -> str:
    return (
        f"cannot write the cache {path} ({why}). Point the data dir at a writable folder: "
        "--data.init_args.data_dir PATH or $ASSOC_DATA_DIR (a read-only copy works once every "
        "cache has been built into it)"
    )


@contextlib.contextmanager
def cache_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold the inter-process lock of the cache at ``path`` (file ``<path>.lock``), waiting for
    another holder to finish; says once in the log when it has to wait."""
    path = Path(path)
    _writable_parent(path)
    lock = FileLock(f"{path}.lock")
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("waiting for another process that is building %s", path)
            lock.acquire()
    except OSError as err:  # e.g. a read-only file system
        raise CacheWriteError(_write_message(path, err)) from err
    try:
        yield
    finally:
        lock.release()


def private_tmp_dir(path: str | os.PathLike) -> Path:
    """A new empty folder beside ``path`` that no other process uses (same file system, so
    the finished folder can be renamed into place)."""
    path = Path(path)
    parent = _writable_parent(path)
    try:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=parent))
    except OSError as err:
        raise CacheWriteError(_write_message(path, err)) from err


def private_tmp_file(path: str | os.PathLike) -> Path:
    """A name beside ``path`` that no other process uses, keeping its suffix."""
    path = Path(path)
    _writable_parent(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def load_or_build(
    path: str | os.PathLike, load: Callable[[], T | None], build: Callable[[], T]
) -> T:
    """The cache at ``path``: what ``load()`` gives, else, under the cache's lock, what
    ``load()`` gives now (another process may have built it while this one waited), else what
    ``build()`` gives (it writes the cache). No lock is taken when the cache loads at once."""
    value = load()
    if value is not None:
        return value
    with cache_lock(path):
        value = load()
        return value if value is not None else build()


def replace_dir(tmp: Path, path: Path) -> None:
    """Move the finished folder ``tmp`` to ``path``, replacing what was there: the old one is
    renamed aside first and removed after, so ``path`` never holds a mix of old and new
    files (for the moment between the two renames it is absent; call under the cache lock)."""
    old = None
    if path.exists():
        old = private_tmp_dir(path)
        old.rmdir()
        path.rename(old)
    tmp.rename(path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a private temporary file and an atomic rename."""
    atomic_save(lambda tmp: Path(tmp).write_text(text), path)


def atomic_save(save_fn, path: str | os.PathLike) -> None:
    """``save_fn(tmp_path)`` (e.g. ``lambda p: torch.save(obj, p)``), then an atomic rename."""
    path = Path(path)
    tmp = private_tmp_file(path)
    try:
        save_fn(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
