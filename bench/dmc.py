"""Benchmark: DMC training steps, and its clustering layers against plain batched matmuls.

1. Training at the embedded-default size (``experiments/dmc.yaml``: width 16, grey 64-px
   images, 96-frame VGGish log-mels, batch 64): our LightningModule (``Trainer.fit``: log-mel,
   both VGG subnets, the shared clustering layer, negatives, the centre-matching hinge, the
   logged terms, Adam) against a plain PyTorch loop doing the same forward / backward / Adam
   step with the same modules on the same synthetic in-memory batches (28-px digits-sized
   images and 1-s clips, resized / framed by the model as in the digits runs). Samples/s of both and the ratio (target
   >= 0.95), best of alternating runs.
2. The clustering layers at the paper's size, forward + backward, in position vectors/s:
   ``MultimodalClustering`` (C = 512, k = 10, d = 16, R = 3; 256 visual positions, a 16 x 16
   map, and 496 audio positions, 62 x 8) and ``soft_kmeans`` (the Simplified DMC's: 512-d
   vectors, 2 visual and 1 audio centre, 4 iterations). The reference is each one written
   with explicit batched matmuls (``torch.matmul`` on ``[B, k, p, d]`` and the
   ||u||^2 - 2 u.c + ||c||^2 distance expansion): the fastest straightforward version a user
   would write, and what ``einsum`` / ``cdist`` lower to, so a ratio near 1 says our
   formulation costs nothing. A per-sample Python loop would be a strawman (it only adds
   call overhead, and on a GPU launch latency), so it is not the reference. Both are checked
   to agree before they are timed.

Run it alone: other jobs on the same cores distort the timings. CPU always, and the GPU too
when there is one (``--device cpu`` for CPU only). About 35 s on 2 otherwise idle CPU cores.

    python bench/dmc.py [--batch 64 --width 16 --steps 10 --rounds 3 --cluster-batch 32]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningDataModule
from timing import fit_throughput
from torch.utils.data import DataLoader, Dataset

from assoc_lightning.losses.clustering import cluster_margin_loss, sample_negatives
from assoc_lightning.methods.dmc import DMC
from assoc_lightning.nn.clustering import MultimodalClustering, soft_kmeans

DEFAULT = dict(image_channels=1, image_size=64, audio_frames=96, lr=1e-3)  # experiments/dmc.yaml
POSITIONS = {"visual": 256, "audio": 496}  # the paper's 16 x 16 and 62 x 8 maps
KMEANS_CENTRES = {"visual": 2, "audio": 1}  # the Simplified DMC's


class Items(Dataset):
    """Synthetic digits-sized pairs held in memory (no data-loading cost in either loop)."""

    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(0)
        self.image = torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g)
        self.audio = torch.randn(n, 16000, generator=g)

    def __len__(self) -> int:
        return len(self.image)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.image[i], "audio": self.audio[i], "index": i, "pair_id": i,
                "label": i % 10}  # fmt: skip


def loader(n: int, batch: int) -> DataLoader:
    return DataLoader(Items(n), batch, shuffle=True, drop_last=True)


class Data(LightningDataModule):
    def __init__(self, n: int, batch: int) -> None:
        super().__init__()
        self.n, self.batch = n, batch

    def train_dataloader(self):
        return loader(self.n, self.batch)


def run_lightning(width: int, batch: int, steps: int, device: str) -> float:
    torch.manual_seed(0)
    model = DMC(width=width, **DEFAULT)
    return fit_throughput(model, Data(batch * (steps + 2), batch), batch, steps, device)


def run_plain(width: int, batch: int, steps: int, device: str) -> float:
    """The same computation without Lightning: the method's modules and losses by hand."""
    torch.manual_seed(0)
    m = DMC(width=width, **DEFAULT).to(device).train()
    opt = torch.optim.Adam(m.parameters(), lr=DEFAULT["lr"])
    t0 = 0.0
    for done, b in enumerate(loader(batch * (steps + 2), batch), start=1):
        b = {k: v.to(device) for k, v in b.items()}
        out = m.centres(b)
        negatives = sample_negatives(b["pair_id"], b["pair_id"])
        loss = cluster_margin_loss(out["image"][0], out["audio"][0], negatives)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if done == 2:
            t0 = time.perf_counter()
    return batch * steps / (time.perf_counter() - t0)


# ---------------------------------------------------------------------- references
def squash(x: torch.Tensor, scale: float = 10.0, eps: float = 1e-8) -> torch.Tensor:
    norm = x.norm(dim=-1, keepdim=True)
    return torch.tanh(scale * norm) * x / (norm + eps)


def clustering_matmul(layer: MultimodalClustering, features: torch.Tensor):
    """``MultimodalClustering.forward`` written with explicit batched matmuls."""
    c, k, d = layer.weight.shape
    u = squash(features.flatten(2).transpose(1, 2), layer.squash_scale)  # [B, p, C]
    u_hat = (u @ layer.weight.reshape(c, k * d)).unflatten(-1, (k, d)).transpose(1, 2)
    b = u_hat.new_zeros(u_hat.shape[:3])  # [B, k, p]
    for r in range(layer.iterations):
        assign = torch.softmax(layer.temperature * b, dim=1)
        out = (assign.unsqueeze(2) @ u_hat).squeeze(2)  # [B, k, 1, p] @ [B, k, p, d]
        if r < layer.iterations - 1:
            b = (u_hat @ F.normalize(out, dim=-1).unsqueeze(-1)).squeeze(-1)
    return squash(out, layer.squash_scale), assign


def kmeans_matmul(vectors: torch.Tensor, k: int, iterations: int = 4, sharpness: float = 30.0):
    """``soft_kmeans`` with the distances expanded into one matmul."""
    p = vectors.size(1)
    centres = vectors[:, torch.linspace(0, p - 1, k, device=vectors.device).round().long()]
    sq = vectors.pow(2).sum(-1, keepdim=True)  # [B, p, 1]
    for _ in range(iterations):
        d2 = sq - 2 * vectors @ centres.transpose(1, 2) + centres.pow(2).sum(-1).unsqueeze(1)
        assign = torch.softmax(-sharpness * d2.clamp_min(1e-12).sqrt(), dim=-1).transpose(1, 2)
        centres = assign @ vectors / assign.sum(-1, keepdim=True).clamp_min(1e-8)
    return centres, assign


def rate(step, vectors: int, device: str, seconds: float) -> float:
    """Position vectors per second of ``step()`` (one forward + backward), after a warm-up."""
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    step()
    sync()
    t, reps = time.perf_counter(), 0
    while time.perf_counter() - t < seconds or reps < 3:
        step()
        reps += 1
    sync()
    return reps * vectors / (time.perf_counter() - t)


def bench_clustering(
    batch: int, channels: int, device: str, seconds: float, rounds: int
) -> list[tuple]:
    """``(name, ours, reference)`` vectors/s, best of ``rounds`` alternating measurements."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    layer = MultimodalClustering(channels).to(device)
    rows = []
    for side, p in POSITIONS.items():
        x = torch.randn(batch, channels, p, generator=g).to(device).requires_grad_(True)
        gc = torch.randn(batch, layer.num_clusters, layer.dim, generator=g).to(device)
        v = (torch.randn(batch, p, channels, generator=g) / channels**0.5).to(device)
        v.requires_grad_(True)
        gk = torch.randn(batch, KMEANS_CENTRES[side], channels, generator=g).to(device)
        k = KMEANS_CENTRES[side]
        for name, ours, ref, inputs, grad in (
            (f"clustering layer, {side} ({p} pos.)", layer, lambda t: clustering_matmul(layer, t),
             x, gc),
            (f"soft k-means, {side} ({p} pos., k={k})", lambda t, k=k: soft_kmeans(t, k),
             lambda t, k=k: kmeans_matmul(t, k), v, gk),
        ):  # fmt: skip
            a, b = ours(inputs), ref(inputs)
            for s, t in zip(a, b, strict=True):  # the same function, or the ratio means nothing
                torch.testing.assert_close(s, t, rtol=1e-3, atol=1e-4)

            params = [inputs, *layer.parameters()]

            def step(fn=None, inputs=inputs, grad=grad, params=params):
                for t in params:
                    t.grad = None
                centres, _ = fn(inputs)
                (centres * grad).sum().backward()

            best = [0.0, 0.0]
            for _ in range(rounds):  # alternate, keep each one's best
                for i, fn in enumerate((ref, ours)):
                    best[i] = max(best[i], rate(lambda fn=fn: step(fn), batch * p, device, seconds))
            rows.append((name, best[1], best[0]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="alternating runs, best kept")
    ap.add_argument("--cluster-batch", type=int, default=32)
    ap.add_argument("--channels", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=0.5, help="per clustering measurement")
    default = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    ap.add_argument("--device", nargs="+", default=default, choices=["cpu", "cuda"])
    a = ap.parse_args()
    for device in a.device:
        plain, ours = 0.0, 0.0
        for _ in range(a.rounds):  # alternate, keep each one's best
            plain = max(plain, run_plain(a.width, a.batch, a.steps, device))
            ours = max(ours, run_lightning(a.width, a.batch, a.steps, device))
        print(f"training, experiments/dmc.yaml size ({device}, batch {a.batch}, width {a.width}):")
        print(f"  plain PyTorch loop  {plain:8.1f} pairs/s   (best of {a.rounds}, alternating)")
        print(f"  DMC (fit)           {ours:8.1f} pairs/s   ratio {ours / plain:.3f} "
              "(target >= 0.95)")  # fmt: skip
        print(f"forward + backward, paper size ({device}, batch {a.cluster_batch}, "
              f"C {a.channels}): vectors/s, ours vs explicit matmuls")  # fmt: skip
        rows = bench_clustering(a.cluster_batch, a.channels, device, a.seconds, a.rounds)
        for name, mine, ref in rows:
            print(f"  {name:38s} {mine:11.0f} vs {ref:11.0f}   ratio {mine / ref:.3f}")


if __name__ == "__main__":
    main()
