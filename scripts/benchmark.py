"""The weakly-paired benchmark: every method on the same data, from full pairing down to 1 %.

Per (method, paired fraction, seed) one ordinary ``assoc fit --config experiments/<method>.yaml``
(its resolved config saved with the run as always), at paired fractions 1.0, 0.2, 0.05 and
0.01 of the training images (``--data.init_args.paired_fraction``: a seeded, class-stratified
subset of pair anchors; every unimodal item stays for the unimodal parts and the evaluation),
3 seeds each, then results/benchmark.md (mean ± sd per method x fraction x metric, the papers'
own headline numbers beside) and results/benchmark.png (each headline metric against the
paired fraction, one curve per method). Same evaluation for all: kNN and linear probe of each
modality, class-match retrieval audio->image and image->audio, cross-modal recognition where a
method generates (the VAE associator); the pictures and the transfer evaluation are off.

What each method does with the pairs it is not given:

- ``cmcr``: uses no audio-image pair at any fraction (two spaces connected through captions
  and unimodal memories): one row, not four;
- ``bma_memory``, ``vae_associator``: use the unpaired rest (BMA-Memory's unpaired losses on
  sounds and images, ``unpaired: [audio, image]``; the VAE associator's VAEs on all data, its
  associators on the pairs). Their epoch is the longest unpaired stream, the same at every
  fraction, so their schedule is the experiment's own;
- ``ig_embedding``, ``dmc``: cannot use unpaired data (every loss term needs a pair), so they
  train on the pairs only. So that they get the same budget (optimizer steps) at every fraction,
  their schedule is set in steps (the experiment's epochs x its batches per epoch at full
  pairing) and every epoch-based interval (validation, checkpoint, IG's learning-rate decay) is
  stretched by the same factor; below one batch of pairs the batch is all the pairs.

Finished runs are skipped and killed ones resume from their last.ckpt (``scripts/study_runs.py``),
so an interrupted benchmark continues where it stopped. On a cluster, print the runs as shell
commands for any launcher (``--emit-commands``) or submit them as a SLURM job array
(``--submitit KEY=VALUE ...``, needs ``pip install -e '.[slurm]'``), then build the table and
the picture with ``--table-only``.

    python scripts/benchmark.py                         # everything: 51 runs, hours on 2 CPU cores
    python scripts/benchmark.py --table-only            # rebuild table + picture from runs/
    python scripts/benchmark.py --emit-commands > runs.txt
    python scripts/benchmark.py --submitit slurm_partition=gpu timeout_min=120 gpus_per_node=1
    python scripts/benchmark.py --dataset mnist_speech_commands -- --data.init_args.data_dir /data
    python scripts/benchmark.py --methods ig_embedding --fractions 1.0 0.01 --seeds 0 -- \\
        --trainer.max_steps 20                          # further `assoc fit` arguments after --
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from study_runs import Run, parse_params, run_all, shell_lines, submit

from assoc_lightning.eval.results import mean_sd, newest_test_metrics

FRACTIONS = (1.0, 0.2, 0.05, 0.01)
SEEDS = (0, 1, 2)
DATASETS = ("digits", "mnist_speech_commands")
# the headline metrics: (metric, column name); every run's results.jsonl holds more
METRICS = (
    ("knn_top1/image", "image kNN"),
    ("knn_top1/audio", "audio kNN"),
    ("linear_top1/image", "image linear"),
    ("linear_top1/audio", "audio linear"),
    ("retrieval/a2i_class_r1", "a2i class R@1"),
    ("retrieval/i2a_class_r1", "i2a class R@1"),
    ("crossmodal_acc/audio2image", "a2i cross-modal acc"),
    ("crossmodal_acc/image2audio", "i2a cross-modal acc"),
)
# every run: the shared suite without its pictures and the transfer set, no progress bar
COMMON = [
    "--trainer.enable_progress_bar", "false",
    "--eval.tsne", "null", "--eval.retrieval_examples", "null", "--eval.transfer", "null",
]  # fmt: skip


@dataclass(frozen=True)
class Method:
    config: str
    pairs: str  # "none" (no pairs by construction), "only" (cannot use unpaired data), "unpaired"
    note: str


METHODS = {
    "cmcr": Method(
        "experiments/cmcr.yaml",
        "none",
        "no audio-image pair by construction (captions and unimodal memories connect a "
        "text-image and a text-audio space): one row, whatever the fraction",
    ),
    "ig_embedding": Method(
        "experiments/ig_embedding.yaml",
        "only",
        "cannot use unpaired data (similarity and IG terms need pairs): trains on the pairs "
        "only, same number of steps at every fraction",
    ),
    "dmc": Method(
        "experiments/dmc.yaml",
        "only",
        "cannot use unpaired data (the centre-matching loss needs pairs): trains on the pairs "
        "only, same number of steps at every fraction",
    ),
    "vae_associator": Method(
        "experiments/vae_associator.yaml",
        "unpaired",
        "uses unpaired data: VAEs on every training item (phase 1), associators on the pairs "
        "(phase 2); no shared space, so no retrieval",
    ),
    "bma_memory": Method(
        "experiments/bma_memory.yaml",
        "unpaired",
        "uses unpaired data: unpaired sounds and images through the memories (Eq. 5, both "
        "directions) beside the paired loss",
    ),
}
UNPAIRED = {"none": "no pairs at all", "only": "no (pairs only)", "unpaired": "yes"}
# The papers' own headline numbers (their data and protocols, ../METHODS.md and the study
# scripts' PAPER tables), keyed by (method, paired fraction); None: C-MCR's one row.
PAPER = {
    ("cmcr", None): "AVE a2i / i2a mAP 0.041 / 0.041, instance level, CLIP + CLAP (Table 1)",
    ("ig_embedding", 1.0): "MNIST x TIDIGITS: cluster purity 0.984, modality SVM 0.554 "
    "(Table 1, lambda 2.15e-2)",
    ("dmc", 1.0): "ESC-50 audio linear SVM 0.826 (the ImageNet-initialised DMC, leaderboard); "
    "DCASE 2014 scenes 0.94",
    ("vae_associator", 1.0): "MNIST x Speech Commands cross-modal acc: a2i 0.887, i2a 0.595 "
    "(Table 1)",
    ("vae_associator", 0.05): "about 5 % pairs already 'good' (Fig. 6, a curve without numbers)",
    ("bma_memory", 1.0): "ACIVW: image linear 0.778 / kNN 0.772 (+ unpaired sounds); sound "
    "linear 0.956 / kNN 0.936, a2i class R@1 0.522 (+ unpaired images) (Tables 1-3)",
    ("bma_memory", 0.2): "ACIVW: image linear 0.749 (+ unpaired sounds; 0.693 without) (Table 5)",
}


# ------------------------------------------------------------------ the runs


def data_overrides(extra: list[str]) -> dict:
    """The ``--data.init_args.KEY VALUE`` (or ``=VALUE``) settings among ``extra``."""
    found, prefix, i = {}, "--data.init_args.", 0
    while i < len(extra):
        arg = extra[i]
        if arg.startswith(prefix):
            key, sep, value = arg[len(prefix) :].partition("=")
            if not sep and i + 1 < len(extra):
                value, i = extra[i + 1], i + 1
            found[key] = yaml.safe_load(value)
        i += 1
    return found


def data_config(method: str, dataset: str, extra: list[str]) -> dict:
    """The datamodule config of a method's run: its experiment's (on ``mnist_speech_commands``
    the same settings on ``PairedDataModule``), with the data settings among ``extra``."""
    cfg = yaml.safe_load(Path(METHODS[method].config).read_text())["data"]
    init = dict(cfg.get("init_args") or {})
    if dataset == "mnist_speech_commands":
        keep = ("batch_size", "unpaired_train", "canvas_grid", "eval_batch_size", "num_workers")
        init = {"scenario": "mnist_speech_commands", **{k: init[k] for k in keep if k in init}}
        cfg = {"class_path": "PairedDataModule"}
    return {"class_path": cfg["class_path"], "init_args": {**init, **data_overrides(extra)}}


def build_datamodule(cfg: dict):
    path = cfg["class_path"]
    module, _, name = path.rpartition(".")
    module = importlib.import_module(module or "assoc_lightning.data")
    return getattr(module, name)(**cfg["init_args"])


_PAIRS: dict[str, int] = {}


def train_pairs(cfg: dict, fraction: float) -> int:
    """Training pairs of a datamodule config at ``fraction`` (its data opened once)."""
    skip = ("batch_size", "eval_batch_size", "num_workers", "canvas_grid", "canvas_distractors")
    init = {k: v for k, v in cfg["init_args"].items() if k not in skip}
    init["paired_fraction"] = fraction
    key = json.dumps({"class_path": cfg["class_path"], **init}, sort_keys=True, default=str)
    if key not in _PAIRS:
        dm = build_datamodule({"class_path": cfg["class_path"], "init_args": init})
        dm.prepare_data()
        dm.setup("fit")
        _PAIRS[key] = len(dm.paired["train"])
    return _PAIRS[key]


def schedule_args(method: str, data: dict, fraction: float) -> list[str]:
    """For a pairs-only method below full pairing: the full-pairing budget in optimizer steps,
    epoch-based intervals stretched alike, and the batch capped at the number of pairs."""
    if METHODS[method].pairs != "only" or fraction == 1.0:
        return []
    cfg = yaml.safe_load(Path(METHODS[method].config).read_text())
    batch = int(data["init_args"].get("batch_size", 64))
    full = train_pairs(data, 1.0) // batch
    pairs = train_pairs(data, fraction)
    per_epoch = pairs // batch if pairs >= batch else 1
    k = max(1, round(full / per_epoch))
    trainer = cfg["trainer"]
    args = [
        "--trainer.max_epochs", "-1",
        "--trainer.max_steps", str(trainer["max_epochs"] * full),
        "--trainer.check_val_every_n_epoch", str(trainer.get("check_val_every_n_epoch", 1) * k),
    ]  # fmt: skip
    for cb in trainer.get("callbacks") or []:
        if cb["class_path"].endswith("ModelCheckpoint") and "every_n_epochs" in cb["init_args"]:
            every = cb["init_args"]["every_n_epochs"] * k
            args += ["--trainer.callbacks.init_args.every_n_epochs", str(every)]
    model = cfg["model"].get("init_args") or {}
    if method == "ig_embedding":
        every = model.get("lr_decay_every_epochs", 10) * k
        args += ["--model.init_args.lr_decay_every_epochs", str(every)]
    if pairs < batch:
        args += ["--data.init_args.batch_size", str(pairs)]
    return args


@dataclass(frozen=True)
class Cell:
    method: str
    fraction: float | None  # None: C-MCR, no pairs
    seed: int
    run: Run


def run_name(method: str, fraction: float | None, seed: int) -> str:
    return f"{method}_seed{seed}" if fraction is None else f"{method}_f{fraction:g}_seed{seed}"


def plan(args, with_schedule: bool = True) -> list[Cell]:
    """Every (method, fraction, seed) of the benchmark and its run. ``with_schedule``: work
    out the pairs-only methods' schedules (opens the data); off for reading results."""
    save = Path(args.save) / args.dataset
    cells = []
    for method in args.methods:
        spec = METHODS[method]
        if spec.pairs == "none" and args.dataset != "digits":
            continue  # CMCRDigitsDataModule builds its captions from the embedded digits
        fractions = [None] if spec.pairs == "none" else args.fractions
        data = data_config(method, args.dataset, args.extra) if spec.pairs != "none" else None
        for fraction in fractions:
            for seed in args.seeds:
                cmd = ["--config", spec.config, "--seed_everything", str(seed), *COMMON]
                if fraction is not None and args.dataset == "digits":
                    cmd += ["--data.init_args.paired_fraction", str(fraction)]
                elif fraction is not None:
                    init = {**data["init_args"], "paired_fraction": fraction}
                    cmd += ["--data", json.dumps({"class_path": data["class_path"], "init_args": init})]  # fmt: skip
                if with_schedule and fraction is not None:
                    cmd += schedule_args(method, data, fraction)
                name = run_name(method, fraction, seed)
                cells.append(Cell(method, fraction, seed, Run(name, [*cmd, *args.extra], save)))
    return cells


def check_data(args) -> None:
    """Stop with the datamodule's own message when the chosen dataset is not there."""
    if args.dataset == "digits":
        return  # generated on first use
    from assoc_lightning.errors import AssocError

    method = next((m for m in args.methods if METHODS[m].pairs != "none"), None)
    if method is None:
        raise SystemExit(f"--dataset {args.dataset}: C-MCR runs on the embedded digits only")
    try:
        train_pairs(data_config(method, args.dataset, args.extra), 1.0)
    except AssocError as err:
        raise SystemExit(
            f"benchmark --dataset {args.dataset} needs MNIST and Speech Commands v0.02 under the "
            "data dir (--data.init_args.data_dir after --, else $ASSOC_DATA_DIR; "
            f"docs/datasets.md):\n{err}"
        ) from None


# ------------------------------------------------------------------ table and picture


def results(cells: list[Cell]) -> dict[tuple[str, float | None], list[dict[str, float]]]:
    """(method, fraction) -> the test metrics of its finished seeds."""
    found: dict = {}
    for c in cells:
        metrics = newest_test_metrics(c.run.root)
        found.setdefault((c.method, c.fraction), [])
        if metrics:
            found[(c.method, c.fraction)].append(metrics)
    return found


def cell_text(runs: list[dict[str, float]], metric: str) -> str:
    values = [r[metric] for r in runs if metric in r]
    if not runs:
        return "not run"
    return mean_sd(values) if values else "-"


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return (
        f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"
    )


def write_table(cells: list[Cell], args, out: Path) -> str:
    found = results(cells)
    head = ["method", "paired fraction", "unpaired data"] + [n for _, n in METRICS]
    lines = ["| " + " | ".join([*head, "n", "paper (its own data)"]) + " |"]
    lines.append("|---" * (len(head) + 2) + "|")
    for (method, fraction), runs in found.items():
        frac = "no pairs" if fraction is None else f"{fraction:g}"
        vals = [cell_text(runs, m) for m, _ in METRICS]
        paper = PAPER.get((method, fraction), "")
        unpaired = UNPAIRED[METHODS[method].pairs]
        lines.append(
            f"| {method} | {frac} | {unpaired} | "
            + " | ".join(vals)
            + f" | {len(runs)} | {paper} |"
        )
    notes = [f"- `{m}`: {METHODS[m].note}." for m in dict.fromkeys(c.method for c in cells)]
    records = [rec for c in cells if c.run.finished() and (rec := c.run.wall_record())]
    times = [float(x["seconds"]) for x in records]
    cores = "/".join(str(c) for c in sorted({x["cpus"] for x in records if x.get("cpus")})) or "?"
    threads = sorted({x["omp_num_threads"] for x in records if x.get("omp_num_threads")})
    how = f", OMP_NUM_THREADS={'/'.join(threads)}" if threads else ""
    wall = (
        f"Total wall time of the {len(times)} runs in this table: {duration(sum(times))}, "
        f"summed over runs (each its own `assoc fit` process; {cores} CPU cores{how}; "
        "`wall_time.json` in each run's folder)."
        if times
        else "Total wall time: no run of this table has been timed yet."
    )
    data = {
        "digits": "the embedded spoken / handwritten digits (`DigitsDataModule`)",
        "mnist_speech_commands": "MNIST x Speech Commands v0.02 (`PairedDataModule`, scenario "
        "`mnist_speech_commands`)",
    }[args.dataset]
    text = (
        f"# The weakly-paired benchmark: {args.dataset}\n\n"
        f"Every method on {data}, at paired fractions {', '.join(f'{f:g}' for f in args.fractions)} "
        "of the training images (seeded, class-stratified pair anchors; every unimodal item "
        "stays), each experiment's own settings otherwise. Test split, mean ± sd over seeds "
        f"{list(args.seeds)}. kNN: weighted cosine kNN (k = 200, `knn_top1`); linear: logistic "
        "regression on frozen features; class R@1: audio->image / image->audio retrieval, a "
        "hit when the top match has the query's class; cross-modal acc: the VAE associator's "
        "generated image / sound judged by a classifier of that modality. '-': the method "
        "does not report it; 'not run': no finished run. The papers' numbers are on their own "
        "data and protocols, beside for scale, not as a comparison. Regenerate with `make "
        "benchmark` (`python scripts/benchmark.py`; `--table-only` rebuilds this from the runs); "
        f"picture: `{out.with_suffix('.png').name}`.\n\n"
        + "\n".join(lines)
        + "\n\n"
        + wall
        + "\n\nWhat each method does with the pairs it is not given:\n\n"
        + "\n".join(notes)
        + "\n"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(text)
    return text


def write_picture(cells: list[Cell], args, out: Path) -> Path:
    """One panel per headline metric that any run reports: mean ± sd against the paired
    fraction (log axis), one curve per method; C-MCR (no pairs) as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    found = results(cells)
    shown = [(m, n) for m, n in METRICS if any(m in r for runs in found.values() for r in runs)]
    cols = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.3 * rows), squeeze=False)
    methods = list(dict.fromkeys(c.method for c in cells))
    colors = {m: f"C{i}" for i, m in enumerate(methods)}
    for ax, (metric, name) in zip(axes.flat, shown, strict=False):
        for method in methods:
            points = []
            for (m, fraction), runs in found.items():
                values = [r[metric] for r in runs if m == method and metric in r]
                if values:
                    mean = sum(values) / len(values)
                    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0  # fmt: skip
                    points.append((fraction, mean, sd))
            if not points:
                continue
            if points[0][0] is None:  # no pairs: a line across every fraction
                _, mean, sd = points[0]
                ax.axhline(mean, color=colors[method], ls="--", label=f"{method} (no pairs)")
                ax.axhspan(mean - sd, mean + sd, color=colors[method], alpha=0.12)
                continue
            points.sort()
            xs, ys, sds = zip(*points, strict=True)
            ax.errorbar(xs, ys, yerr=sds, marker="o", capsize=3, color=colors[method], label=method)
        ax.set_xscale("log")
        ax.set_xticks(list(args.fractions), [f"{f:g}" for f in args.fractions])
        ax.minorticks_off()
        ax.set_title(name)
        ax.set_xlabel("paired fraction")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    if not shown:
        axes.flat[0].text(0.5, 0.5, "no finished runs yet", ha="center", va="center")
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles))
    fig.suptitle(f"weakly-paired benchmark ({args.dataset}): test split, mean ± sd over seeds")
    fig.tight_layout(rect=(0, 0.07 if handles else 0, 1, 0.95))
    path = out.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ------------------------------------------------------------------ main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    ap.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    ap.add_argument("--dataset", choices=DATASETS, default="digits")
    ap.add_argument("--save", default="runs/benchmark", help="runs go to SAVE/DATASET/<run>")
    ap.add_argument(
        "--out", type=Path, default=None,
        help="OUT.md and OUT.png (results/benchmark, results/benchmark_<dataset> off digits)",
    )  # fmt: skip
    ap.add_argument("--table-only", action="store_true", help="rebuild table + picture only")
    ap.add_argument(
        "--emit-commands", action="store_true",
        help="print one shell command per unfinished run (for any launcher) and stop",
    )  # fmt: skip
    ap.add_argument(
        "--submitit", nargs="*", metavar="KEY=VALUE", default=None,
        help="submit the unfinished runs as a SLURM job array through submitit; KEY=VALUE go "
        "to AutoExecutor.update_parameters (timeout_min=120 slurm_partition=gpu "
        "gpus_per_node=1 cpus_per_task=8 slurm_array_parallelism=16; cluster=local to try it)",
    )  # fmt: skip
    ap.add_argument(
        "extra", nargs="*", help="further `assoc fit` arguments for every run (after --)"
    )
    args = ap.parse_args(argv)
    for f in args.fractions:
        if not 0.0 < f <= 1.0:
            ap.error(f"--fractions: {f} is not in (0, 1]")
    if args.out is None:
        suffix = "" if args.dataset == "digits" else f"_{args.dataset}"
        args.out = Path(f"results/benchmark{suffix}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.table_only:
        cells = plan(args, with_schedule=False)
    else:
        check_data(args)
        cells = plan(args)
    runs = [c.run for c in cells]
    if args.emit_commands:
        print("\n".join(shell_lines(runs)))
        return 0
    if args.submitit is not None:
        folder = Path(args.save) / args.dataset / "submitit"
        jobs = submit(runs, folder, parse_params(args.submitit))
        ids = ", ".join(sorted({str(j.job_id).split("_")[0] for j in jobs})) or "none"
        print(
            f"[benchmark] submitted {len(jobs)} runs (job {ids}; logs in {folder}); when they "
            "are done, build the table and the picture with the same options and --table-only"
        )
        return 0
    failed = []
    if not args.table_only:
        report = run_all(runs, tag="benchmark", keep_going=True)
        print(
            f"[benchmark] ran {len(report.ran)} runs in {duration(report.seconds)}, skipped "
            f"{len(report.skipped)} finished ones" + (f", {len(report.failed)} failed" if report.failed else ""),
            flush=True,
        )  # fmt: skip
        failed = report.failed
    print(write_table(cells, args, args.out))
    print(f"[benchmark] {args.out.with_suffix('.md')}, {write_picture(cells, args, args.out)}")
    for name, code in failed:
        print(f"[benchmark] failed: {name} (exit code {code}); rerun to retry it", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())
