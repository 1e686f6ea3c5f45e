"""The exact top-k search: the bf16 candidate path returns the fp32 brute force's neighbours,
through the CPU kernels (numba) and through the torch implementation (the one CUDA runs)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import assoc_lightning.eval.metrics.retrieval as retrieval_mod
import assoc_lightning.eval.metrics.topk as topk_mod
from assoc_lightning.eval.metrics.topk import (
    GROUP,
    resolve_precision,
    score_bound,
    topk_neighbors,
)


@pytest.fixture(params=["kernels", "torch"])
def backend(request, monkeypatch):
    """Run a test through the CPU kernels and through the torch implementation."""
    if request.param == "torch":
        for module in (topk_mod, retrieval_mod):  # both decide between kernels and torch
            monkeypatch.setattr(module, "cpu_kernels", lambda scores="fp32": None)
    else:
        assert topk_mod.cpu_kernels("fp32") is not None  # numba is a dependency
        assert topk_mod.cpu_kernels("bf16") is not None
    return request.param


def brute(q, b, k, exclude_self=False):
    """fp64 scores of the normalized fp32 vectors, ties to the lower index."""
    qn, bn = F.normalize(q.float(), dim=1), F.normalize(b.float(), dim=1)
    s = qn.double() @ bn.double().T
    if exclude_self:
        s.fill_diagonal_(float("-inf"))
    k = min(k, b.size(0) - int(exclude_self))
    order = torch.argsort(s, dim=1, descending=True, stable=True)[:, :k]
    return s.gather(1, order), order


def near_tie_bank(dim=64, n=3000, dense=400, gap=1e-4, seed=0):
    """A query whose bank holds ``dense`` rows with cosines 0.5, 0.5 + gap, ... (far finer than
    bf16's spacing of 2^-8 there) among random rows, shuffled."""
    g = torch.Generator().manual_seed(seed)
    q = F.normalize(torch.randn(1, dim, generator=g), dim=1)
    noise = torch.randn(n, dim, generator=g, dtype=torch.float64)
    noise -= (noise @ q.double().T) * q.double()  # orthogonal to q
    noise = F.normalize(noise, dim=1)
    cos = torch.rand(n, generator=g, dtype=torch.float64) * 0.4  # background, below 0.4
    cos[:dense] = 0.5 + gap * torch.arange(dense, dtype=torch.float64)
    bank = cos[:, None] * q.double() + (1 - cos[:, None] ** 2).sqrt() * noise
    bank = bank[torch.randperm(n, generator=g)].float()
    return q, bank


@pytest.mark.parametrize("k", [1, 37, 200])
def test_near_ties_at_the_kth_place_match_exactly(k, backend):
    q, bank = near_tie_bank()
    # the k-th place falls inside the dense run: its neighbours differ by 1e-4 in cosine
    ref_s, ref_i = brute(q, bank, k)
    for precision in ("fp32", "bf16"):
        s, i = topk_neighbors(q, bank, k, precision=precision)
        assert torch.equal(i, ref_i), precision
        assert torch.allclose(s.double(), ref_s, atol=1e-6)


def test_duplicated_rows_tie_to_the_lower_index(backend):
    g = torch.Generator().manual_seed(1)
    bank = torch.randn(5000, 32, generator=g)
    q = torch.randn(8, 32, generator=g)
    bank[torch.randperm(5000, generator=g)[:300]] = q[0]  # 300 copies of query 0's direction
    bank[4000:4100] = bank[17]  # and 100 copies of another row
    ref_s, ref_i = brute(q, bank, 50)
    s32, i32 = topk_neighbors(q, bank, 50, precision="fp32")
    s16, i16 = topk_neighbors(q, bank, 50, precision="bf16")
    assert torch.equal(i16, i32)
    assert torch.equal(i16[0], ref_i[0])  # the 50 lowest-index copies, in index order
    assert torch.equal(i16[0], i16[0].sort().values)


@pytest.mark.parametrize(
    ("n", "k", "query_chunk", "bank_chunk"),
    [(5, 3, 1024, 65536), (7, 10, 2, 3), (5000, 1500, 64, 1000), (20001, 20, 333, 4096)],
)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_bank_sizes_chunks_and_exclude_self(n, k, query_chunk, bank_chunk, precision, backend):
    g = torch.Generator().manual_seed(n)
    bank = torch.randn(n, 48, generator=g)
    for exclude_self in (False, True):
        q = bank[: min(n, 300)] if exclude_self else torch.randn(100, 48, generator=g)
        ref_s, ref_i = brute(q, bank, k, exclude_self)
        s, i = topk_neighbors(q, bank, k, query_chunk, bank_chunk, exclude_self, precision)
        assert s.shape == ref_s.shape == i.shape
        assert torch.allclose(s.double(), ref_s, atol=1e-6)
        # the same neighbours; random data may hold pairs within fp32 rounding of each other,
        # whose order either path sets by its summation order: compare by true score
        true = (F.normalize(q, dim=1).double() @ F.normalize(bank, dim=1).double().T).gather(1, i)
        assert (true >= ref_s[:, -1:] - 1e-6).all()
        assert all(len(set(row.tolist())) == row.numel() for row in i)
        if exclude_self:
            assert not (i == torch.arange(q.size(0)).unsqueeze(1)).any()


def _count_fallbacks(monkeypatch) -> list:
    """Allow too few candidates, and record the rows sent to the plain fp32 search."""
    calls = []
    real = topk_mod._topk_fp32
    monkeypatch.setattr(topk_mod, "candidate_groups", lambda k: k // GROUP + 1)
    monkeypatch.setattr(topk_mod, "CPU_CANDIDATES", 1)
    monkeypatch.setattr(
        topk_mod, "_topk_fp32", lambda q_, *a: calls.append(len(q_)) or real(q_, *a)
    )
    return calls


def test_rows_the_bound_cannot_certify_fall_back_to_fp32(monkeypatch, backend):
    q, bank = near_tie_bank(dense=1500, gap=1e-5)  # 1500 rows within the bound of the 200th
    q = q.repeat(3, 1)
    calls = _count_fallbacks(monkeypatch)
    ref_s, ref_i = brute(q, bank, 200)
    _, i = topk_neighbors(q, bank, 200, precision="bf16")
    assert calls == [3]  # every row searched again in fp32
    assert torch.equal(i, ref_i)


def test_fp32_kernel_rows_with_too_many_ties_fall_back(monkeypatch):
    """The fp32 kernel has no band; exact ties at the k-th place overflow it instead."""
    q, bank = near_tie_bank()
    bank[torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[:1500]] = q
    q = q.repeat(3, 1)
    calls = _count_fallbacks(monkeypatch)
    ref_s, _ = brute(q, bank, 200)
    s, i = topk_neighbors(q, bank, 200, precision="fp32")
    assert calls == [3]
    # 1500 copies of q: any 200 of them, as the fp32 product rounds them
    assert torch.allclose(s.double(), ref_s, atol=1e-6)
    assert all(len(set(row.tolist())) == 200 for row in i)


def test_negative_scores_and_k_near_the_bank_size(backend):
    """Thresholds below zero: the keys of negative scores order correctly."""
    g = torch.Generator().manual_seed(7)
    bank = torch.randn(3000, 32, generator=g)
    q = -bank[:50] + 0.1 * torch.randn(50, 32, generator=g)  # mostly negative cosines at the top
    for k in (2990, 1500):
        ref_s, ref_i = brute(q, bank, k)
        for precision in ("fp32", "bf16"):
            s, i = topk_neighbors(q, bank, k, precision=precision)
            assert torch.allclose(s.double(), ref_s, atol=1e-6), (k, precision)
            true = F.normalize(q, dim=1).double() @ F.normalize(bank, dim=1).double().T
            assert (true.gather(1, i) >= ref_s[:, -1:] - 1e-6).all()


def test_score_bound_holds_on_worst_case_rounding():
    g = torch.Generator().manual_seed(3)
    # elements halfway between neighbouring bf16 values round with the largest error
    base = torch.randn(64, 256, generator=g).bfloat16().float()
    ulp = base.abs() * 2.0**-7
    q = F.normalize(base[:16] + 0.5 * ulp[:16] * torch.sign(base[:16]), dim=1)
    b = F.normalize(base[16:] + 0.5 * ulp[16:] * torch.sign(base[16:]), dim=1)
    b = torch.cat([b, q])  # scores up to 1 too
    qh, bh = q.bfloat16(), b.bfloat16()
    approx = (qh @ bh.T).float()
    exact = q.double() @ b.double().T
    delta, c = score_bound(q, qh, b, bh)
    err = (approx.double() - exact).abs()
    assert (err <= delta.double().unsqueeze(1) + c * approx.abs().double()).all()
    assert err.max() > 0.1 * delta.max()  # and the bound is not vacuous


def test_auto_takes_bf16_on_amx_cpus_and_large_searches(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(topk_mod, "has_amx", lambda: True)
    assert resolve_precision("auto", cpu, 10_000, 50_000, 200) == "bf16"
    assert resolve_precision("auto", cpu, 100, 1000, 10) == "fp32"  # too small to gain
    monkeypatch.setattr(topk_mod, "cpu_kernels", lambda scores="fp32": None)
    assert resolve_precision("auto", cpu, 10_000, 50_000, 200) == "fp32"  # no kernels
    monkeypatch.undo()
    monkeypatch.setattr(topk_mod, "has_amx", lambda: False)
    assert resolve_precision("auto", cpu, 10_000, 50_000, 200) == "fp32"  # AVX512-BF16 alone
    assert resolve_precision("bf16", cpu, 10, 10, 5) == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        topk_neighbors(torch.randn(2, 4), torch.randn(3, 4), 1, precision="fp16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_bf16_path_on_cuda_matches_cpu_fp32():
    g = torch.Generator().manual_seed(4)
    bank, q = torch.randn(30000, 128, generator=g), torch.randn(2000, 128, generator=g)
    s_ref, i_ref = topk_neighbors(q, bank, 50, precision="fp32")
    s, i = topk_neighbors(q.cuda(), bank.cuda(), 50)
    assert resolve_precision("auto", torch.device("cuda"), 2000, 30000, 50) == "bf16"
    assert torch.allclose(s.cpu(), s_ref, atol=1e-5)
    assert (i.cpu() == i_ref).float().mean() > 0.999


def test_group_selection_equals_plain_topk_with_ties():
    g = torch.Generator().manual_seed(5)
    sims = (torch.randn(64, 10_003, generator=g) * 8).round() / 8  # many exact ties
    sims[3, 100:400] = 50.0  # a row whose top 30 are all one tied run
    v, i = topk_mod._chunk_topk(sims, 30)
    ref_v, _ = sims.topk(30, dim=1)
    assert torch.equal(v, ref_v)
    assert torch.equal(sims.gather(1, i), v)
    assert all(len(set(row.tolist())) == 30 for row in i)


def test_score_keys_order_like_the_scores():
    """The kernels compare scores as integer keys; the keys, their values and the threshold
    keys must agree with the floats themselves, negative values, zeros and infinities too."""
    from numba import njit

    kern = topk_mod.cpu_kernels()

    @njit
    def probe(bits, thr, table):
        keys = np.empty(bits.shape[1], np.int32)
        vals = np.empty(bits.shape[1])
        for j in range(bits.shape[1]):
            keys[j] = kern._key(bits, 0, j)
            vals[j] = kern._value(bits, keys[j], table)
        mins = np.empty(thr.shape[0], np.int32)
        for i in range(thr.shape[0]):
            mins[i] = kern._min_key(bits, thr[i], table)
        return keys, vals, mins

    g = torch.Generator().manual_seed(8)
    x = torch.cat([torch.randn(2000, generator=g) * 10 ** torch.randint(-6, 3, (2000,), generator=g),
                   torch.tensor([0.0, -0.0, float("inf"), float("-inf"), 1.0, -1.0])])  # fmt: skip
    thr = np.random.default_rng(0).normal(size=500) * 0.5
    for xs, view in ((x.bfloat16(), torch.int16), (x, torch.int32)):
        bits = xs.view(view).numpy()[None]
        keys, vals, mins = probe(bits, thr, kern.TABLE)
        assert np.array_equal(vals, xs.double().numpy())  # a key's value is the score
        order = np.argsort(keys, kind="stable")
        assert np.all(vals[order][1:] >= vals[order][:-1])  # keys order like the scores
        # the threshold key admits exactly the scores at or above the threshold
        assert np.array_equal(keys[:, None] >= mins[None], vals[:, None] >= thr[None])


def test_row_norms_match_torch():
    g = torch.Generator().manual_seed(9)
    x = F.normalize(torch.randn(300, 77, generator=g), dim=1)
    out = np.empty((300, 3))
    topk_mod.cpu_kernels().row_norms(x.numpy(), x.bfloat16().view(torch.int16).numpy(), out)
    xf = x.bfloat16().float()
    ref = torch.stack([x.norm(dim=1), xf.norm(dim=1), (xf - x).norm(dim=1)], 1).double()
    assert torch.allclose(torch.from_numpy(out), ref, rtol=1e-6, atol=1e-9)


def test_fp32_similarities_match_torch_whatever_the_blas():
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(300, 64, generator=g), torch.randn(1000, 64, generator=g)
    assert torch.allclose(topk_mod.similarities(a, b), a @ b.T, atol=1e-5)


def test_an_unreadable_kernel_cache_falls_back_to_torch_with_a_warning(monkeypatch):
    import pickle

    kern = topk_mod.cpu_kernels()
    topk_mod.cpu_kernels.cache_clear()

    def damaged(scores):
        raise pickle.UnpicklingError("invalid load key, ','.")

    monkeypatch.setattr(kern, "warm_up", damaged)
    try:
        with pytest.warns(RuntimeWarning, match="Delete the topk_cpu"):
            assert topk_mod.cpu_kernels("bf16") is None
        q, bank = near_tie_bank()
        ref_s, ref_i = brute(q, bank, 37)
        assert torch.equal(topk_neighbors(q, bank, 37, precision="bf16")[1], ref_i)
    finally:
        topk_mod.cpu_kernels.cache_clear()


def test_nothing_to_find_gives_empty_results(backend):
    s, i = topk_neighbors(torch.randn(1, 4), torch.randn(1, 4), 3, exclude_self=True)
    assert s.shape == i.shape == (1, 0)
    s, i = topk_neighbors(torch.randn(0, 4), torch.randn(5, 4), 3, precision="bf16")
    assert s.shape == i.shape == (0, 3)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_instance_ranks_on_near_ties_match_fp64(precision, backend):
    """Every gallery row's rank against one query direction, 400 of them 1e-5 apart in cosine
    (far inside bf16's error, far outside fp32's): the bf16 counts must rescore that band."""
    q, bank = near_tie_bank(n=3000, dense=400, gap=1e-5)
    queries = q.repeat(len(bank), 1)  # query i is paired with gallery row i
    ranks = retrieval_mod.instance_ranks(
        queries, bank, chunk=512, gallery_chunk=1000, precision=precision
    )
    s = (F.normalize(q.double(), dim=1) @ F.normalize(bank.double(), dim=1).T)[0]
    order = torch.argsort(s, descending=True, stable=True)
    ref = torch.empty_like(order)
    ref[order] = torch.arange(1, len(bank) + 1)
    dense = s >= 0.5 - 1e-9
    assert torch.equal(ranks[dense], ref[dense])
    # background rows: random cosines, some within fp32 rounding of each other
    assert (ranks - ref).abs().max() <= 2 and (ranks == ref).float().mean() > 0.99
