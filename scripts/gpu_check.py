"""GPU check: every method a few hundred steps in bf16-mixed and in fp32, then DDP.

For each ``experiments/<method>.yaml`` it runs ``assoc fit`` through the real CLI, each run in a
fresh process (clean CUDA state), same seed, on one device: once per precision
(``bf16-mixed`` and ``32-true``), then once with DDP over every visible GPU (skipped, with a
message, when only one is visible). From each run folder it reads the training losses
(``metrics.csv``), the final test metrics (``results.jsonl``) and the throughput
(``throughput.json``, written by ``assoc_lightning.utils.throughput.ThroughputMonitor``), and
while a run trains it samples ``nvidia-smi`` every 0.5 s. It checks:

- every run exits cleanly and every logged loss is finite;
- the headline test metrics (kNN, linear probe, retrieval R@1 / mAP and each method's own:
  the console table's set, ``eval.results.HEADLINE``) of bf16 and fp32 agree: the mean
  absolute difference over the metrics both report within ``--tolerance`` (0.05) and each
  one within ``--max-delta`` (0.25; a short run's single metric can swing more);

and prints samples/s per run (steady state, warm-up steps left out), the share of time between
steps (next batch, host-to-device copy, loop: the data pipeline is the bottleneck when it is
large) and how busy the GPU was meanwhile. The summary goes to ``<out>/gpu_check.md`` and
``<out>/gpu_check.json``; each run's output to ``<out>/logs/``.

    make gpu-check                                   # all five methods, 300 steps
    python scripts/gpu_check.py --methods dmc cmcr --steps 200 --tolerance 0.05
    python scripts/gpu_check.py --accelerator cpu --methods ig_embedding --steps 5 \
        -- --data.init_args.num_speakers 20          # the pipeline itself, on CPU

Time on one H200 (estimate, not yet measured): about 25-45 s per run (process start and CUDA
init ~10 s, data and caches from the local cache dir, 300 steps in 5-15 s, the evaluation suite
10-20 s on 16 cores), so 10 runs in 4-7 min, plus about a minute once on a fresh machine to
generate the digits and C-MCR's local spaces. ``--time-limit`` (default 8 min) stops starting
new runs once it has passed, and says which did not run.

Why 0.05: bf16 keeps 8 bits of mantissa, so after a few hundred steps the two runs follow
different trajectories and their final metrics differ about as much as two seeds' (the seed
spread in the README's tables is 0.01-0.05 on 270 test items, 0.004 per item). A broken bf16
path (overflow, a loss computed in bf16, a collapsed embedding) moves them by far more.

Exit status: 0 every check passed (or no CUDA device: skipped), 1 a check failed, 3 nothing
failed but runs were left out at the time limit.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assoc_lightning.eval.results import HEADLINE, newest_test_metrics
from assoc_lightning.utils.run_folders import newest_version

ROOT = Path(__file__).resolve().parents[1]
MONITOR = "assoc_lightning.utils.throughput.ThroughputMonitor"
PASSED, FAILED, INCOMPLETE = 0, 1, 3


@dataclass
class Run:
    """One ``assoc fit`` of the check and what was read back from it."""

    method: str
    precision: str
    devices: int
    name: str
    role: str  # checked (held to the reference), reference, ddp (deltas shown, not judged)
    status: str = "not run"  # ok, exit <rc>, timed out, not run (time limit)
    wall_s: float = 0.0
    run_dir: str = ""
    steps: int | None = None
    samples_per_s: float | None = None
    wait_fraction: float | None = None
    busy_mean: float | None = None
    busy_max: float | None = None
    mem_max_mib: float | None = None
    final_loss: float | None = None
    losses_checked: int = 0
    finite: bool | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    deltas: dict[str, float] = field(default_factory=dict)
    reference: str = ""  # the run the deltas are against
    verdict: str = "-"
    notes: list[str] = field(default_factory=list)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--methods", nargs="*", default=None, help="experiments/<name>.yaml (all)")
    ap.add_argument("--steps", type=int, default=300, help="training steps of every run")
    ap.add_argument(
        "--precisions",
        nargs=2,
        default=["bf16-mixed", "32-true"],
        help="the precision checked, then its reference",
    )
    ap.add_argument(
        "--tolerance", type=float, default=0.05, help="max mean |metric delta| over the metrics"
    )
    ap.add_argument("--max-delta", type=float, default=0.25, help="max |delta| of any one metric")
    ap.add_argument("--out", type=Path, default=Path("runs/gpu_check"))
    ap.add_argument(
        "--accelerator",
        choices=["gpu", "cpu"],
        default="gpu",
        help="cpu: the same pipeline without a GPU (to test this script)",
    )
    ap.add_argument(
        "--ddp-devices",
        type=int,
        default=None,
        help="processes of the DDP run (default: every visible GPU; none on CPU)",
    )
    ap.add_argument("--warmup", type=int, default=20, help="steps left out of samples/s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--time-limit", type=float, default=480.0, help="seconds; no new run starts after it"
    )
    ap.add_argument("--run-timeout", type=float, default=300.0, help="seconds; a run is killed")
    ap.add_argument(
        "--max-wait-fraction",
        type=float,
        default=None,
        help="fail a run whose time between steps exceeds this share (default: report)",
    )
    ap.add_argument("extra", nargs="*", help="further `assoc fit` arguments for every run")
    return ap.parse_args(argv)


def experiment_configs(methods: list[str] | None) -> dict[str, Path]:
    """method -> its experiments/<method>.yaml (all of them by default); unknown names stop."""
    found = {p.stem: p for p in sorted((ROOT / "experiments").glob("*.yaml"))}
    if not methods:
        return found
    unknown = sorted(set(methods) - set(found))
    if unknown:
        raise SystemExit(f"unknown methods {unknown}; experiments/ has {sorted(found)}")
    return {m: found[m] for m in methods}


def fit_command(cfg: Path, run: Run, args: argparse.Namespace, strategy: str | None) -> list[str]:
    """``assoc fit`` for one run: the experiment, shrunk to ``--steps`` steps on the chosen
    devices and precision, no validation loop and no transfer evaluation (only the final
    test evaluation on the digits: time, and another data set's probe is the noisiest number),
    losses logged at least 10 times, the throughput monitor attached, logs under
    ``<out>/<run name>/version_N``."""
    every_gpu = strategy == "ddp" and args.ddp_devices is None  # all visible: devices -1
    devices = "-1" if every_gpu else str(run.devices)
    cmd = [
        sys.executable, "-m", "assoc_lightning.cli", "fit", "--config", str(cfg),
        "--seed_everything", str(args.seed),
        "--trainer.accelerator", args.accelerator, "--trainer.devices", devices,
        "--trainer.precision", run.precision,
        "--trainer.max_steps", str(args.steps), "--trainer.max_epochs", "-1",
        "--trainer.limit_val_batches", "0", "--eval.transfer", "null",
        "--trainer.log_every_n_steps", str(max(1, min(10, args.steps // 10))),
        "--trainer.logger.init_args.save_dir", str(args.out.resolve()),
        "--trainer.logger.init_args.name", run.name,
        "--trainer.enable_progress_bar", "false",
        f"--trainer.callbacks+={MONITOR}",
        "--trainer.callbacks.init_args.warmup_steps", str(args.warmup),
    ]  # fmt: skip
    if strategy:
        cmd += ["--trainer.strategy", strategy]
    return cmd + list(args.extra)


class GpuSampler:
    """``nvidia-smi`` utilization and memory of some GPUs every ``interval`` s, in a thread:
    (unix time, busy %, memory MiB) per GPU and sample. Off (no samples) without nvidia-smi."""

    QUERY = "--query-gpu=utilization.gpu,memory.used"

    def __init__(self, ids: list[str], interval: float = 0.5, enabled: bool = True) -> None:
        self.ids, self.interval = ids, interval
        self.enabled = enabled and shutil.which("nvidia-smi") is not None
        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def query(self) -> list[tuple[float, float]]:
        """(busy %, memory MiB) of each GPU now; empty when nvidia-smi is missing or fails."""
        cmd = ["nvidia-smi", self.QUERY, "--format=csv,noheader,nounits"]
        if self.ids:
            cmd.append("--id=" + ",".join(self.ids))
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            return []
        rows = []
        for line in out.stdout.splitlines() if out.returncode == 0 else []:
            try:
                busy, mem = (float(v) for v in line.split(","))
            except ValueError:
                continue  # "[N/A]" (MIG slices report no utilization)
            rows.append((busy, mem))
        return rows

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            self.samples += [(now, busy, mem) for busy, mem in self.query()]
            self._stop.wait(self.interval)

    def __enter__(self) -> GpuSampler:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def stats(self, window: list[float] | None) -> tuple[float | None, float | None, float | None]:
        """Mean and max busy % and max memory (MiB) over the samples inside ``window`` (unix
        start, end: the steady training steps), or over all samples without one."""
        rows = self.samples
        if window:
            inside = [s for s in rows if window[0] <= s[0] <= window[1]]
            rows = inside or rows  # a window shorter than the interval: the whole run
        if not rows:
            return None, None, None
        busy = [b for _, b, _ in rows]
        return statistics.mean(busy), max(busy), max(m for _, _, m in rows)


def visible_gpu_ids(count: int) -> list[str]:
    """nvidia-smi ids of the GPUs this process sees (CUDA_VISIBLE_DEVICES: indices or UUIDs)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(i) for i in range(count)]
    return [v.strip() for v in visible.split(",") if v.strip()][:count]


def launch(cmd: list[str], log: Path, timeout: float) -> tuple[int | None, float]:
    """Run ``cmd`` from the repository root with its output in ``log``; (exit status or None
    when killed at ``timeout``, seconds). It gets its own process group, so a timeout also ends
    the DDP processes it started."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("w") as f:
        f.write(" ".join(cmd) + "\n\n")
        f.flush()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
    return rc, time.perf_counter() - start


def read_losses(metrics_csv: Path) -> tuple[float | None, int, bool]:
    """(last ``train/loss``, values checked, all finite) over every logged loss: each
    ``train/*`` term and any other column named ``*loss*``."""
    if not metrics_csv.is_file():
        return None, 0, False
    with metrics_csv.open() as f:
        rows = list(csv.DictReader(f))
    final, checked, finite = None, 0, True
    for row in rows:
        for key, text in row.items():
            if not text or not (key.startswith("train/") or "loss" in key):
                continue
            value = float(text)
            checked += 1
            finite = finite and math.isfinite(value)
            if key == "train/loss":
                final = value
    return final, checked, finite and checked > 0


def read_run(run: Run, root: Path, sampler: GpuSampler) -> None:
    """Fill ``run`` from its newest run folder: losses, test metrics, throughput, GPU use."""
    folder = newest_version(root / run.name)
    if folder is None:
        run.notes.append("no run folder")
        return
    run.run_dir = str(folder)
    run.final_loss, run.losses_checked, run.finite = read_losses(folder / "metrics.csv")
    run.metrics = {
        k: v for k, v in newest_test_metrics(root / run.name).items() if HEADLINE.search(k)
    }
    window = None
    tp = folder / "throughput.json"
    if tp.is_file():
        numbers = json.loads(tp.read_text())
        run.steps, window = numbers.get("steps"), numbers.get("window_unix")
        run.samples_per_s, run.wait_fraction = numbers["samples_per_s"], numbers["wait_fraction"]
    run.busy_mean, run.busy_max, run.mem_max_mib = sampler.stats(window)


def execute(
    run: Run, cfg: Path, args: argparse.Namespace, strategy: str | None, ids: list[str]
) -> None:
    """Launch one run with nvidia-smi sampling its GPUs, then read it back."""
    print(f"[gpu check] {run.name}: {run.precision} on {run.devices} device(s)", flush=True)
    cmd = fit_command(cfg, run, args, strategy)
    with GpuSampler(ids, 0.5, enabled=args.accelerator == "gpu") as sampler:
        rc, run.wall_s = launch(cmd, args.out / "logs" / f"{run.name}.log", args.run_timeout)
    run.status = "ok" if rc == 0 else ("timed out" if rc is None else f"exit {rc}")
    read_run(run, args.out, sampler)
    print(f"[gpu check] {run.name}: {run.status} in {run.wall_s:.0f} s", flush=True)


def compare(run: Run, reference: Run) -> None:
    """Deltas of ``run``'s headline metrics against ``reference`` on the keys both report."""
    shared = sorted(set(run.metrics) & set(reference.metrics))
    run.deltas = {k: run.metrics[k] - reference.metrics[k] for k in shared}
    run.reference = reference.name


def compare_all(runs: list[Run], checked: str, reference: str) -> list[str]:
    """Deltas of each checked run against its method's reference run and of each DDP run
    against the single-device run of its precision (both finished); the DDP speed-ups."""
    by_name = {r.name: r for r in runs}
    lines = []
    for run in runs:
        other = {"checked": f"{run.method}_{reference}", "ddp": f"{run.method}_{checked}"}
        ref = by_name.get(other.get(run.role, ""))
        if run.status != "ok" or ref is None or ref.status != "ok":
            continue
        compare(run, ref)
        if run.role == "ddp" and run.samples_per_s and ref.samples_per_s:
            speedup = run.samples_per_s / ref.samples_per_s
            lines.append(
                f"{run.name}: {speedup:.2f}x the samples/s of 1 device "
                f"({speedup / run.devices:.0%} scaling efficiency on {run.devices})"
            )
    return lines


def judge(run: Run, args: argparse.Namespace) -> None:
    """PASS / FAIL of one run that was started: clean exit, finite losses, test metrics, and
    for the ``checked`` precision every shared metric within the tolerance of the reference."""
    if run.status == "not run (time limit)":
        return
    if run.status != "ok":
        run.notes.append(f"{run.status} (see {args.out / 'logs' / run.name}.log)")
    if not run.finite:
        run.notes.append(f"non-finite or no losses ({run.losses_checked} values read)")
    if not run.metrics:
        run.notes.append("no test metrics in results.jsonl")
    if run.role == "checked" and run.reference:
        if run.metrics and not run.deltas:
            run.notes.append(f"no metric shared with {run.reference}")
        mean = mean_abs_delta(run)
        if mean is not None and mean > args.tolerance:
            run.notes.append(f"metrics differ by {mean:.3f} on average from {run.reference}")
        for key, delta in run.deltas.items():
            if abs(delta) > args.max_delta:
                run.notes.append(f"{key} differs by {delta:+.3f} from {run.reference}")
    limit = args.max_wait_fraction
    if limit is not None and run.wait_fraction is not None and run.wait_fraction > limit:
        run.notes.append(f"{100 * run.wait_fraction:.0f} % of the time between steps")
    run.verdict = "FAIL" if run.notes else "PASS"


def fmt(value, spec: str = ".1f", scale: float = 1) -> str:
    """A table cell: ``value * scale`` formatted, ``-`` for a missing value."""
    return "-" if value is None else format(value * scale if scale != 1 else value, spec)


def mean_abs_delta(run: Run) -> float | None:
    """Mean |delta| over the metrics compared (None when none were)."""
    return statistics.mean(abs(d) for d in run.deltas.values()) if run.deltas else None


def worst_delta(run: Run) -> str:
    """Mean |delta| against the reference, the largest delta and how many metrics were
    compared."""
    if run.role == "reference":
        return "(reference)"
    if not run.deltas:
        return "-"
    key = max(run.deltas, key=lambda k: abs(run.deltas[k]))
    text = f"{mean_abs_delta(run):.3f} / {run.deltas[key]:+.3f} {key} (of {len(run.deltas)})"
    return text if run.role == "checked" else f"{text}, vs 1 device, not judged"


def table(runs: list[Run]) -> str:
    """The summary, one markdown row per run."""
    head = ["method", "precision", "devices", "steps", "samples/s", "wait %",
            "GPU busy mean / max %", "max mem MiB", "final loss", "finite",
            "metric delta: mean abs / largest", "wall s", "result"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        busy = "-" if r.busy_mean is None else f"{r.busy_mean:.0f} / {r.busy_max:.0f}"
        finite = "-" if r.finite is None else ("yes" if r.finite else "NO")
        cells = [r.method, r.precision, str(r.devices), fmt(r.steps, "d"), fmt(r.samples_per_s),
                 fmt(r.wait_fraction, ".1f", 100), busy, fmt(r.mem_max_mib, ".0f"),
                 fmt(r.final_loss, ".4g"), finite, worst_delta(r), fmt(r.wall_s, ".0f"),
                 r.verdict if r.status != "not run (time limit)" else "not run"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(runs: list[Run], args: argparse.Namespace, messages: list[str], elapsed: float) -> str:
    """Write gpu_check.md and gpu_check.json under ``--out``; the markdown text."""
    notes = [f"- {r.name}: {n}" for r in runs for n in r.notes]
    text = (
        "# GPU check\n\n"
        f"`scripts/gpu_check.py`: {args.steps} steps per run on {args.accelerator}, seed "
        f"{args.seed}, {args.precisions[0]} against {args.precisions[1]} (headline test "
        f"metrics: mean |delta| within {args.tolerance}, each within {args.max_delta}), "
        f"{elapsed:.0f} s in all. samples/s: steady state "
        f"after {args.warmup} warm-up steps, global under DDP; wait %: time between steps "
        "(next batch, copy, loop); GPU busy: nvidia-smi during those steps.\n\n"
        + table(runs) + "\n"
        + ("\n" + "\n".join(messages) + "\n" if messages else "")
        + ("\n" + "\n".join(notes) + "\n" if notes else "")
    )  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.md").write_text(text)
    payload = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "elapsed_s": elapsed,
        "messages": messages,
        "runs": [asdict(r) for r in runs],
    }
    (args.out / "gpu_check.json").write_text(json.dumps(payload, indent=2) + "\n")
    return text


def ddp_devices(args: argparse.Namespace, gpus: int) -> tuple[int, str | None]:
    """(devices of the DDP run, -1 for every visible GPU; why it is skipped, or None)."""
    if args.ddp_devices is not None:
        if args.ddp_devices < 2:
            return args.ddp_devices, f"DDP skipped: --ddp-devices {args.ddp_devices}"
        return args.ddp_devices, None
    if args.accelerator == "cpu":
        return 1, "DDP skipped on CPU (--ddp-devices N runs it over N processes)"
    if gpus < 2:
        return 1, f"DDP skipped: {gpus} GPU visible"
    return -1, None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpus = 0
    if args.accelerator == "gpu":
        import torch

        if not torch.cuda.is_available():
            print("no CUDA device: skipped (--accelerator cpu runs the same pipeline on CPU)")
            return PASSED
        gpus = torch.cuda.device_count()
    configs = experiment_configs(args.methods)
    ids = visible_gpu_ids(gpus)
    ddp_n, ddp_skip = ddp_devices(args, gpus)
    checked, reference = args.precisions
    plan: list[tuple[Run, Path, str | None, list[str]]] = []
    for method, cfg in configs.items():
        for precision, role in ((checked, "checked"), (reference, "reference")):
            plan.append(
                (Run(method, precision, 1, f"{method}_{precision}", role), cfg, None, ids[:1])
            )
    if ddp_skip is None:
        for method, cfg in configs.items():
            devices = gpus if ddp_n < 0 else ddp_n
            run = Run(method, checked, devices, f"{method}_{checked}_ddp", "ddp")
            plan.append((run, cfg, "ddp", ids))
    messages = [ddp_skip] if ddp_skip else []
    if ddp_skip:
        print(f"[gpu check] {ddp_skip}", flush=True)
    start = time.perf_counter()
    for run, cfg, strategy, run_ids in plan:
        if time.perf_counter() - start > args.time_limit:
            run.status = "not run (time limit)"
            continue
        execute(run, cfg, args, strategy, run_ids)
    elapsed = time.perf_counter() - start
    runs = [r for r, *_ in plan]
    left = [r.name for r in runs if r.status == "not run (time limit)"]
    if left:
        messages.append(f"time limit of {args.time_limit:.0f} s passed; not run: {', '.join(left)}")
    messages += compare_all(runs, checked, reference)
    for run in runs:
        judge(run, args)
    print("\n" + report(runs, args, messages, elapsed))
    print(f"written: {args.out / 'gpu_check.md'}, {args.out / 'gpu_check.json'}")
    if any(r.verdict == "FAIL" for r in runs):
        return FAILED
    return INCOMPLETE if left else PASSED


if __name__ == "__main__":
    sys.exit(main())
