"""results.jsonl: one JSON line per evaluation metric, next to the run's logs."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path

from lightning.pytorch import Callback, Trainer

from assoc_lightning.utils.dist import rank


def git_revision(path: str | Path = ".") -> str:
    """The current commit of the repository at ``path`` (suffixed ``-dirty``), or ``unknown``."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


class ResultsWriter(Callback):
    """Appends evaluation metrics to ``<log_dir>/results.jsonl`` (rank 0 writes).

    The CLI adds one with the config files of the run; evaluation callbacks find it through
    :func:`results_writer`. Each line: method, datamodule, split, metric, value, epoch, step,
    seed, config, git revision, time.
    """

    def __init__(
        self, config_paths: list[str] | None = None, filename: str = "results.jsonl"
    ) -> None:
        self.config_paths = [str(p) for p in (config_paths or [])]
        self.filename = filename
        self._git = None

    def path(self, trainer: Trainer) -> Path:
        """Where results go. Call on every rank: ``trainer.log_dir`` is a broadcast."""
        return Path(trainer.log_dir or trainer.default_root_dir) / self.filename

    def write(self, trainer: Trainer, pl_module, split: str, metrics: dict[str, float]) -> None:
        """Call on every rank with the same metrics; only rank 0 touches the file."""
        path = self.path(trainer)
        if rank() != 0 or not metrics:
            return
        if self._git is None:
            self._git = git_revision()
        dm = trainer.datamodule
        common = {
            "method": getattr(pl_module, "name", "") or type(pl_module).__name__,
            "datamodule": type(dm).__name__ if dm is not None else None,
            "split": split,
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "seed": int(os.environ["PL_GLOBAL_SEED"]) if "PL_GLOBAL_SEED" in os.environ else None,
            "config": self.config_paths,
            "git": self._git,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            for name, value in metrics.items():
                f.write(json.dumps({**common, "metric": name, "value": float(value)}) + "\n")


def results_writer(trainer: Trainer) -> ResultsWriter:
    """The trainer's ResultsWriter; one is added if the run was not started by the CLI."""
    for cb in trainer.callbacks:
        if isinstance(cb, ResultsWriter):
            return cb
    writer = ResultsWriter()
    trainer.callbacks.append(writer)
    return writer


def newest_test_metrics(run_root: str | Path) -> dict[str, float]:
    """``{metric: value}`` of the test split in the newest ``version_*`` of a logger folder
    (empty when it has none): what the sweep scripts read back from their runs."""
    versions = sorted(Path(run_root).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    path = versions[-1] / "results.jsonl" if versions else None
    if path is None or not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["metric"]: r["value"] for r in records if r["split"] == "test"}


def mean_sd(values: list[float], count: bool = False) -> str:
    """``"0.812 ± 0.021"`` (sample sd; ``(n=3)`` appended with ``count``), ``"not run"`` for
    none: the cells of the study scripts' tables."""
    if not values:
        return "not run"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    text = f"{statistics.mean(values):.3f} ± {sd:.3f}"
    return f"{text} (n={len(values)})" if count else text
