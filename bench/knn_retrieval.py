"""Benchmark: kNN classification and top-K retrieval on 50,000 x 512 bank features and 10,000
queries. Ours (eval/metrics/knn.py, eval/metrics/retrieval.py: chunked fp32 matmul + running top-k) against
scikit-learn's KNeighborsClassifier (brute force, cosine) and a naive full similarity matrix.

Prints the speed ratio to scikit-learn and to the naive approach, the achieved GFLOP/s of the
similarity work as a fraction of this machine's plain matmul throughput (the physical limit:
the similarity matmul dominates), and each variant's peak memory (measured in a fresh
subprocess per variant, above the memory the features themselves take). Run it alone: other
jobs on the same cores distort the timings.

    python bench/knn_retrieval.py [--bank 50000 --queries 10000 --dim 512 --k 200]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def make_data(n_bank: int, n_query: int, dim: int, classes: int = 100, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=g)
    yb = torch.randint(classes, (n_bank,), generator=g)
    yq = torch.randint(classes, (n_query,), generator=g)
    bank = centers[yb] + 4.0 * torch.randn(n_bank, dim, generator=g)
    query = centers[yq] + 4.0 * torch.randn(n_query, dim, generator=g)
    return bank, yb, query, yq


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_variant(name: str, args) -> dict:
    """Run one variant in this process; returns seconds, accuracy, peak memory above the data."""
    from assoc_lightning.eval.metrics.knn import majority_vote, topk_neighbors

    bank, yb, query, yq = make_data(args.bank, args.queries, args.dim)
    base = peak_rss_mb()
    classes = int(yb.max()) + 1
    t = time.perf_counter()
    if name == "ours":
        _, idx = topk_neighbors(query, bank, args.k)
        pred = majority_vote(yb[idx], classes)
    elif name == "naive":
        q = torch.nn.functional.normalize(query, dim=1)
        b = torch.nn.functional.normalize(bank, dim=1)
        sims = q @ b.T  # Q x N at once
        idx = sims.topk(args.k, dim=1).indices
        pred = majority_vote(yb[idx], classes)
    elif name == "sklearn":
        from sklearn.neighbors import KNeighborsClassifier

        clf = KNeighborsClassifier(n_neighbors=args.k, algorithm="brute", metric="cosine")
        clf.fit(bank.numpy(), yb.numpy())
        pred = torch.from_numpy(clf.predict(query.numpy()))
    elif name == "matmul":  # the machine's plain fp32 matmul throughput on the same shapes
        a, b = torch.randn(1024, args.dim), torch.randn(args.dim, args.bank)
        a @ b
        t = time.perf_counter()
        reps = 5
        for _ in range(reps):
            a @ b
        secs = (time.perf_counter() - t) / reps
        return {"gflops": 2 * 1024 * args.dim * args.bank / secs / 1e9}
    else:
        raise ValueError(name)
    secs = time.perf_counter() - t
    acc = (pred == yq).float().mean().item()
    return {"seconds": secs, "accuracy": acc, "peak_mb_above_data": peak_rss_mb() - base}


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--bank", type=int, default=50000)
    ap.add_argument("--queries", type=int, default=10000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return
    res = {}
    for name in ("matmul", "ours", "naive", "sklearn"):
        cmd = [sys.executable, __file__, "--variant", name, "--bank", str(args.bank),
               "--queries", str(args.queries), "--dim", str(args.dim), "--k", str(args.k)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        res[name] = json.loads(out.stdout.strip().splitlines()[-1])
    flops = 2 * args.queries * args.bank * args.dim
    ours, naive, skl = res["ours"], res["naive"], res["sklearn"]
    print(f"kNN (k={args.k}, majority vote) on {args.bank} x {args.dim} bank, {args.queries} queries, "
          f"torch threads={torch.get_num_threads()}")  # fmt: skip
    print(f"{'variant':10s} {'seconds':>8s} {'accuracy':>9s} {'peak MB':>8s}")
    for name in ("ours", "naive", "sklearn"):
        r = res[name]
        print(f"{name:10s} {r['seconds']:8.2f} {r['accuracy']:9.4f} {r['peak_mb_above_data']:8.0f}")
    print(f"speed-up vs scikit-learn: {skl['seconds'] / ours['seconds']:.2f}x (target >= 3x)")
    print(f"speed-up vs naive full matrix: {naive['seconds'] / ours['seconds']:.2f}x")
    achieved = flops / ours["seconds"] / 1e9
    print(f"similarity GFLOP/s: {achieved:.1f} of {res['matmul']['gflops']:.1f} plain matmul "
          f"= {achieved / res['matmul']['gflops']:.0%} (target >= 70%)")  # fmt: skip
    print(
        f"same accuracy as scikit-learn: {np.isclose(ours['accuracy'], skl['accuracy'], atol=1e-3)}"
    )


if __name__ == "__main__":
    main()
