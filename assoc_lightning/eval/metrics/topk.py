"""Exact cosine top-k of queries against a bank, chunked, bounded memory, two paths.

``fp32``: each query chunk streams through bank chunks with a running top-k (memory
O(query_chunk x bank_chunk), never O(Q x N)).

``bf16``: a candidate pass with the device's fast bf16 matmul, then fp32 rescoring of the
candidates only. A proven bound on the bf16 score error (docs/evaluation.md, "Exact top-k
through a bf16 pass") shows, row by row, that every bank row left out cannot be in the fp32
top-k; a row with too many candidates is searched again in fp32. The result is the fp32
top-k either way.

``auto`` (the default) takes the bf16 path where the bf16 matmul is many times the fp32 one
(CUDA bf16 tensor cores; CPUs with AMX) and the search is large enough to gain; else fp32.

Two implementations of both paths: on CPU the numba kernels of ``topk_cpu.py`` (the product
through BLAS / AMX, then one fused pass per query row), elsewhere torch operations (group
maxima and ``topk``; they are also the CPU fallback without numba).

Both paths: ties in similarity go to the lower bank index; results sorted by decreasing
similarity; the similarities returned are fp32 dot products of the normalized vectors.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PRECISIONS = ("auto", "fp32", "bf16")
U_BF16 = 2.0**-8  # unit roundoff of bfloat16 (8 significand bits, round to nearest)
U_FP32 = 2.0**-24
GROUP = 8  # bank rows per group in the candidate selection
MIN_WORK = 1 << 24  # query x bank pairs below which the bf16 path gains nothing
CPU_CANDIDATES = 8  # candidates a query row may hold on CPU, per k, before it falls back
WIDTH = 64  # bank rows per block of the CPU pass (fewer when the chunk has < 4k blocks)


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
    if k <= 0 or q.size(0) == 0:  # nothing to find (a one-row bank, leave-one-out)
        return q.new_empty(q.size(0), max(k, 0)), torch.empty(
            q.size(0), max(k, 0), dtype=torch.long, device=q.device
        )
    self_cols = torch.arange(q.size(0), device=q.device) if exclude_self else None
    bf16 = resolve_precision(precision, q.device, q.size(0), b.size(0), k) == "bf16"
    kernels = cpu_kernels("bf16" if bf16 else "fp32") if q.device.type == "cpu" else None
    if kernels is not None:
        return _topk_cpu(kernels, q, b, k, query_chunk, bank_chunk, self_cols, bf16)
    if bf16:
        return _topk_bf16(q, b, k, query_chunk, bank_chunk, self_cols)
    return _topk_fp32(q, b, k, query_chunk, bank_chunk, self_cols)


def resolve_precision(precision: str, device: torch.device, rows: int, cols: int, k: int) -> str:
    """The path ``precision`` means for a ``rows x cols`` search of top-``k`` on ``device``."""
    if precision != "auto":
        return precision
    big = rows * cols >= MIN_WORK
    if device.type != "cpu":  # the group selection needs room for its candidate groups
        big = big and 4 * GROUP * candidate_groups(k) <= cols
    return "bf16" if big and fast_bf16(device.type) else "fp32"


def fast_bf16(device_type: str) -> bool:
    """Whether the bf16 path pays off on this device type.

    CUDA with bf16 tensor cores (compute capability 8.0 or newer), where the bf16 matmul is
    many times the fp32 one; a CPU with AMX (Intel Sapphire Rapids and newer), where it is
    3x the fp32 one and the fused CPU kernels (``topk_cpu.py``) keep the selection cheap. Not a
    CPU with AVX512-BF16 alone: its bf16 matmul was 2.4x the fp32 one, and the bf16 search
    with torch's selection lost to fp32 there; the kernels are unmeasured on such a CPU
    (docs/evaluation.md).
    """
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    return device_type == "cpu" and has_amx() and cpu_kernels("bf16") is not None


@functools.cache
def has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles (and torch can use them)."""
    try:
        return bool(torch.cpu._is_amx_tile_supported()) and bool(torch._C._cpu._init_amx())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def cpu_kernels(scores: str = "fp32"):
    """The numba kernels of the CPU search (``topk_cpu``) for ``fp32`` or ``bf16`` scores,
    compiled or loaded at the first use of that format in a process; None without numba, or when
    numba's cache of them cannot be read (then with a warning that says how to rebuild it; the
    torch implementation gives the same answers meanwhile)."""
    try:
        from assoc_lightning.eval.metrics import topk_cpu
    except ImportError:
        return None
    try:
        topk_cpu.warm_up(scores)
    except Exception as err:  # e.g. a cache file truncated by a killed process
        warnings.warn(
            f"the exact top-k search's CPU kernels could not be loaded ({type(err).__name__}: "
            f"{err}); numba's cache of them is probably damaged. Delete the topk_cpu.* files in "
            f"{Path(topk_cpu.__file__).parent / '__pycache__'} (or in NUMBA_CACHE_DIR if set) "
            "and they are rebuilt on the next run; searching with the torch implementation "
            "meanwhile (same results, slower).",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return topk_cpu


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
    safe = 1 + 1e-5  # the norms themselves may be computed in fp32
    nq, nqh, eq = (v * safe for v in _norms(q, qh))
    nb, nbh, eb = (v.max() * safe for v in _norms(b, bh))
    delta = eq * nb + nq * eb + eq * eb + gamma * nqh * nbh + 2 * gamma * nq * nb + 1e-30
    return delta, U_BF16 / (1 - U_BF16)


def _norms(x: torch.Tensor, xh: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Row norms |x|, |xh| and |xh - x| of fp32 rows and their bf16 roundings."""
    kernels = cpu_kernels("bf16") if x.device.type == "cpu" else None
    if kernels is not None:  # one pass; torch's bf16 element-wise work is slow on CPU
        out = np.empty((x.size(0), 3))
        kernels.row_norms(x.numpy(), xh.view(torch.int16).numpy(), out)
        return tuple(torch.from_numpy(out[:, i]).float() for i in range(3))
    xf = xh.float()
    return x.norm(dim=1), xf.norm(dim=1), (xf - x).norm(dim=1)


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


def similarities(qc: torch.Tensor, bc: torch.Tensor) -> torch.Tensor:
    """``qc @ bc.T`` in fp32; on CPU through numpy's BLAS (OpenBLAS), 1.1-1.6x torch's (MKL)
    at these block shapes on the AMD EPYC and the Intel Xeon (Sapphire Rapids) measured, and
    the product the CPU kernels select from."""
    if qc.device.type == "cpu" and qc.dtype == torch.float32:
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
    return _fallback(q, b, k, query_chunk, bank_chunk, self_cols, out_s, out_i, failed)


def _fallback(q, b, k, query_chunk, bank_chunk, self_cols, out_s, out_i, failed):
    """Rows the bf16 pass could not settle (listed in ``failed``): the plain fp32 search."""
    failed = torch.cat(failed)
    if failed.numel():
        own = None if self_cols is None else self_cols[failed]
        s, i = _topk_fp32(q[failed], b, k, query_chunk, bank_chunk, own)
        out_s[failed], out_i[failed] = s, i
    return out_s, out_i


def _topk_cpu(kernels, q, b, k, query_chunk, bank_chunk, self_cols, bf16):
    """Both paths on CPU: per block the product (AMX bf16 matmul, or fp32 through numpy's BLAS),
    then one fused numba pass per query row (``topk_cpu.merge_chunk``: the candidates that can
    reach the running k-th score, their fp32 rescoring on the bf16 path, the running top-k).
    """
    qh, bh, delta, c = cpu_bound(q, b, bf16)
    qn, bn, dn = q.numpy(), b.numpy(), delta.double().numpy()
    out_s = torch.empty(q.size(0), k)
    out_i = torch.empty(q.size(0), k, dtype=torch.long)
    cap = CPU_CANDIDATES * k + 64
    failed, buffers = [], {}
    for qs in range(0, q.size(0), query_chunk):
        rows = slice(qs, qs + query_chunk)
        nq = qn[rows].shape[0]
        floor = np.full(nq, -np.inf)
        best_s, best_i = out_s[rows].numpy(), out_i[rows].numpy()
        filled, ok = np.zeros(nq, np.int64), np.ones(nq, np.bool_)
        cols, vals = np.empty((nq, cap), np.int64), np.empty((nq, cap), np.float32)
        exact = np.full((nq, cap), np.nan, np.float32)
        qhr = qh[rows] if bf16 else None
        for bs, n, bits in cpu_products(qn[rows], qhr, bn, bh, bank_chunk, buffers):
            width = max(1, min(WIDTH, n // (4 * k)))  # >= 4k blocks: their k-th maximum is tight
            blocks = np.empty((nq, -(-n // width)), np.int32)
            own = np.full(nq, -1) if self_cols is None else self_cols[rows].numpy() - bs
            kernels.merge_chunk(
                bits, qn[rows], bn[bs : bs + n], dn[rows], c, k, width, own, floor, best_s,
                best_i, filled, bs, blocks, cols, vals, exact, ok,
            )  # fmt: skip
        failed.append(torch.from_numpy(np.flatnonzero(~ok)) + qs)
    return _fallback(q, b, k, query_chunk, bank_chunk, self_cols, out_s, out_i, failed)


def cpu_bound(q, b, bf16):
    """``(qh, bh, delta, c)`` of a CPU search: the bf16 roundings and their score bound, or
    (None, None, 0, 0) for fp32 scores, which are final."""
    if not bf16:
        return None, None, torch.zeros(q.size(0)), 0.0
    qh, bh = q.bfloat16(), b.bfloat16()
    return (qh, bh, *score_bound(q, qh, b, bh))


def cpu_products(qn, qh, bn, bh, bank_chunk, buffers):
    """``(start, rows, score bits)`` per bank chunk: bf16 scores (AMX matmul) as int16 when
    ``qh`` is given, else fp32 scores (numpy's BLAS) as int32. The scores go to buffers kept in
    ``buffers`` by shape (no page faults per block), so each block's bits are valid until the
    next is made. Also sets numba's threads to torch's."""
    import numba

    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    bf16 = qh is not None
    for bs in range(0, bn.shape[0], bank_chunk):
        n = min(bank_chunk, bn.shape[0] - bs)
        shape = (qn.shape[0], n)
        if shape not in buffers:
            buffers.clear()  # one buffer at a time
            buffers[shape] = torch.empty(shape, dtype=torch.bfloat16 if bf16 else torch.float32)
        sims = buffers[shape]
        if bf16:
            torch.matmul(qh, bh[bs : bs + n].T, out=sims)
            yield bs, n, sims.view(torch.int16).numpy()
        else:
            np.matmul(qn, bn[bs : bs + n].T, out=sims.numpy())
            yield bs, n, sims.view(torch.int32).numpy()
