"""CPU kernels (numba) of the exact top-k: one fused pass per query row over a block of scores
(bf16 or fp32), which finds the row's candidates, rescores them in fp32 and merges them into
the row's running top-k.

torch's element-wise work on CPU (comparisons, gathers, masked selects; bf16 above all) runs
at a fraction of memory speed, so a selection built from it cost more than the AMX bf16 matmul
saved; a fused per-row loop reads each score once. The bound these kernels apply is derived in
docs/evaluation.md ("Exact top-k through a bf16 pass"); ``topk.py`` calls them and owns the
fallback.

Scores are handled through their bit patterns (int16 for bf16, int32 for fp32) mapped to int32
keys that order like the values (``_key``), so a comparison against a threshold is an integer
comparison and the block maxima vectorize. Both formats go through the same row code; the
format's primitives are overloads chosen by the score array's dtype (numba compiles one
version for each, and caches it).
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange
from numba.extending import overload


def _key_table() -> np.ndarray:
    """float64 value of every bf16 key (index = key + 32768), ascending; NaNs as -inf / +inf."""
    bits = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    vals = bits.view(torch.bfloat16).double().numpy()
    raw = bits.numpy().astype(np.int32)
    table = np.empty(65536, np.float64)
    table[np.where(raw < 0, raw ^ 0x7FFF, raw) + 32768] = vals
    upper = np.arange(65536) >= 32768
    table[np.isnan(table) & upper] = np.inf
    table[np.isnan(table) & ~upper] = -np.inf
    return table


TABLE = _key_table()  # bf16 key -> value


# The score format's primitives, chosen by the dtype of the score array ``bits`` (numba
# compiles one version of the row code for each format; overloads keep it cacheable).


def _key(bits, r, j):
    """Monotone int32 key of ``bits[r, j]``: negative values have their magnitude bits
    flipped, so -0.0 -> -1 and larger magnitudes -> smaller keys (its own inverse)."""
    raise NotImplementedError("numba only")


def _value(bits, key, table):
    """The score (float64) a key stands for."""
    raise NotImplementedError("numba only")


def _min_key(bits, thr, table):
    """The smallest key whose score is >= ``thr``."""
    raise NotImplementedError("numba only")


def _lowest(bits):
    """The smallest key of the format."""
    raise NotImplementedError("numba only")


def _bf16(bits) -> bool:
    return bits.dtype.bitwidth == 16


@overload(_key, inline="always")
def _key_impl(bits, r, j):
    if _bf16(bits):
        return lambda bits, r, j: np.int32(bits[r, j]) ^ ((np.int32(bits[r, j]) >> 15) & 0x7FFF)
    return lambda bits, r, j: bits[r, j] ^ ((bits[r, j] >> 31) & 0x7FFFFFFF)


@njit(cache=True)
def _unkey32(key):
    return key ^ ((key >> 31) & 0x7FFFFFFF)


@njit(cache=True)
def _float_of_key32(key):
    box = np.empty(1, np.int32)
    box[0] = _unkey32(key)
    return np.float64(box.view(np.float32)[0])


@njit(cache=True)
def _min_key32(thr):
    f = np.float32(thr)
    if f < thr:
        f = np.nextafter(f, np.float32(np.inf))
    box = np.empty(1, np.float32)
    box[0] = f
    return _unkey32(box.view(np.int32)[0])


@overload(_value)
def _value_impl(bits, key, table):
    if _bf16(bits):
        return lambda bits, key, table: table[key + 32768]
    return lambda bits, key, table: _float_of_key32(key)


@overload(_min_key)
def _min_key_impl(bits, thr, table):
    if _bf16(bits):
        return lambda bits, thr, table: np.int32(np.searchsorted(table, thr) - 32768)
    return lambda bits, thr, table: _min_key32(thr)


def _bf16_scores(bits):
    """Whether the scores are bf16 (approximate: rescored) rather than fp32 (final)."""
    raise NotImplementedError("numba only")


@overload(_bf16_scores)
def _bf16_scores_impl(bits):
    flag = _bf16(bits)
    return lambda bits: flag


@overload(_lowest)
def _lowest_impl(bits):
    if _bf16(bits):
        return lambda bits: np.int32(-32768)
    return lambda bits: np.int32(-(2**31))


@njit(fastmath=True, cache=True)
def _dot(q, r, b, i):
    """fp32 ``q[r] . b[i]`` (vectorized: any summation order is within the bound's gamma_d)."""
    acc = np.float32(0.0)
    for j in range(q.shape[1]):
        acc += q[r, j] * b[i, j]
    return acc


@njit(parallel=True, cache=True)
def row_norms(x, xh, out):
    """``out[i]`` = (|x_i|, |xh_i|, |xh_i - x_i|) in float64, for fp32 rows ``x`` and the bit
    patterns ``xh`` (int16) of their bf16 roundings."""
    wide = xh.view(np.uint16)
    for i in prange(x.shape[0]):
        nx = 0.0
        nh = 0.0
        ne = 0.0
        bits = np.empty(x.shape[1], np.uint32)
        for j in range(x.shape[1]):
            bits[j] = np.uint32(wide[i, j]) << 16
        vals = bits.view(np.float32)
        for j in range(x.shape[1]):
            v = np.float64(x[i, j])
            h = np.float64(vals[j])
            nx += v * v
            nh += h * h
            ne += (h - v) * (h - v)
        out[i, 0] = np.sqrt(nx)
        out[i, 1] = np.sqrt(nh)
        out[i, 2] = np.sqrt(ne)


@njit(cache=True)
def _block_max(bits, r, width, blocks):
    """``blocks[r, i]`` = the largest key among ``bits[r, i * width : (i + 1) * width]``.
    (Indexing the 2-d arrays here, rather than row views, lets LLVM vectorize the loop.)"""
    n = bits.shape[1]
    full = n // width
    for blk in range(full):
        base = blk * width
        m = _lowest(bits)
        for j in range(width):
            m = max(m, _key(bits, r, base + j))
        blocks[r, blk] = m
    if full < blocks.shape[1]:
        m = _lowest(bits)
        for j in range(full * width, n):
            m = max(m, _key(bits, r, j))
        blocks[r, full] = m


@njit(cache=True)
def _threshold(lower, delta, c):
    """The smallest score x that can still reach ``lower`` (x + delta + c |x| >= lower)."""
    x = lower - delta
    thr = x / (1.0 + c) if x >= 0 else x / (1.0 - c)
    return thr - 1e-12 * (1.0 + abs(thr))  # the float64 arithmetic's own rounding, with room


@njit(cache=True)
def _certainly_above(lower, delta, c):
    """The smallest score x past which the fp32 score surely beats ``lower``
    (x - delta - c |x| > lower)."""
    y = lower + delta
    x = y / (1.0 - c) if y >= 0 else y / (1.0 + c)
    return x + 1e-12 * (1.0 + abs(x))  # the float64 arithmetic's own rounding, with room


@njit(cache=True)
def _row(r, bits, q, b, delta, c, k, width, own, table, floor, best_s, best_i, filled,
         offset, blocks, cols, vals, exact):  # fmt: skip
    """One query row against one bank chunk; returns False when its candidates overflow.
    bf16 scores are approximate and their candidates are rescored with the fp32 dot product;
    fp32 scores are final (and their bound is 0)."""
    n = bits.shape[1]
    _block_max(bits, r, width, blocks)
    rescore = _bf16_scores(bits)
    if 0 <= own < n:  # the row's own bank row is left out: its block's maximum without it
        blk = own // width
        m = _lowest(bits)
        for j in range(blk * width, min(blk * width + width, n)):
            if j != own:
                m = max(m, _key(bits, r, j))
        blocks[r, blk] = m
    nb = blocks.shape[1]
    d = delta[r]
    lower = floor[r]  # the final k-th fp32 score is at least this
    if nb >= k:  # k blocks have a row scoring >= their k-th largest maximum t
        t = _value(bits, np.partition(blocks[r], nb - k)[nb - k], table)
        lower = max(lower, t - d - c * abs(t))
    tkey = _min_key(bits, _threshold(lower, d, c), table)
    cap = cols.shape[1]
    cnt = 0
    for blk in range(nb):
        if blocks[r, blk] >= tkey:
            for j in range(blk * width, min(blk * width + width, n)):
                kj = _key(bits, r, j)
                if j != own and kj >= tkey:
                    if cnt == cap:
                        return False
                    cols[r, cnt] = j
                    vals[r, cnt] = _value(bits, kj, table)
                    cnt += 1
    if rescore:
        # fp32 rescoring, the best first: the k candidates with the largest approximate scores are
        # rescored, and the smallest of their fp32 scores floors the final k-th score itself; of the
        # rest (in decreasing approximate order), only those that can still reach it are rescored
        by_approx = np.argsort(-vals[r, :cnt])
        kth = np.inf  # the smallest fp32 score among the first k rescored
        for done in range(cnt):
            i = by_approx[done]
            v = vals[r, i]
            if done == k:  # k bank rows score >= kth in fp32
                lower = max(lower, kth)
            if done >= k and v + d + c * abs(v) < lower:
                break
            exact[r, i] = _dot(q, r, b, cols[r, i])
            if done < k:
                kth = min(kth, exact[r, i])
        kept = 0  # the rescored candidates, still in column order
        for i in range(cnt):
            if exact[r, i] == exact[r, i]:
                cols[r, kept] = cols[r, i]
                vals[r, kept] = exact[r, i]
                exact[r, i] = np.nan
                kept += 1
        cnt = kept
    order = np.argsort(-vals[r, :cnt], kind="mergesort")  # ties keep column order
    # merge with the top-k of the earlier chunks (lower indices: they win ties)
    have = filled[r]
    out = min(k, have + cnt)
    ms = np.empty(out, np.float32)
    mi = np.empty(out, np.int64)
    i = 0
    j = 0
    for o in range(out):
        if j >= cnt or (i < have and best_s[r, i] >= vals[r, order[j]]):
            ms[o], mi[o] = best_s[r, i], best_i[r, i]
            i += 1
        else:
            ms[o], mi[o] = vals[r, order[j]], cols[r, order[j]] + offset
            j += 1
    best_s[r, :out] = ms
    best_i[r, :out] = mi
    filled[r] = out
    if out == k:
        floor[r] = max(floor[r], np.float64(ms[k - 1]))
    return True


@njit(parallel=True, cache=True)
def _merge_chunk(bits, q, b, delta, c, k, width, own, table, floor, best_s, best_i, filled,
                 offset, blocks, cols, vals, exact, ok):  # fmt: skip
    for r in prange(bits.shape[0]):
        if ok[r]:
            ok[r] = _row(r, bits, q, b, delta, c, k, width, own[r], table, floor, best_s,
                         best_i, filled, offset, blocks, cols, vals, exact)  # fmt: skip


def merge_chunk(bits, q, b, delta, c, k, width, own, floor, best_s, best_i, filled, offset,
                blocks, cols, vals, exact, ok):  # fmt: skip
    """Merge one bank chunk's exact candidates into every query row's running top-k.

    ``bits`` [Q, n]: the chunk's scores as int16 (bf16 bit patterns: approximate, the
    candidates are rescored) or int32 (fp32 ones: final); ``q`` [Q, d], ``b`` [n, d]: the fp32
    unit vectors; ``delta`` [Q], ``c``: the bound |bf16 - fp32 rescored| <= delta + c |bf16|
    (0 and 0 for fp32 scores); ``own`` [Q]: each row's own column in the chunk (or -1); ``floor`` [Q] float64: a proven lower bound on each row's
    final k-th fp32 score (-inf at first), raised here; ``best_s`` / ``best_i`` [Q, k] and
    ``filled`` [Q]: the running top-k, sorted, ties to the lower index; ``offset``: the chunk's
    first bank row; ``blocks`` [Q, ceil(n / width)], ``cols``, ``vals``, ``exact`` [Q, cap]
    (``exact`` NaN, and left so): per-row scratch; ``ok`` [Q]: cleared for a row whose
    candidates overflow ``cap`` (its answer is then left to the caller).
    """
    _merge_chunk(bits, q, b, delta, c, k, width, own, TABLE, floor, best_s, best_i, filled,
                 offset, blocks, cols, vals, exact, ok)  # fmt: skip


@njit(cache=True)
def _rank_row(r, bits, q, b, own, delta, c, diag, table, counts):
    """Add to ``counts[r]`` the bank rows of this chunk that outrank the row's own pair."""
    n = bits.shape[1]
    s = own[r]
    d = delta[r]
    lo = _min_key(bits, _threshold(s, d, c), table)  # below: cannot reach s
    hi = _min_key(bits, _certainly_above(s, d, c), table)  # at or above: surely beat s
    above = 0
    for j in range(n):
        above += _key(bits, r, j) >= hi
    if 0 <= diag < n and _key(bits, r, diag) >= hi:
        above -= 1  # the pair itself never counts
    rescore = _bf16_scores(bits)
    for j in range(n):  # the band: decided by the fp32 score, ties to the lower index
        kj = _key(bits, r, j)
        if lo <= kj < hi and j != diag:
            e = _dot(q, r, b, j) if rescore else _value(bits, kj, table)
            if e > s or (e == s and j < diag):
                above += 1
    counts[r] += above


@njit(parallel=True, cache=True)
def _rank_chunk(bits, q, b, own, delta, c, diag, table, counts):
    for r in prange(bits.shape[0]):
        _rank_row(r, bits, q, b, own, delta, c, diag[r], table, counts)


def rank_chunk(bits, q, b, own, delta, c, diag, counts):
    """Count, per query row, the bank rows of one chunk whose fp32 score beats its own pair's.

    ``bits``, ``q``, ``b``, ``delta``, ``c``: as ``merge_chunk``; ``own`` [Q] float64: the
    fp32 score of each row's pair; ``diag`` [Q]: the pair's column relative to the chunk's
    first row (outside [0, n) when the pair lies in another chunk; a column before it wins a
    tie, one after loses); ``counts`` [Q] int64: added to.
    A bf16 score decides a row alone when the bound puts it clearly above or below ``own``;
    the rows in between are rescored in fp32.
    """
    _rank_chunk(bits, q, b, own, delta, c, diag, TABLE, counts)


def warm_up(scores: str) -> None:
    """Run every kernel of one score format (``fp32`` or ``bf16``) once on tiny inputs: compiles
    them, or loads them from numba's cache (where an unreadable file raises here, not mid-search).
    """
    rng = np.random.default_rng(0)
    q = rng.standard_normal((4, 8)).astype(np.float32)
    b = rng.standard_normal((16, 8)).astype(np.float32)
    if scores == "bf16":
        qh = torch.from_numpy(q).bfloat16()
        row_norms(q, qh.view(torch.int16).numpy(), np.empty((4, 3)))
        bh = torch.from_numpy(b).bfloat16()
        bits = (qh.float() @ bh.float().T).bfloat16().view(torch.int16).numpy()
    else:
        bits = (q @ b.T).view(np.int32)
    k, cap, delta = 2, 16, np.full(4, 0.01)
    merge_chunk(bits, q, b, delta, 0.004, k, 4, np.full(4, -1), np.full(4, -np.inf),
                np.empty((4, k), np.float32), np.empty((4, k), np.int64), np.zeros(4, np.int64),
                0, np.empty((4, 4), np.int32), np.empty((4, cap), np.int64),
                np.empty((4, cap), np.float32), np.full((4, cap), np.nan, np.float32),
                np.ones(4, np.bool_))  # fmt: skip
    rank_chunk(bits, q, b, np.zeros(4), delta, 0.004, np.arange(4), np.ones(4, np.int64))
