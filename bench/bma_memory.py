"""Benchmark: BMA-Memory training steps, and the memory addressing against plain matmul.

1. Training: our LightningModule (``Trainer.fit`` over a CombinedLoader of pairs and unpaired
   sounds: log-mel, both ResNets, key-value memory reads, the cyclic unpaired read of two
   SpecAugment views, both NT-Xent losses, Adam) against a plain PyTorch loop doing the same
   work with the same modules on the same tensors. Prints samples/s of both and the ratio
   (target >= 0.95), best of alternating runs.
2. Memory addressing (``BimodalMemory.recall``: cosine, softmax, weighted read) against the
   same three matmul-bound steps written inline on pre-normalized tensors: the fraction of
   the plain throughput it keeps.

Run it alone: other jobs on the same cores distort the timings. On a GPU pass ``--device cuda``.

    python bench/bma_memory.py [--batch 64 --width 16 --steps 8]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import CombinedLoader
from timing import fit_throughput
from torch.utils.data import DataLoader, Dataset

from assoc_lightning.losses import multi_positive_nt_xent
from assoc_lightning.methods.bma_memory import BMAMemory
from assoc_lightning.nn.memory import BimodalMemory

SMALL = dict(
    image_channels=1, image_size=28, sample_rate=16000, win_ms=25.0, n_mels=40, freq_width=8,
    time_width=15, unpaired=["audio"],
)  # fmt: skip


class Items(Dataset):
    """Synthetic digits-sized items held in memory (no data-loading cost in either loop)."""

    def __init__(self, n: int, modalities: tuple[str, ...]) -> None:
        g = torch.Generator().manual_seed(0)
        self.data = {
            "image": torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
            "audio": torch.randn(n, 16000, generator=g),
        }
        self.modalities, self.n = modalities, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        out = {m: self.data[m][i] for m in self.modalities}
        return {**out, "index": i, "pair_id": i, "label": i % 10}


def loaders(n: int, batch: int) -> dict[str, DataLoader]:
    return {
        "paired": DataLoader(Items(n, ("image", "audio")), batch, shuffle=True, drop_last=True),
        "unpaired_audio": DataLoader(Items(n, ("audio",)), batch, shuffle=True, drop_last=True),
    }


class Data(LightningDataModule):
    def __init__(self, n: int, batch: int) -> None:
        super().__init__()
        self.n, self.batch = n, batch

    def train_dataloader(self):
        return CombinedLoader(loaders(self.n, self.batch), mode="max_size_cycle")


def run_lightning(width: int, batch: int, steps: int, device: str) -> float:
    torch.manual_seed(0)
    model = BMAMemory(width=width, **SMALL)
    return fit_throughput(model, Data(batch * (steps + 2), batch), batch, steps, device)


def run_plain(width: int, batch: int, steps: int, device: str) -> float:
    """The same computation without Lightning: the method's modules called by hand."""
    torch.manual_seed(0)
    m = BMAMemory(width=width, **SMALL).to(device).train()
    opt = torch.optim.Adam(m.parameters(), lr=2e-4)
    it = loaders(batch * (steps + 2), batch)
    t0 = 0.0
    for done, (pairs, unpaired) in enumerate(
        zip(it["paired"], it["unpaired_audio"], strict=True), start=1
    ):
        pairs = {k: v.to(device) for k, v in pairs.items()}
        unpaired = {k: v.to(device) for k, v in unpaired.items()}
        f_v = m.encoders["image"](m.images(pairs["image"]))
        f_s = m.encoders["audio"](m.frontend(pairs["audio"]))
        read_s, _ = m.memory.recall(f_v, "image")
        read_v, _ = m.memory.recall(f_s, "audio")
        z = torch.cat(
            [
                m.heads["image"](torch.cat([f_v, read_s], 1)),
                m.heads["audio"](torch.cat([read_v, f_s], 1)),
            ]
        )
        ids = pairs["pair_id"]
        loss = multi_positive_nt_xent(z, torch.cat([ids, ids]), 0.1)
        spec = m.frontend(unpaired["audio"])
        views = []
        for _ in range(2):
            f = m.encoders["audio"](m.spec_augment(spec))
            pseudo, _ = m.memory.recall(f, "audio")
            back, _ = m.memory.recall(pseudo, "image")
            views.append(m.heads["audio"](torch.cat([pseudo, back], 1)))
        uid = unpaired["index"]
        loss = loss + multi_positive_nt_xent(torch.cat(views), torch.cat([uid, uid]), 0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if done == 2:
            t0 = time.perf_counter()
    return batch * steps / (time.perf_counter() - t0)


def bench_addressing(n: int, slots: int, dim: int, device: str, seconds: float = 2.0):
    mem = BimodalMemory(slots, dim).to(device)
    q = torch.randn(n, dim, device=device)
    keys = F.normalize(mem.slots["image"].detach(), dim=-1)
    values = mem.slots["audio"].detach()
    qn = F.normalize(q, dim=-1)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    flops = 2 * 2 * n * slots * dim

    def rate(fn) -> float:
        fn()
        sync()
        t, reps = time.perf_counter(), 0
        while time.perf_counter() - t < seconds:
            fn()
            reps += 1
        sync()
        return reps * flops / (time.perf_counter() - t) / 1e9

    with torch.no_grad():
        plain = rate(lambda: torch.softmax(qn @ keys.T / 0.1, dim=-1) @ values)
        ours = rate(lambda: mem.recall(q, "image"))
    return ours, plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--queries", type=int, default=4096)
    ap.add_argument("--slots", type=int, default=1000)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args()
    plain, ours = 0.0, 0.0
    for _ in range(2):  # alternate, keep each one's best
        plain = max(plain, run_plain(a.width, a.batch, a.steps, a.device))
        ours = max(ours, run_lightning(a.width, a.batch, a.steps, a.device))
    print(f"training, pairs + unpaired sounds ({a.device}, batch {a.batch}, width {a.width}):")
    print(f"  plain PyTorch loop  {plain:8.1f} pairs/s   (best of 2, alternating)")
    print(f"  BMAMemory (fit)     {ours:8.1f} pairs/s   ratio {ours / plain:.3f} (target >= 0.95)")
    dim = 8 * a.width * 4  # the paper's 512 at width 16 x 4
    read, mm = bench_addressing(a.queries, a.slots, dim, a.device)
    print(f"memory addressing {a.queries} x {a.slots} x {dim}: {read:.1f} GFLOP/s vs plain "
          f"{mm:.1f} GFLOP/s -> {read / mm:.0%} of the plain throughput")  # fmt: skip


if __name__ == "__main__":
    main()
