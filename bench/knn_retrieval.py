"""Benchmark: exact cosine top-k (the kNN / retrieval search) on a 50,000 x 512 bank with
10,000 queries, top-200. Ours (eval/metrics/topk.py: topk_neighbors, its fp32 and bf16
paths and what ``auto`` picks here) against faiss-cpu IndexFlatIP, scikit-learn's brute
cosine NearestNeighbors and the fp32 matmul alone (the similarity product every exact
method must do, in the same 1024-query blocks, through torch's BLAS and numpy's; the
faster is the "x matmul" reference), run in one process, alternating, best of three. Also checks every variant returns the same neighbours as ours in fp32, and prints
the peak memory of ours above the data (the search is chunked: it never holds Q x N).

Run it alone: other jobs on the same cores distort the timings.

    python bench/knn_retrieval.py [--bank 50000 --queries 10000 --dim 512 --k 200 --reps 3]
    python bench/knn_retrieval.py --device cuda   # ours and the matmul on the GPU; faiss-cpu
                                                  # and scikit-learn stay on the CPU

'auto' takes the bf16 path on CPUs with AMX and on CUDA GPUs with bf16 tensor cores, fp32
elsewhere (the first line printed says which). The first call of ours compiles its CPU
kernels once per machine (numba, cached); the timed runs come after a warm-up call.

faiss is optional (``pip install -c constraints.txt '.[bench]'``); without it its row says so.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
import torch.nn.functional as F

from assoc_lightning.eval.metrics.knn import majority_vote
from assoc_lightning.eval.metrics.topk import resolve_precision, topk_neighbors


def make_data(n_bank: int, n_query: int, dim: int, classes: int = 100, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g)
    yb = torch.randint(classes, (n_bank,), generator=g)
    yq = torch.randint(classes, (n_query,), generator=g)
    bank = centers[yb] + 4.0 * torch.randn(n_bank, dim, generator=g)
    query = centers[yq] + 4.0 * torch.randn(n_query, dim, generator=g)
    return bank, yb, query, yq


def variants(query: torch.Tensor, bank: torch.Tensor, k: int, device: torch.device) -> dict:
    """name -> callable returning the neighbour indices [Q, k] (None: the matmul alone)."""
    qn, bn = F.normalize(query, dim=1), F.normalize(bank, dim=1)
    qd, bd = query.to(device), bank.to(device)

    def ours(precision: str):
        def run():
            idx = topk_neighbors(qd, bd, k, precision=precision)[1]
            return idx.cpu()  # waits for the device

        return run

    out = {"ours (auto)": ours("auto"), "ours fp32": ours("fp32"), "ours bf16": ours("bf16")}
    try:
        import faiss

        index = faiss.IndexFlatIP(bank.size(1))
        index.add(bn.numpy())
        out["faiss IndexFlatIP"] = lambda: torch.from_numpy(index.search(qn.numpy(), k)[1])
    except ImportError:
        out["faiss IndexFlatIP"] = "not installed (pip install -c constraints.txt '.[bench]')"
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, algorithm="brute", metric="cosine").fit(bank.numpy())
    out["scikit-learn brute"] = lambda: torch.from_numpy(nn.kneighbors(query.numpy())[1])
    out.update(matmuls(qn.to(device), bn.to(device)))
    return out


def matmuls(qm: torch.Tensor, bm: torch.Tensor) -> dict:
    """name -> callable: the fp32 product of the unit vectors alone, in the searches' blocks
    of 1024 queries, through torch's BLAS and (on CPU) numpy's; each returns None."""
    bt = bm.T.contiguous()

    def matmul(product):
        def run():
            for s in range(0, qm.size(0), 1024):
                product(qm[s : s + 1024])
            if qm.device.type == "cuda":
                torch.cuda.synchronize()

        return run

    out = {"fp32 matmul (torch)": matmul(lambda qc: qc @ bt)}
    if qm.device.type == "cpu":
        out["fp32 matmul (numpy)"] = matmul(lambda qc: qc.numpy() @ bm.numpy().T)
    return out


def best_of(runs: dict, reps: int) -> tuple[dict, dict]:
    """``(best seconds, last result)`` per callable of ``runs``, ``reps`` rounds, alternating and
    rotating so that drifts hit every variant alike."""
    names = [name for name, f in runs.items() if callable(f)]
    best, found = dict.fromkeys(names, float("inf")), {}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            t = time.perf_counter()
            found[name] = runs[name]()
            best[name] = min(best[name], time.perf_counter() - t)
    return best, found


def same_neighbours(a: torch.Tensor, b: torch.Tensor) -> float:
    """Fraction of queries whose neighbour sets agree."""
    a, b = a.sort(1).values, b.sort(1).values
    return (a == b).all(1).float().mean().item()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bank", type=int, default=50000)
    ap.add_argument("--queries", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--ranks", type=int, default=20000, help="pairs of the instance-ranks run")
    ap.add_argument("--device", default="cpu", help="where ours and the matmul run")
    a = ap.parse_args()
    device = torch.device(a.device)
    bank, yb, query, yq = make_data(a.bank, a.queries, a.dim)
    runs = variants(query, bank, a.k, device)
    for precision in ("fp32", "bf16"):  # compiles (or loads) the CPU kernels before timing
        topk_neighbors(query[:64].to(device), bank[:4096].to(device), 8, precision=precision)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best, found = best_of(runs, a.reps)
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    ref = found["ours fp32"]
    mm = min(v for n, v in best.items() if n.startswith("fp32 matmul"))
    auto = resolve_precision("auto", device, a.queries, a.bank, a.k)
    print(f"exact cosine top-{a.k}: {a.queries} queries x {a.bank} x {a.dim} bank on {device}, "
          f"torch threads={torch.get_num_threads()}, best of {a.reps} alternating; "
          f"'auto' takes {auto} here")  # fmt: skip
    print(f"{'variant':20s} {'seconds':>8s} {'x matmul':>9s} {'same set':>9s} {'kNN acc':>8s}")
    for name, f in runs.items():
        if not callable(f):
            print(f"{name:20s} {f}")
            continue
        secs = best[name]
        if found[name] is None:  # a matmul alone
            print(f"{name:20s} {secs:8.2f} {secs / mm:9.2f}")
            continue
        acc = (majority_vote(yb[found[name]], 100) == yq).float().mean().item()
        print(f"{name:20s} {secs:8.2f} {secs / mm:9.2f} "
              f"{same_neighbours(found[name], ref):9.4f} {acc:8.4f}")  # fmt: skip
    faiss_s = best.get("faiss IndexFlatIP", float("nan"))
    print(f"speed-up of ours fp32: {faiss_s / best['ours fp32']:.2f}x vs faiss, "
          f"{best['scikit-learn brute'] / best['ours fp32']:.2f}x vs scikit-learn; "
          f"ours (auto) {best['ours (auto)'] / mm:.2f}x, bf16 path {best['ours bf16'] / mm:.2f}x "
          f"the fastest fp32 matmul alone (goal <= 0.8x)")  # fmt: skip
    print(f"peak memory above the data, all variants: {peak:.0f} MB")
    ranks_bench(a.ranks, a.dim, a.reps, device)


def ranks_bench(n: int, dim: int, reps: int, device: torch.device) -> None:
    """Instance ranks (retrieval R@K / mAP) of ``n`` pairs: ours on each path against the fp32
    matmul alone, best of ``reps``, alternating; all must give the fp32 path's ranks (up to
    pairs within fp32 rounding of each other)."""
    from assoc_lightning.eval.metrics.retrieval import instance_ranks

    g = torch.Generator().manual_seed(1)
    gallery, _, _, _ = make_data(n, 1, dim)
    queries = (gallery + 6.0 * torch.randn(n, dim, generator=g)).to(device)
    gallery = gallery.to(device)
    runs = {p: (lambda p=p: instance_ranks(queries, gallery, precision=p).cpu()) for p in
            ("fp32", "bf16")}  # fmt: skip
    runs.update(matmuls(F.normalize(queries, dim=1), F.normalize(gallery, dim=1)))
    for p in ("fp32", "bf16"):
        instance_ranks(queries[:64], gallery[:64], precision=p)  # warm-up
    best, found = best_of(runs, reps)
    mm = min(v for name, v in best.items() if "matmul" in name)
    print(f"\ninstance ranks of {n} pairs x {dim} on {device}, best of {reps} alternating")
    print(f"{'variant':20s} {'seconds':>8s} {'x matmul':>9s} {'same ranks':>10s}")
    for name, secs in best.items():
        same = (
            "" if found[name] is None else f"{(found[name] == found['fp32']).float().mean():10.4f}"
        )
        print(f"{name:20s} {secs:8.2f} {secs / mm:9.2f} {same}")


if __name__ == "__main__":
    main()
