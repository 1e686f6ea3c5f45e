"""Resumable memory-mapped embedding caches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from assoc_lightning.features.cache import (
    EmbeddingCache,
    EmbeddingCacheError,
    build_embedding_cache,
    build_text_cache,
)
from tests.fixtures.towers import DIM


class Counter:
    """encode_fn stand-in: row i -> a fixed function of i; counts calls, can fail after k."""

    def __init__(self, dim: int = 8, fail_after: int | None = None) -> None:
        self.dim, self.fail_after, self.calls = dim, fail_after, 0

    def __call__(self, batch) -> torch.Tensor:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        index = batch["index"] if isinstance(batch, dict) else torch.as_tensor(batch)
        return self.rows(index)

    def rows(self, index) -> torch.Tensor:
        i = torch.as_tensor(index, dtype=torch.float32).view(-1, 1)
        return torch.sin(i * 0.37 + torch.arange(self.dim) * 0.11)


def _dict_items(n: int) -> list[dict]:
    return [{"index": i, "x": float(i)} for i in range(n)]


def test_text_cache_equals_direct_encoding_and_is_reused(clip, tmp_path):
    texts = [f"caption number {i}" for i in range(10)]
    cache = build_text_cache(tmp_path / "c", clip, texts, batch_size=4, dtype="float32")
    arr = cache.load()
    assert isinstance(arr, np.memmap) and not arr.flags.writeable and arr.shape == (10, DIM)
    assert np.allclose(arr, clip.encode("text", texts).numpy(), atol=1e-6)
    index = json.loads((tmp_path / "c" / "index.json").read_text())
    assert (
        index["done"] == 10 and index["dim"] == DIM and clip.fingerprint() in index["fingerprint"]
    )

    never = Counter(DIM, fail_after=0)  # raises if called: a complete cache is not recomputed
    again = build_embedding_cache(tmp_path / "c", never, texts, 10, DIM,
                                  fingerprint=index["fingerprint"], dtype="float32")  # fmt: skip
    assert never.calls == 0 and again.complete


def test_cache_resumes_after_an_interruption(tmp_path):
    items = _dict_items(23)
    full = build_embedding_cache(tmp_path / "full", Counter(), items, 23, 8, batch_size=4)
    killed = Counter(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        build_embedding_cache(tmp_path / "part", killed, items, 23, 8, batch_size=4)
    part = EmbeddingCache(tmp_path / "part")
    assert part.index()["done"] == 12 and not part.complete
    with pytest.raises(EmbeddingCacheError, match="incomplete"):
        part.load()
    resumed = Counter()
    build_embedding_cache(tmp_path / "part", resumed, items, 23, 8, batch_size=4)
    assert resumed.calls == 3  # rows 12..22 only, not from zero
    assert np.array_equal(part.load(), full.load())
    assert np.allclose(full.load(), Counter().rows(range(23)).numpy(), atol=1e-3)  # float16


def test_loader_rows_are_written_by_index_and_resume(tmp_path):
    items = _dict_items(20)
    shuffled = torch.utils.data.DataLoader(items, batch_size=3, shuffle=True)
    cache = build_embedding_cache(tmp_path / "s", Counter(), shuffled, 20, 8, dtype="float32")
    assert np.allclose(cache.load(), Counter().rows(range(20)).numpy(), atol=1e-6)

    backwards = torch.utils.data.DataLoader(items, batch_size=3, sampler=range(19, -1, -1))
    with pytest.raises(KeyboardInterrupt):
        build_embedding_cache(tmp_path / "c", Counter(fail_after=2), backwards, 20, 8)
    resumed = Counter()
    cache = build_embedding_cache(tmp_path / "c", resumed, backwards, 20, 8, dtype="float16")
    assert resumed.calls == 7 - 2  # batches written before the interruption are not re-encoded
    assert np.allclose(cache.load(), Counter().rows(range(20)).numpy(), atol=1e-3)


def test_changed_fingerprint_or_shape_rebuilds_with_a_warning(tmp_path):
    items = _dict_items(10)
    build_embedding_cache(tmp_path / "c", Counter(), items, 10, 8, fingerprint="a", batch_size=5)
    calls = Counter()
    with pytest.warns(UserWarning, match="fingerprint"):
        build_embedding_cache(tmp_path / "c", calls, items, 10, 8, fingerprint="b", batch_size=5)
    assert calls.calls == 2
    with pytest.warns(UserWarning, match="dim"):
        cache = build_embedding_cache(tmp_path / "c", Counter(4), items, 10, 4, fingerprint="b")
    assert cache.load().shape == (10, 4)
    keys = [f"item{i}.wav" for i in range(10)]
    with pytest.warns(UserWarning, match="keys"):
        cache = build_embedding_cache(tmp_path / "c", Counter(4), items, 10, 4, keys=keys,
                                      fingerprint="b")  # fmt: skip
    assert cache.keys() == keys


def test_bad_encoder_output_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingCacheError, match="shape"):
        build_embedding_cache(tmp_path / "c", lambda b: torch.zeros(2, 3), _dict_items(4), 4, 8)
    short = torch.utils.data.DataLoader(_dict_items(4), batch_size=2)
    with pytest.raises(EmbeddingCacheError, match="covered 4 of 6"):
        build_embedding_cache(tmp_path / "d", Counter(), short, 6, 8)


RACE = """
import sys, time
import numpy as np
from assoc_lightning.features.cache import build_embedding_cache
calls = []
def encode(batch):
    calls.append(len(batch))
    time.sleep(0.05)
    return np.stack([np.full(4, float(x)) for x in batch])
cache = build_embedding_cache(sys.argv[1], encode, list(range(40)), 40, 4, fingerprint="f",
                              dtype="float32", batch_size=4, collate_fn=list)
assert (cache.load()[:, 0] == np.arange(40)).all()
print(sum(calls))
"""


def test_two_processes_building_one_cache_take_turns(tmp_path):
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path / "c")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    encoded = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        encoded.append(int(out.strip().splitlines()[-1]))
    assert sorted(encoded) == [0, 40]  # one built every row; the other waited and reused them
