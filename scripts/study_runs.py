"""The run loop of the study scripts and the benchmark: a list of ``assoc`` runs, run one by
one, handed to a launcher as shell lines, or submitted as a SLURM job array.

A :class:`Run` is a name, an ``assoc fit`` argument list and a save dir: its logger folder is
``<save>/<name>/version_N/``. Every way of running it applies the same rules:

- a run whose newest version holds a test result (``results.jsonl``, split ``test``, with the
  ``expect`` metrics when given) is finished and skipped;
- a killed ``fit`` resumes in place from its ``last.ckpt`` (``--ckpt_path last``: the CLI's
  resume, ``assoc_lightning/runs.py``: same folder, metrics cut back to the checkpoint,
  random state restored);
- anything else starts a fresh version.

Runs go one after the other (two torch jobs on a few cores slow each other down). Each run's
wall time (summed over its attempts) is kept in ``<save>/<name>/wall_time.json``, so a table
rebuilt later can still state how long its runs took.

    from study_runs import Run, run_all, shell_lines, submit
    runs = [Run("ig_seed0", ["--config", "experiments/ig_embedding.yaml"], Path("runs/x"))]
    run_all(runs, tag="my study")        # sequential; skips finished runs, resumes killed ones
    print("\\n".join(shell_lines(runs)))  # one shell command per unfinished run, for a launcher
    submit(runs, folder, {"slurm_partition": "gpu", "timeout_min": 120})  # submitit job array

``submit`` needs ``submitit`` (``pip install -c constraints.txt -e '.[slurm]'``). Each array
task applies the skip / resume rules itself when it starts, so a requeued or preempted task
continues its run instead of starting over.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assoc_lightning.eval.results import newest_test_metrics
from assoc_lightning.utils.run_folders import newest_version

WALL_TIME = "wall_time.json"


def assoc_executable() -> Path:
    """The ``assoc`` entry point of the running interpreter's environment."""
    return Path(sys.executable).with_name("assoc")


@dataclass(frozen=True)
class Run:
    """One ``assoc <subcommand>`` run logging to ``<save>/<name>/version_N``.

    Args:
        name: the CSV logger's name (the run's folder under ``save``).
        args: the arguments after the subcommand (``--config`` first: arguments before a
            config file are overridden by it), or a function returning them when they depend
            on an earlier run (resolved just before the run starts).
        save: the CSV logger's save dir. The logger's save dir and name are appended last, so
            no extra argument can move a run away from where it is looked for.
        subcommand: ``fit`` (resumable) or ``test`` / ``validate``.
        expect: metrics a finished run's test result must hold (none: any test metric).
    """

    name: str
    args: Sequence[str] | Callable[[], Sequence[str]]
    save: Path
    subcommand: str = "fit"
    expect: tuple[str, ...] = field(default=())

    @property
    def root(self) -> Path:
        return Path(self.save) / self.name

    def finished(self) -> bool:
        metrics = newest_test_metrics(self.root)
        return bool(metrics) and all(m in metrics for m in self.expect)

    def resumable(self) -> bool:
        """A ``fit`` with a version holding ``checkpoints/last.ckpt`` (and no test result)."""
        return (
            self.subcommand == "fit"
            and newest_version(self.root, "checkpoints/last.ckpt") is not None
            and not self.finished()
        )

    def command(self, exe: str | Path | None = None) -> list[str]:
        """The command that runs (or resumes) it now."""
        args = self.args() if callable(self.args) else self.args
        cmd = [
            str(exe or assoc_executable()), self.subcommand, *map(str, args),
            "--trainer.logger.init_args.save_dir", str(self.save),
            "--trainer.logger.init_args.name", self.name,
        ]  # fmt: skip
        return [*cmd, "--ckpt_path", "last"] if self.resumable() else cmd

    def wall_record(self) -> dict | None:
        """This run's ``wall_time.json`` (seconds over all attempts, host, cpus, threads)."""
        path = self.root / WALL_TIME
        return json.loads(path.read_text()) if path.is_file() else None

    def wall_time(self) -> float | None:
        """Seconds this run took (all attempts), from ``wall_time.json``; None if unknown."""
        record = self.wall_record()
        return None if record is None else float(record["seconds"])

    def add_wall_time(self, seconds: float) -> None:
        path = self.root / WALL_TIME
        record = json.loads(path.read_text()) if path.is_file() else {"seconds": 0.0}
        record = {
            "seconds": record["seconds"] + seconds,
            "attempts": record.get("attempts", 0) + 1,
            "host": platform.node(),
            "cpus": os.cpu_count(),
            # torch's intra-op threads when a launcher limits them (several runs side by side)
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")


@dataclass
class Report:
    """What :func:`run_all` did: runs ran (with seconds), skipped as finished, and failed."""

    ran: list[tuple[str, float]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, int]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s for _, s in self.ran)


def run_one(run: Run, exe: str | Path | None = None, quiet: bool = True, cwd=None) -> int:
    """Run (or resume) one run now and record its wall time; its exit code. ``quiet``: the
    run's stdout is dropped (its errors still show)."""
    cmd = run.command(exe)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL if quiet else None, cwd=cwd)
    run.add_wall_time(time.perf_counter() - start)
    return proc.returncode


def run_all(
    runs: Sequence[Run],
    tag: str,
    exe: str | Path | None = None,
    quiet: bool = True,
    keep_going: bool = False,
) -> Report:
    """Run every unfinished run, in order. A failed run stops the loop
    (``subprocess.CalledProcessError``) unless ``keep_going``: then it is reported and the
    loop goes on."""
    report = Report()
    for run in runs:
        if run.finished():
            report.skipped.append(run.name)  # done in an earlier invocation
            continue
        resume = " (resumed from its last.ckpt)" if run.resumable() else ""
        print(f"[{tag}] {run.name}{resume}", flush=True)
        start, cmd = time.perf_counter(), run.command(exe)
        code = run_one(run, exe, quiet)
        if code != 0:
            if not keep_going:
                raise subprocess.CalledProcessError(code, cmd)
            print(f"[{tag}] {run.name} failed (exit code {code})", flush=True)
            report.failed.append((run.name, code))
            continue
        report.ran.append((run.name, time.perf_counter() - start))
    return report


def shell_lines(runs: Sequence[Run], exe: str | Path | None = None) -> list[str]:
    """One shell command per unfinished run, each runnable from any directory (it changes
    to this one first), for any launcher (GNU parallel, a SLURM array reading line
    ``$SLURM_ARRAY_TASK_ID``, a wandb sweep's program, ...). A killed run's line resumes it;
    emit the lines again after a partial pass, as finished runs drop out."""
    cwd = shlex.quote(os.getcwd())
    return [f"cd {cwd} && {shlex.join(r.command(exe))}" for r in runs if not r.finished()]


def _array_task(run: Run, exe: str, cwd: str) -> str:
    """One SLURM array task: run or resume ``run`` (skipped when it has finished by now)."""
    if run.finished():
        return f"{run.name}: already finished"
    code = run_one(run, exe, quiet=False, cwd=cwd)
    if code != 0:
        raise RuntimeError(f"{run.name}: assoc exited with code {code}")
    return f"{run.name}: done"


def submit(
    runs: Sequence[Run], folder: str | Path, params: dict, exe: str | Path | None = None
) -> list:
    """Submit every unfinished run as one task of a SLURM job array through submitit; the
    submitit jobs (empty when nothing is left to run). ``params`` go to
    ``AutoExecutor.update_parameters`` (``slurm_partition``, ``timeout_min``,
    ``gpus_per_node``, ``cpus_per_task``, ``slurm_array_parallelism``, ...), except
    ``cluster`` (``AutoExecutor(cluster=...)``: ``local`` or ``debug`` to try it without
    SLURM)."""
    try:
        import submitit
    except ImportError:
        raise SystemExit(
            "submitting to SLURM needs the submitit package, which is not installed: "
            "pip install -c constraints.txt -e '.[slurm]' (or print the commands for another "
            "launcher with --emit-commands)"
        ) from None
    todo = [r for r in runs if not r.finished()]
    if not todo:
        return []
    import cloudpickle  # submitit's pickler (one of its requirements)

    # this file is no installed module: the array tasks get its code with the pickled runs
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    params = dict(params)
    executor = submitit.AutoExecutor(folder=str(folder), cluster=params.pop("cluster", None))
    executor.update_parameters(**params)
    exe = str(exe or assoc_executable())
    cwd = os.getcwd()
    return executor.map_array(_array_task, todo, [exe] * len(todo), [cwd] * len(todo))


def parse_params(items: Sequence[str]) -> dict:
    """``["timeout_min=120", "slurm_partition=gpu"]`` -> ``{"timeout_min": 120, ...}``
    (values read as YAML scalars)."""
    import yaml

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected KEY=VALUE, got {item!r}")
        params[key] = yaml.safe_load(value)
    return params
