"""Cross-modal retrieval metrics, chunked over queries, exact fp32, deterministic tie-breaking.

Instance level (C-MCR, docs/evaluation.md): query i's only relevant gallery item is its own pair
(gallery row i). rank_i = 1 + #{j: s_ij > s_ii} + #{j < i: s_ij = s_ii}; R@K = P(rank <= K);
AP with one relevant item is 1/rank, so mAP is the mean reciprocal rank; median rank too.

Class match (BMA-Memory Table 3): a query scores a hit at K when any of its top-K gallery
items has the query's class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from assoc_lightning.eval.metrics.topk import (
    cpu_bound,
    cpu_kernels,
    cpu_products,
    resolve_precision,
    topk_neighbors,
)


@torch.no_grad()
def instance_ranks(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    chunk: int = 1024,
    gallery_chunk: int = 65536,
    precision: str = "auto",
) -> torch.Tensor:
    """1-based rank of gallery row i among all gallery rows for query i (cosine).

    Memory is bounded by ``chunk x gallery_chunk`` similarities, whatever the set sizes.
    ``precision``: as the exact top-k search (``eval/metrics/topk.py``); on CPU the counts come
    from its kernels, on the bf16 path with the same bound (a row's bf16 score decides alone
    when it is clearly above or below the pair's; the rows in between are rescored in fp32).
    """
    if queries.size(0) != gallery.size(0):
        raise ValueError(
            f"instance retrieval needs paired rows: {queries.size(0)} queries, {gallery.size(0)} gallery"
        )
    q = F.normalize(queries.float(), dim=1)
    g = F.normalize(gallery.float(), dim=1)
    own_all = (q * g).sum(1)
    bf16 = resolve_precision(precision, q.device, q.size(0), g.size(0), 1) == "bf16"
    kernels = cpu_kernels("bf16" if bf16 else "fp32") if q.device.type == "cpu" else None
    if kernels is not None and q.size(0) > 0:
        return _instance_ranks_cpu(kernels, q, g, own_all, chunk, gallery_chunk, bf16)
    ranks = []
    for s in range(0, q.size(0), chunk):
        qc = q[s : s + chunk]
        rows = torch.arange(s, s + qc.size(0), device=g.device).unsqueeze(1)
        own = own_all[s : s + qc.size(0)].unsqueeze(1)
        rank = torch.ones(qc.size(0), dtype=torch.long, device=g.device)
        for gs in range(0, g.size(0), gallery_chunk):
            sims = qc @ g[gs : gs + gallery_chunk].T
            cols = torch.arange(gs, gs + sims.size(1), device=g.device).unsqueeze(0)
            # the positive's own column never counts: matmul and the row-wise product may
            # round its score differently
            others = cols != rows
            rank += ((sims > own) & others).sum(1) + ((sims == own) & (cols < rows)).sum(1)
        ranks.append(rank)
    return torch.cat(ranks)


def _instance_ranks_cpu(kernels, q, g, own_all, chunk, gallery_chunk, bf16):
    qh, gh, delta, c = cpu_bound(q, g, bf16)
    qn, gn, dn, own = q.numpy(), g.numpy(), delta.double().numpy(), own_all.double().numpy()
    ranks = np.ones(q.size(0), np.int64)
    buffers = {}
    for s in range(0, q.size(0), chunk):
        rows = slice(s, s + chunk)
        qhr = qh[rows] if bf16 else None
        for gs, n, bits in cpu_products(qn[rows], qhr, gn, gh, gallery_chunk, buffers):
            diag = np.arange(s, s + bits.shape[0]) - gs  # each query's own column
            kernels.rank_chunk(
                bits, qn[rows], gn[gs : gs + n], own[rows], dn[rows], c, diag, ranks[rows]
            )
    return torch.from_numpy(ranks)


def instance_metrics(ranks: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """R@K, mAP (= mean reciprocal rank with one positive) and median rank from ranks."""
    r = ranks.double()
    out = {f"r{k}": (r <= k).double().mean().item() for k in ks}
    out["map"] = (1.0 / r).mean().item()
    out["medr"] = r.median().item()
    return out


@torch.no_grad()
def class_match_at_k(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    ks: Sequence[int] = (1, 2, 3, 4, 5),
    chunk: int = 1024,
    precision: str = "auto",
) -> dict[int, float]:
    """Fraction of queries with at least one same-class item among their top-K gallery items
    (``precision``: the exact search's path, ``eval/metrics/topk.py``)."""
    _, idx = topk_neighbors(queries, gallery, max(ks), query_chunk=chunk, precision=precision)
    match = gallery_labels[idx] == query_labels.unsqueeze(1)
    return {k: match[:, :k].any(1).double().mean().item() for k in ks}


@torch.no_grad()
def class_mean_average_precision(
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    chunk: int = 256,
) -> float:
    """mAP with class relevance: every gallery item of the query's class is a positive.

    The whole gallery is ranked by cosine (ties to the lower gallery index); AP is the mean
    precision at each positive's rank. Queries whose class is absent from the gallery count
    as AP 0. Memory is bounded by ``chunk x len(gallery)``.
    """
    q = F.normalize(queries.float(), dim=1)
    g = F.normalize(gallery.float(), dim=1)
    ranks = torch.arange(1, g.size(0) + 1, device=g.device, dtype=torch.float64)
    total = 0.0
    for s in range(0, q.size(0), chunk):
        sims = q[s : s + chunk] @ g.T
        order = torch.sort(sims, dim=1, descending=True, stable=True).indices
        rel = (gallery_labels[order] == query_labels[s : s + chunk].unsqueeze(1)).double()
        hits = rel.cumsum(1)
        ap = (hits / ranks * rel).sum(1) / rel.sum(1).clamp_min(1)
        total += ap.sum().item()
    return total / max(q.size(0), 1)
