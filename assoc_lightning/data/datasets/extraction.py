"""The resumable, parallel extraction of items (e.g. video clips) into sample shards.

A folder of shards holds ``shard-NNNNNN.tar`` (WebDataset tars, ``data/io/shards.py``), one
``shard-NNNNNN.json`` per tar (its samples, where their bytes lie, what was skipped: written
after the tar, so a tar without its record is unfinished), ``extract.json`` (the settings the
shards were made with), and, once every shard is done, ``index.npz`` (per-sample label, shard
and byte ranges) and ``manifest.json`` (counts, classes, skipped items). ``shards.py`` reads
such a folder back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from assoc_lightning.data.io.shards import write_shard
from assoc_lightning.errors import ConfigError
from assoc_lightning.utils.files import atomic_save, atomic_write_text, cache_lock

log = logging.getLogger(__name__)
MANIFEST, INDEX, SETTINGS = "manifest.json", "index.npz", "extract.json"


class SourceItem(NamedTuple):
    """One item to extract: an id, its label, the file it is decoded from."""

    id: str
    label: int
    path: str


class SkipItem(Exception):
    """Raised by an encoder for an item that cannot be extracted (counted under ``reason``)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def shard_name(k: int) -> str:
    return f"shard-{k:06d}.tar"


def settings_hash(settings: dict) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def _write_job(
    out: Path, k: int, start: int, items: list, encode: Callable, fingerprint: str
) -> dict:
    """Encode ``items`` (positions ``start``...) into shard ``k``; write the tar, then its
    record (the mark of a finished shard); return the record."""
    kept, skipped = [], []

    def samples():
        for pos, item in enumerate(items, start):
            try:
                members = encode(item)
            except SkipItem as skip:
                skipped.append({"id": item.id, "reason": skip.reason, "detail": skip.detail})
                continue
            kept.append({"key": f"{pos:09d}", "id": item.id, "label": int(item.label)})
            yield {"__key__": kept[-1]["key"], **members}

    places = write_shard(out / shard_name(k), samples())
    for sample, place in zip(kept, places, strict=True):
        sample["places"] = place
    record = {
        "name": shard_name(k),
        "items": [start, start + len(items)],
        "settings": fingerprint,
        "bytes": (out / shard_name(k)).stat().st_size,
        "samples": kept,
        "skipped": skipped,
    }
    atomic_write_text(out / shard_name(k).replace(".tar", ".json"), json.dumps(record))
    return record


def _finished(out: Path, k: int, start: int, stop: int, fingerprint: str) -> dict | None:
    """Shard ``k``'s record when the shard is complete for these items and settings."""
    tar, rec = out / shard_name(k), out / shard_name(k).replace(".tar", ".json")
    try:
        record = json.loads(rec.read_text())
        complete = record["settings"] == fingerprint and record["items"] == [start, stop]
        return record if complete and tar.stat().st_size == record["bytes"] else None
    except (OSError, ValueError, KeyError):
        return None


def _worker_init() -> None:
    torch.set_num_threads(1)  # one decode per process; the parallelism is across processes


def build_shards(
    out: str | os.PathLike,
    items: Sequence[SourceItem],
    encode: Callable[[SourceItem], dict[str, bytes]],
    settings: dict,
    extra: dict,
    shard_size: int = 1000,
    workers: int = 4,
    pre_skipped: Sequence[dict] = (),
    progress: Callable[[str], None] = log.info,
) -> dict:
    """Extract ``items`` into shards of ``shard_size`` under ``out``; return the manifest.

    Shard ``k`` holds items ``[k * shard_size, (k + 1) * shard_size)`` less those ``encode``
    skips (``SkipItem``). Resumable: finished shards (tar + record, same items and settings)
    are kept, the rest (re)written, temporaries of a killed run removed. ``workers``
    processes decode in parallel (0: in this process). ``settings`` must match those of an
    earlier run in ``out``; ``extra`` and ``pre_skipped`` (items skipped before decoding) go
    into the manifest. The whole run holds ``out``'s lock, so concurrent runs build it once.
    """
    if shard_size < 1 or workers < 0:
        raise ConfigError(f"shard_size must be >= 1 and workers >= 0, got {shard_size}, {workers}")
    out = Path(out)
    fingerprint = settings_hash(settings)
    with cache_lock(out):
        out.mkdir(parents=True, exist_ok=True)
        _check_settings(out, settings)
        for stale in out.glob(".shard-*.tmp-*"):  # a killed run's half-written files
            stale.unlink(missing_ok=True)
        jobs = [
            (k, a, items[a : a + shard_size])
            for k, a in enumerate(range(0, len(items), shard_size))
        ]
        records = {k: _finished(out, k, a, a + len(chunk), fingerprint) for k, a, chunk in jobs}
        todo = [job for job in jobs if records[job[0]] is None]
        if todo:
            (out / MANIFEST).unlink(missing_ok=True)  # readers never see a mix of old and new
        progress(f"{len(jobs) - len(todo)} of {len(jobs)} shards already done in {out}")
        for record in _run(out, todo, encode, fingerprint, workers):
            records[int(record["name"][6:12])] = record
            done = sum(r is not None for r in records.values())
            progress(f"{record['name']}: {len(record['samples'])} samples, "
                     f"{len(record['skipped'])} skipped ({done}/{len(jobs)} shards)")  # fmt: skip
        for path in out.glob("shard-*.*"):  # shards of an earlier, longer run
            if int(path.name[6:12]) >= len(jobs):
                path.unlink()
        return _write_manifest(out, [records[k] for k, _, _ in jobs], extra, pre_skipped, settings)


def _run(out: Path, jobs: list, encode, fingerprint: str, workers: int) -> Iterator[dict]:
    if workers == 0 or len(jobs) <= 1:
        for k, a, chunk in jobs:
            yield _write_job(out, k, a, list(chunk), encode, fingerprint)
        return
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(min(workers, len(jobs)), context, _worker_init) as pool:
        futures = [
            pool.submit(_write_job, out, k, a, list(chunk), encode, fingerprint)
            for k, a, chunk in jobs
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _check_settings(out: Path, settings: dict) -> None:
    """Record ``settings`` in a new folder; refuse a folder made with other settings."""
    path = out / SETTINGS
    if not path.exists():
        atomic_write_text(path, json.dumps(settings, indent=1, sort_keys=True))
        return
    before = json.loads(path.read_text())
    if before != settings:
        changed = sorted(k for k in set(before) | set(settings) if before.get(k) != settings.get(k))
        raise ConfigError(
            f"{out} holds shards extracted with other settings or from another set of videos "
            f"(differs: {', '.join(changed)}); choose another output folder or delete this one"
        )


def _write_manifest(out: Path, records: list, extra: dict, pre_skipped, settings) -> dict:
    samples = [s for r in records for s in r["samples"]]
    exts = sorted({ext for s in samples for ext in s["places"]})
    arrays = {
        "label": np.array([s["label"] for s in samples], np.int64),
        "shard": np.repeat(np.arange(len(records)), [len(r["samples"]) for r in records]),
        "id": np.array([s["id"] for s in samples], dtype=str),
    }
    for ext in exts:
        place = np.array([s["places"].get(ext, [-1, -1]) for s in samples], np.int64)
        arrays[f"offset:{ext}"], arrays[f"size:{ext}"] = place[:, 0], place[:, 1]
    atomic_save(lambda p: np.savez(p, **arrays), out / INDEX)
    skipped = list(pre_skipped) + [s for r in records for s in r["skipped"]]
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s["reason"]] = counts.get(s["reason"], 0) + 1
    manifest = {
        **extra,
        "num_samples": len(samples),
        "shards": [{"name": r["name"], "count": len(r["samples"])} for r in records],
        "skipped": counts,
        "skipped_items": skipped,
        "settings": settings,
    }
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1))
    return manifest
