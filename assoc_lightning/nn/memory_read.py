"""Semantic consistency (C-MCR Eq. 2): read a memory of embeddings with a text query.

``read_i = sum_k softmax_k(cos(q_i, m_k) / tau) m_k`` over *all* memory items. The memory
(1.3M images, 1.8M clips in the paper) never fits a full similarity matrix, so the softmax is
computed online over memory chunks (running max, running normalizer, running weighted sum):
the result equals the dense formula, memory use is ``query_chunk x memory_chunk``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from assoc_lightning.errors import ConfigError

MODES = ("softmax", "argmax", "random", "none")


def _rows(x, start: int, stop: int, device, dtype) -> torch.Tensor:
    """Rows of a tensor or a (memory-mapped) numpy array, as a normalized device tensor."""
    block = x[start:stop]
    if isinstance(block, np.ndarray):
        with warnings.catch_warnings():  # a read-only memmap: the tensor is only read here
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            block = torch.from_numpy(np.ascontiguousarray(block))
    return F.normalize(block.to(device=device, dtype=dtype), dim=-1)


@torch.no_grad()
def memory_read(
    queries,
    memory,
    tau: float = 0.01,
    mode: str = "softmax",
    query_chunk: int = 4096,
    memory_chunk: int = 65536,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    progress: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """The memory read for every query, ``[num_queries, dim]`` float32 on CPU.

    Args:
        queries, memory: ``[N, D]`` / ``[M, D]`` tensors or numpy (memmap) arrays; both are
            L2-normalized here, so the similarity is the cosine.
        tau: softmax temperature (tau_1 = 0.01).
        mode: ``softmax`` (Eq. 2), ``argmax`` (the nearest item, ablation row I), ``random``
            (a seeded random item, row J) or ``none`` (the query itself, no memory).
        query_chunk, memory_chunk: block sizes; memory use is their product.
        device, dtype: where and in what precision the blocks are multiplied.
        progress: called as ``progress(done_queries, total_queries)`` after each chunk.
    """
    if mode not in MODES:
        raise ConfigError(f"consistency mode must be one of {MODES}, got {mode!r}")
    n, m = len(queries), len(memory)
    device = torch.device(device or "cpu")
    if mode == "none":
        return _rows(queries, 0, n, "cpu", torch.float32)
    if mode == "random":
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randint(m, (n,), generator=gen).sort()
        out = torch.empty(n, memory.shape[1])
        out[pick.indices] = _rows(memory, 0, m, "cpu", torch.float32)[pick.values]
        return out
    out = []
    for qs in range(0, n, query_chunk):
        q = _rows(queries, qs, qs + query_chunk, device, dtype)
        best = torch.full((q.size(0),), -torch.inf, device=device, dtype=torch.float32)
        norm = torch.zeros(q.size(0), device=device, dtype=torch.float32)
        acc = torch.zeros(q.size(0), memory.shape[1], device=device, dtype=torch.float32)
        for ms in range(0, m, memory_chunk):
            mem = _rows(memory, ms, ms + memory_chunk, device, dtype)
            logits = (q @ mem.T).float() / tau
            if mode == "argmax":
                score, idx = logits.max(1)
                better = score > best  # strict: ties keep the earlier (lower-index) item
                acc[better] = mem[idx[better]].float()
                best = torch.where(better, score, best)
                continue
            new_best = torch.maximum(best, logits.max(1).values)
            scale = torch.exp(best - new_best)  # rescale what was accumulated so far
            weights = torch.exp(logits - new_best.unsqueeze(1))
            norm = norm * scale + weights.sum(1)
            acc = acc * scale.unsqueeze(1) + weights.to(mem.dtype) @ mem
            best = new_best
        out.append((acc if mode == "argmax" else acc / norm.unsqueeze(1)).cpu())
        if progress is not None:
            progress(min(qs + query_chunk, n), n)
    return torch.cat(out)
