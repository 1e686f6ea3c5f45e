"""BMA-Memory's central claim and its memory-size sweep on the embedded digits.

Runs ``assoc fit --config experiments/bma_memory.yaml`` per (row, seed), sequentially (two
torch jobs on 2 cores slow each other down), at a low paired fraction:

- rows ``paired`` (no unpaired learning), ``+sound`` (unpaired sounds, Eq. 5: the paper's
  Table 1 / 5 setting for image results) and ``+image`` (unpaired images: its Table 2
  setting for sound results), each over ``--seeds``;
- the memory sweep (its Fig. 6): ``+sound`` at 10, 50, 100, 500 and 1000 slots.

It reads each run's test kNN / linear-probe accuracy of both modalities (and the memory's
addressing entropy) and writes results/bma_memory.md with mean ± sd beside the paper's
numbers. Finished runs are kept and skipped, so an interrupted study resumes.

    python scripts/bma_memory_study.py                 # everything (the README's numbers)
    python scripts/bma_memory_study.py --table-only    # rebuild the table from runs/
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from study_runs import Run, run_all

from assoc_lightning.eval.results import mean_sd, newest_test_metrics

M = "--model.init_args."
ROWS = {
    "paired": ("paired only (no unpaired learning)", [M + "unpaired", "[]"]),
    "+sound": ("+ unpaired sounds", [M + "unpaired", "[audio]"]),
    "+image": ("+ unpaired images", [M + "unpaired", "[image]"]),
}
SLOTS = (10, 50, 100, 500, 1000)
METRICS = (
    "knn_majority_top1/image", "linear_top1/image", "knn_majority_top1/audio", "linear_top1/audio",
)  # fmt: skip
# Paper (ACIVW, 100 % / 20 % pairs): Table 1 / 2 / 5 top-1, without -> with unpaired learning
PAPER = (
    "| paper (ACIVW) | image kNN | image linear | sound kNN | sound linear |\n"
    "|---|---|---|---|---|\n"
    "| without unpaired learning, 100 % pairs | - | 0.745 | - | 0.931 |\n"
    "| + unpaired sounds (Kinetics), 100 % pairs | 0.772 | 0.778 | - | - |\n"
    "| + unpaired images, 100 % pairs | - | - | 0.936 | 0.956 |\n"
    "| without unpaired learning, 20 % pairs | - | 0.693 | - | - |\n"
    "| + unpaired sounds, 20 % pairs | - | 0.749 | - | - |\n"
)


# What the committed numbers say (rewrite it when the numbers change)
READING = """\
**Reading.** On these data unpaired learning helps little. Unpaired images give the sound
representation a small gain (kNN +0.019, linear +0.010, about one sd), the direction of the
paper's Table 2. Unpaired sounds do not improve the image representation (kNN +0.011, linear
-0.012, both within the spread) and cost the sound one (kNN -0.058): the paper's Table 1 / 5
effect does not appear here. Why: the image memory is barely addressed by content. After
training, an image query's addressing weights are close to uniform (entropy 6.50 of at most
6.91 nats) and two different images read almost the same thing (mean cosine 0.93-0.95
between read-outs), so f^{s,mem} in h^v carries little about the image, and the path by
which unpaired sounds reach images (they train M_v, the image queries' key) has nothing to
act on. Sound queries address more selectively (read-out cosine 0.58-0.77), and their
cyclic unpaired loss learns (from 4.3 to 1.6-2.2), while the unpaired image loss stays near
ln(2N - 1) = 4.84 (the value of identical views: 4.43-4.56 at the end), the same
near-uniform image addressing seen from the other side. Memory size does not matter either
(flat from 50 to 1000 slots; 10 slots, more peaked, are worse), unlike the paper's Fig. 6.
The schedule is 156 steps; the paper trains far longer at 2e-4, long enough for N(0, 1)
slots to move and specialize, which a 2-core CPU budget cannot show.
"""


def entropy(run_root: Path) -> float | None:
    """The last logged paired-batch addressing entropy of the image queries."""
    files = sorted(run_root.glob("version_*/metrics.csv"))
    if not files:
        return None
    last = None
    with files[-1].open() as f:
        for row in csv.DictReader(f):
            if row.get("train/address_entropy_image"):
                last = float(row["train/address_entropy_image"])
    return last


def offdiag_cos(x) -> float:
    """Mean cosine similarity between different rows of ``x``."""
    import torch.nn.functional as F

    x = F.normalize(x.double(), dim=1)
    s, n = x @ x.T, x.size(0)
    return float((s.sum() - s.diagonal().sum()) / (n * n - n))


def diagnose(run_root: Path) -> dict[str, dict[str, float]] | None:
    """How much a trained model's memory reads depend on the query, on the test split: per
    modality, the addressing entropy, the mean cosine between different queries' addressing
    weights and between their read-outs (1: every query reads the same thing)."""
    import torch

    from assoc_lightning.data import DigitsDataModule
    from assoc_lightning.methods.bma_memory import BMAMemory

    ckpts = sorted(run_root.glob("version_*/checkpoints/last.ckpt"))
    if not ckpts:
        return None
    model = BMAMemory.load_from_checkpoint(ckpts[-1], map_location="cpu").eval()
    dm = DigitsDataModule()
    dm.setup()
    out = {}
    with torch.no_grad():
        for m in ("image", "audio"):
            ds = dm.eval_dataset("test", m)
            x = torch.stack([ds[i][m] for i in range(len(ds))])
            f = model.features(m, x)
            read, w = model.memory.recall(f, m)
            entropy = float(-(w * w.clamp_min(1e-12).log()).sum(1).mean())
            out[m] = {"entropy": entropy, "w_cos": offdiag_cos(w), "read_cos": offdiag_cos(read)}
    return out


def diagnosis_table(save_dir: Path, seeds: list[int]) -> str:
    lines = [
        "| row | modality | addressing entropy (nats, max 6.91) | cos between queries' weights "
        "| cos between queries' read-outs |",
        "|---|---|---|---|---|",
    ]
    for row, (label, _) in ROWS.items():
        diags = [d for s in seeds if (d := diagnose(save_dir / f"{row}_seed{s}"))]
        for m in ("image", "audio"):
            vals = [mean_sd([d[m][k] for d in diags]) for k in ("entropy", "w_cos", "read_cos")]
            lines.append(f"| {label} | {m} queries | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def write_table(save_dir: Path, seeds: list[int], fraction: float, out: Path) -> str:
    lines = ["| row | " + " | ".join(METRICS) + " | n |", "|---" * (len(METRICS) + 2) + "|"]
    for row, (label, _) in ROWS.items():
        runs = [newest_test_metrics(save_dir / f"{row}_seed{s}") for s in seeds]
        runs = [r for r in runs if r]
        vals = [mean_sd([r[m] for r in runs if m in r]) for m in METRICS]
        lines.append(f"| {label} | " + " | ".join(vals) + f" | {len(runs)} |")
    sweep = [
        "| slots | image kNN | image linear | addressing entropy (nats) |",
        "|---|---|---|---|",
    ]
    for n in SLOTS:
        r = newest_test_metrics(save_dir / f"slots{n}_seed0")
        ent = entropy(save_dir / f"slots{n}_seed0")
        if r:
            sweep.append(
                f"| {n} | {r['knn_majority_top1/image']:.3f} | {r['linear_top1/image']:.3f} | "
                f"{ent if ent is None else f'{ent:.2f}'} (max {__import__('math').log(n):.2f}) |"
            )
    text = (
        "# BMA-Memory on the embedded digits: does unpaired data help?\n\n"
        f"`experiments/bma_memory.yaml` at paired fraction {fraction} of the training images "
        "(the rest of both modalities unpaired), test-split top-1 of kNN (majority vote, k from "
        "7..15 chosen on val: the paper's protocol) and the linear probe on h, mean ± sd over seeds "
        f"{seeds}. Regenerate with `python scripts/bma_memory_study.py`.\n\n"
        + "\n".join(lines)
        + "\n\nMemory size (the paper's Fig. 6: saturates at >= 500 slots), + unpaired sounds, "
        "seed 0:\n\n"
        + "\n".join(sweep)
        + "\n\nHow query-specific the memory reads are after training (test split, mean ± sd "
        "over the seeds; `diagnose()` in the script):\n\n"
        + diagnosis_table(save_dir, seeds)
        + "\n\nThe paper's numbers (ACIVW):\n\n"
        + PAPER
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="experiments/bma_memory.yaml")
    ap.add_argument("--save-dir", default="runs/bma_memory_study", type=Path)
    ap.add_argument("--out", default="results/bma_memory.md", type=Path)
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--paired-fraction", type=float, default=0.05)
    ap.add_argument("--no-sweep", action="store_true")
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("extra", nargs="*", help="further `assoc fit` arguments for every run")
    args = ap.parse_args()
    jobs = [(f"{row}_seed{s}", s, over) for row, (_, over) in ROWS.items() for s in args.seeds]
    if not args.no_sweep:
        jobs += [
            (f"slots{n}_seed0", 0, [*ROWS["+sound"][1], M + "num_slots", str(n)]) for n in SLOTS
        ]
    if not args.table_only:
        common = [
            "--config", args.config,
            "--data.init_args.paired_fraction", str(args.paired_fraction),
            "--trainer.enable_progress_bar", "false",
            "--trainer.check_val_every_n_epoch", "100",  # test numbers only
            "--eval.retrieval", "null",
        ]  # fmt: skip
        runs = [
            Run(name, [*common, "--seed_everything", str(seed), *over, *args.extra], args.save_dir)
            for name, seed, over in jobs
        ]
        run_all(runs, tag="bma study")
    print(write_table(args.save_dir, args.seeds, args.paired_fraction, args.out))


if __name__ == "__main__":
    main()
