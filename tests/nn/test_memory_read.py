"""C-MCR's semantic consistency: the chunked memory read."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from assoc_lightning.nn.memory_read import memory_read


def test_memory_read_chunked_equals_dense_formula():
    gen = torch.Generator().manual_seed(0)
    q, m = torch.randn(11, 6, generator=gen), torch.randn(23, 6, generator=gen)
    qn, mn = F.normalize(q, dim=1), F.normalize(m, dim=1)
    dense = torch.softmax(qn @ mn.T / 0.05, dim=1) @ mn
    got = memory_read(q, m, tau=0.05, query_chunk=4, memory_chunk=5)
    torch.testing.assert_close(got, dense, atol=1e-6, rtol=1e-5)
    # numpy / memory-mapped inputs give the same result
    got_np = memory_read(q.numpy(), m.numpy().astype(np.float32), tau=0.05, memory_chunk=7)
    torch.testing.assert_close(got_np, dense, atol=1e-6, rtol=1e-5)
    # a tiny temperature does not overflow: the read becomes the nearest item
    sharp = memory_read(q, m, tau=1e-4, memory_chunk=5)
    torch.testing.assert_close(sharp, mn[(qn @ mn.T).argmax(1)], atol=1e-5, rtol=0)


def test_read_only_memmap_reads_without_a_warning(tmp_path):
    m = np.random.default_rng(0).standard_normal((23, 6)).astype(np.float32)
    np.save(tmp_path / "m.npy", m)
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")  # read-only, as the embedding caches
    q = torch.randn(5, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = memory_read(q, mapped, tau=0.05, memory_chunk=7)
    torch.testing.assert_close(got, memory_read(q, torch.from_numpy(m), tau=0.05))


def test_memory_read_ablation_modes():
    gen = torch.Generator().manual_seed(1)
    q, m = torch.randn(9, 5, generator=gen), torch.randn(14, 5, generator=gen)
    mn = F.normalize(m, dim=1)
    nearest = memory_read(q, m, mode="argmax", memory_chunk=3)
    torch.testing.assert_close(nearest, mn[(F.normalize(q, dim=1) @ mn.T).argmax(1)])
    torch.testing.assert_close(memory_read(q, m, mode="none"), F.normalize(q, dim=1))
    rnd = memory_read(q, m, mode="random", seed=3)
    assert torch.equal(rnd, memory_read(q, m, mode="random", seed=3))
    assert all(any(torch.equal(r, row) for row in mn) for r in rnd)
    with pytest.raises(ValueError, match="consistency mode"):
        memory_read(q, m, mode="mean")
