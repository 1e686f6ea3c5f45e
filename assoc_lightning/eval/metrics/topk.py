"""Exact cosine top-k of queries against a bank, chunked, bounded memory, two paths.

``fp32``: each query chunk streams through bank chunks with a running top-k (memory
O(query_chunk x bank_chunk), never O(Q x N)).

``bf16``: a candidate pass with the device's fast bf16 matmul, then fp32 rescoring of the
candidates only. A proven bound on the bf16 score error (docs/evaluation.md, "Exact top-k
through a bf16 pass") certifies, row by row, that every bank row left out cannot be in the
fp32 top-k; a row the bound cannot certify is searched again in fp32. The result is the
fp32 top-k either way.

``auto`` (the default) takes the bf16 path on devices whose bf16 matmul is many times the
fp32 one (CUDA bf16 tensor cores) when the search is large enough to gain; otherwise fp32.

Both paths: ties in similarity go to the lower bank index; results sorted by decreasing
similarity; the similarities returned are fp32 dot products of the normalized vectors.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

PRECISIONS = ("auto", "fp32", "bf16")
U_BF16 = 2.0**-8  # unit roundoff of bfloat16 (8 significand bits, round to nearest)
U_FP32 = 2.0**-24
GROUP = 8  # bank rows per group in the candidate selection
MIN_WORK = 1 << 24  # query x bank pairs below which the bf16 path gains nothing


@torch.no_grad()
def topk_neighbors(
    queries: torch.Tensor,
    bank: torch.Tensor,
    k: int,
    query_chunk: int = 1024,
    bank_chunk: int = 65536,
    exclude_self: bool = False,
    precision: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices of the ``k`` most similar bank rows for every query.

    ``exclude_self`` drops bank row i for query i (leave-one-out when queries are the bank).
    ``precision``: ``auto``, ``fp32`` or ``bf16`` (module docstring); all give the same
    neighbours. Returns ``(sims [Q, k], idx [Q, k])`` sorted by decreasing similarity.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    q = F.normalize(queries.float(), dim=1)
    b = F.normalize(bank.float(), dim=1)
    k = min(k, b.size(0) - int(exclude_self))
    self_cols = torch.arange(q.size(0), device=q.device) if exclude_self else None
    if resolve_precision(precision, q.device, q.size(0), b.size(0), k) == "bf16":
        return _topk_bf16(q, b, k, query_chunk, bank_chunk, self_cols)
    return _topk_fp32(q, b, k, query_chunk, bank_chunk, self_cols)


def resolve_precision(precision: str, device: torch.device, rows: int, cols: int, k: int) -> str:
    """The path ``precision`` means for a ``rows x cols`` search of top-``k`` on ``device``."""
    if precision != "auto":
        return precision
    big = rows * cols >= MIN_WORK and 4 * GROUP * candidate_groups(k) <= cols
    return "bf16" if big and fast_bf16(device.type) else "fp32"


def fast_bf16(device_type: str) -> bool:
    """Whether the bf16 path pays off on this device type: CUDA with bf16 tensor cores
    (compute capability 8.0 or newer), where the bf16 matmul is many times the fp32 one.

    Not on CPU: with AVX512-BF16 the bf16 matmul is 2.4x the fp32 one, but the candidates'
    fp32 rescoring (a 2 KB bank-row gather each) and bf16 element-wise work cost more than
    that saves; the whole bf16 search measured 1.4x the fp32 one's time
    (bench/knn_retrieval.py, docs/evaluation.md).
    """
    return (
        device_type == "cuda"
        and torch.cuda.is_available()
        and torch.cuda.get_device_capability()[0] >= 8
    )


def candidate_groups(k: int) -> int:
    """Bank groups kept per query and bank chunk: enough for the top k and the bound's band."""
    return 2 * k + 16


def score_bound(
    q: torch.Tensor, qh: torch.Tensor, b: torch.Tensor, bh: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """``(delta [Q], c)`` with |bf16 score - fp32 score| <= delta_q + c * |bf16 score|.

    For a query q, bank row b and their bf16 roundings qh = q + dq, bh = b + db:
    qh.bh - q.b = dq.b + q.db + dq.db, bounded by Cauchy-Schwarz; the fp32 accumulation of
    the (exact) bf16 products adds at most gamma_d |qh| |bh|; the bf16 output rounding at
    most u |s~| / (1 - u); the fp32 rescoring itself up to gamma_d |q| |b| on both sides
    of a comparison. Norms are taken as maxima over the bank, so delta is per query.
    """
    d = q.size(1)
    gamma = d * U_FP32 / (1 - d * U_FP32)
    safe = 1 + 1e-5  # the norms themselves are computed in fp32
    eq = (qh.float() - q).norm(dim=1) * safe
    nq, nqh = q.norm(dim=1) * safe, qh.float().norm(dim=1) * safe
    eb = (bh.float() - b).norm(dim=1).max() * safe
    nb, nbh = b.norm(dim=1).max() * safe, bh.float().norm(dim=1).max() * safe
    delta = eq * nb + nq * eb + eq * eb + gamma * nqh * nbh + 2 * gamma * nq * nb + 1e-30
    return delta, U_BF16 / (1 - U_BF16)


def _sort_rows(sims: torch.Tensor, idx: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top ``k`` of each row by similarity, ties to the lower index, sorted."""
    order = torch.argsort(idx, dim=1)
    sims, idx = sims.gather(1, order), idx.gather(1, order)
    order = torch.argsort(sims, dim=1, descending=True, stable=True)[:, :k]
    return sims.gather(1, order), idx.gather(1, order)


def _mask_self(sims: torch.Tensor, self_cols: torch.Tensor | None, start: int) -> None:
    """Set each query's own bank column (``self_cols``, global) to -inf in a bank chunk."""
    if self_cols is None:
        return
    cols = self_cols - start
    ok = (cols >= 0) & (cols < sims.size(1))
    rows = torch.arange(sims.size(0), device=sims.device)
    sims[rows[ok], cols[ok]] = float("-inf")


@functools.cache
def numpy_blas_faster() -> bool:
    """Whether to multiply fp32 on CPU through numpy's BLAS (OpenBLAS) rather than torch's
    (MKL): on AMD CPUs, where MKL takes a slower path (OpenBLAS measured 1.2-1.6x faster at
    the search's block shapes on an AMD EPYC). Decided by the CPU vendor, not by timing, so
    that one machine always sums in the same order and repeats its numbers exactly."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("vendor_id") and "AuthenticAMD" in line for line in f)
    except OSError:
        return False


def similarities(qc: torch.Tensor, bc: torch.Tensor) -> torch.Tensor:
    """``qc @ bc.T`` in fp32, through the faster of torch's and numpy's BLAS on CPU."""
    if qc.device.type == "cpu" and qc.dtype == torch.float32 and numpy_blas_faster():
        return torch.from_numpy(np.matmul(qc.numpy(), bc.numpy().T))
    return qc @ bc.T


def _top_groups(sims: torch.Tensor, kept: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The columns of each row's ``kept`` groups of GROUP consecutive columns with the largest
    maximum, plus the tail columns that fill no whole group (always kept); and each row's
    smallest kept group maximum, which bounds every left-out column (None: none left out)."""
    n = sims.size(1)
    groups = n // GROUP
    kept = min(kept, groups)
    top, g = sims[:, : groups * GROUP].unflatten(1, (groups, GROUP)).amax(2).topk(kept, dim=1)
    cols = (g.unsqueeze(2) * GROUP + torch.arange(GROUP, device=sims.device)).flatten(1)
    if groups * GROUP < n:
        tail = torch.arange(groups * GROUP, n, device=sims.device).expand(sims.size(0), -1)
        cols = torch.cat([cols, tail], 1)
    return cols, (top[:, -1] if kept < groups else None)


def _chunk_topk(sims: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``sims.topk(k, dim=1)`` through group maxima: the k groups of GROUP columns with the
    largest maximum, then the top k of their items. A row whose k-th item does not beat every
    left-out group's maximum (a tie at the boundary) takes the plain topk."""
    k = min(k, sims.size(1))
    if sims.size(1) // GROUP < 8 * k:
        return sims.topk(k, dim=1)
    cols, bound = _top_groups(sims, k)
    vals, j = sims.gather(1, cols).topk(k, dim=1)
    idx = cols.gather(1, j)
    tie = ~(vals[:, -1] > bound)  # left-out items are <= bound
    if tie.any():
        vals[tie], idx[tie] = sims[tie].topk(k, dim=1)
    return vals, idx


def _topk_fp32(q, b, k, query_chunk, bank_chunk, self_cols):
    out_s, out_i = [], []
    for qs in range(0, q.size(0), query_chunk):
        qc = q[qs : qs + query_chunk]
        own = None if self_cols is None else self_cols[qs : qs + query_chunk]
        best_s = qc.new_full((qc.size(0), 0), float("-inf"))
        best_i = torch.zeros((qc.size(0), 0), dtype=torch.long, device=q.device)
        for bs in range(0, b.size(0), bank_chunk):
            sims = similarities(qc, b[bs : bs + bank_chunk])
            _mask_self(sims, own, bs)
            s, i = _chunk_topk(sims, k)
            best_s = torch.cat([best_s, s], dim=1)
            best_i = torch.cat([best_i, i + bs], dim=1)
            if best_s.size(1) > k:
                best_s, j = best_s.topk(k, dim=1)
                best_i = best_i.gather(1, j)
        s, i = _sort_rows(best_s, best_i, k)
        out_s.append(s)
        out_i.append(i)
    return torch.cat(out_s), torch.cat(out_i)


def _rescore(q: torch.Tensor, b: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """fp32 ``q[r] . b[idx[r, j]]`` for every row r, in slices that stay in cache."""
    out = torch.empty(idx.shape, dtype=q.dtype, device=q.device)
    step = max(1, (1 << 21) // max(1, idx.size(1) * b.size(1)))
    for s in range(0, idx.size(0), step):
        rows = b.index_select(0, idx[s : s + step].reshape(-1)).view(-1, idx.size(1), b.size(1))
        out[s : s + step] = torch.bmm(rows, q[s : s + step].unsqueeze(2)).squeeze(2)
    return out


def _candidates(qh, bh, rows_self, kg, bank_chunk):
    """bf16 scores of the items in each query's ``kg`` best groups of GROUP bank rows (and the
    tail rows) per bank chunk, and the largest score any left-out item can have (-inf when
    none is left out)."""
    vals, idx = [], []
    outside = torch.full((qh.size(0),), float("-inf"), device=qh.device)
    for bs in range(0, bh.size(0), bank_chunk):
        sims = qh @ bh[bs : bs + bank_chunk].T
        _mask_self(sims, rows_self, bs)
        cols, bound = _top_groups(sims, kg)
        if bound is not None:
            outside = torch.maximum(outside, bound.float())
        vals.append(sims.gather(1, cols))
        idx.append(cols + bs)
    return torch.cat(vals, 1).float(), torch.cat(idx, 1), outside


def _topk_bf16(q, b, k, query_chunk, bank_chunk, self_cols):
    qh, bh = q.bfloat16(), b.bfloat16()
    delta, c = score_bound(q, qh, b, bh)
    kg = candidate_groups(k)
    out_s = torch.empty(q.size(0), k, device=q.device)
    out_i = torch.empty(q.size(0), k, dtype=torch.long, device=q.device)
    failed = []
    for qs in range(0, q.size(0), query_chunk):
        rows = slice(qs, qs + query_chunk)
        own = None if self_cols is None else self_cols[rows]
        vals, idx, outside = _candidates(qh[rows], bh, own, kg, bank_chunk)
        dq = delta[rows]
        kth = vals.topk(k, dim=1).values[:, -1]  # k candidates score at least this (bf16)
        floor = kth - dq - c * kth.abs()  # so the fp32 k-th score is at least this
        ceiling = outside + dq + c * outside.abs()  # and no left-out row scores above this
        need = (vals + dq.unsqueeze(1) + c * vals.abs()) >= floor.unsqueeze(1)  # -inf: nan, False
        count = need.sum(1)
        ok = ((outside == float("-inf")) | (ceiling < floor)) & (count <= 8 * k + 64)
        r = int(count[ok].max()) if ok.any() else k
        top, pos = vals.topk(r, dim=1)
        cand = idx.gather(1, pos)
        exact = _rescore(q[rows], b, cand)
        exact[top == float("-inf")] = float("-inf")  # the query's own row
        s, i = _sort_rows(exact, cand, k)
        out_s[rows], out_i[rows] = s, i
        failed.append(torch.nonzero(~ok).squeeze(1) + qs)
    failed = torch.cat(failed)
    if failed.numel():  # rows the bound could not certify: plain fp32 search
        own = None if self_cols is None else self_cols[failed]
        s, i = _topk_fp32(q[failed], b, k, query_chunk, bank_chunk, own)
        out_s[failed], out_i[failed] = s, i
    return out_s, out_i
