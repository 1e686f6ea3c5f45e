"""Benchmark: gathering evaluation features across ranks, padded tensors vs pickled objects.

Two gloo processes (CPU) each hold ``rows`` x ``dim`` fp32 features plus int64 indices and
labels, and gather everyone's, as the feature bank does (``eval/bank.py``):

- ``tensor``: ``utils.dist.gather_rows`` (sizes, then one ``all_gather`` of padded rows);
- ``object``: ``torch.distributed.all_gather_object`` (pickled, the earlier path).

Each (variant, size) runs in fresh processes, so the printed peak resident memory per rank
(above what the process held before building its features) is that variant's own. Prints
seconds (best of ``--repeats``), GB/s of features received per rank and the peak. Run it
alone: other jobs distort the timings. Memory: the tensor path holds the local rows and every
rank's (3x the local size per rank on 2 ranks), the object path also their pickles; 1M x 1024
per rank (4 GB) needs about 12 GB per rank on the tensor path, more than 2 ranks have on a
24 GB machine, hence the 1M x 256 default.

    python bench/gather.py [--sizes 100000x1024 1000000x256 --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from assoc_lightning.utils.dist import gather_objects, gather_rows


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(rank: int, port: int, variant: str, rows: int, dim: int, repeats: int, out: str):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    torch.set_num_threads(1)
    base = peak_mb()
    g = torch.Generator().manual_seed(rank)
    emb = torch.randn(rows, dim, generator=g)
    idx = torch.arange(rank, 2 * rows, 2)
    lab = torch.randint(10, (rows,), generator=g)
    best = float("inf")
    for _ in range(repeats):
        dist.barrier()
        t = time.perf_counter()
        if variant == "tensor":
            got = (gather_rows(idx), gather_rows(emb), gather_rows(lab))
        else:
            got = gather_objects((idx, emb, lab))
        best = min(best, time.perf_counter() - t)
        del got
    peak = peak_mb() - base
    stats = torch.tensor([best, peak], dtype=torch.float64)
    every = [torch.empty_like(stats) for _ in range(2)]
    dist.all_gather(every, stats)
    if rank == 0:
        torch.save(torch.stack(every), out)
    dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(variant: str, rows: int, dim: int, repeats: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "stats.pt")
        args = (free_port(), variant, rows, dim, repeats, out)
        mp.spawn(worker, args=args, nprocs=2, join=True)
        stats = torch.load(out)
    return float(stats[:, 0].max()), float(stats[:, 1].max())  # the slower rank, the larger peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", nargs="*", default=["100000x1024", "1000000x256"])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print("gather of eval features, 2 gloo ranks on CPU (per rank: rows x dim fp32 + ids)")
    print(f"{'rows x dim':>14} {'variant':>7} {'seconds':>8} {'GB/s':>6} {'peak MB/rank':>13}")
    for size in args.sizes:
        rows, dim = (int(v) for v in size.split("x"))
        gb = 2 * rows * (dim * 4 + 16) / 1e9  # received per rank: both ranks' rows
        times = {}
        for variant in ("tensor", "object"):
            seconds, peak = run(variant, rows, dim, args.repeats)
            times[variant] = seconds
            print(f"{size:>14} {variant:>7} {seconds:8.3f} {gb / seconds:6.2f} {peak:13.0f}")
        print(f"{'':>14} object / tensor time: {times['object'] / times['tensor']:.2f}x")


if __name__ == "__main__":
    main()
