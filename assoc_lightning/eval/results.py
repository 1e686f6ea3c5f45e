"""results.jsonl: one JSON line per evaluation metric, next to the run's logs."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

from lightning.pytorch import Callback, Trainer
from lightning.pytorch.utilities import rank_zero_info
from rich.console import Console
from rich.table import Table

from assoc_lightning.utils.dist import rank
from assoc_lightning.utils.run_folders import newest_version


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


# The metrics of the console summary (``HEADLINE``, full names or a family's prefix); every
# metric stays in results.jsonl and metrics.csv.
HEADLINE = re.compile(
    r"^(knn_top1|knn_majority_top1|linear_top1)/|^retrieval/(a2i|i2a)_(r1|map|class_r1|class_map)$"
    r"|^(cluster_purity|modality_acc)$|^crossmodal_acc/|^recognition_acc"
    r"|^localization/(ciou|auc|peak_acc)$|^transfer/[^/]+/(knn_top1|linear_top1|linear_clip_top1)$"
)


class ResultsWriter(Callback):
    """Appends evaluation metrics to ``<log_dir>/results.jsonl`` (rank 0 writes) and shows
    them: one table of the headline metrics when fit, validate or test ends (every metric, one
    line each as it is computed, with ``verbose``).

    The CLI adds one with the config files of the run (``assoc fit --all_metrics true`` for
    the lines); evaluation callbacks find it through :func:`results_writer`. Each line of the file:
    method, datamodule, split, metric, value, epoch, step, seed, config, git revision, time.
    """

    def __init__(
        self,
        config_paths: list[str] | None = None,
        filename: str = "results.jsonl",
        verbose: bool = False,
    ) -> None:
        self.config_paths = [str(p) for p in (config_paths or [])]
        self.filename = filename
        self.verbose = verbose
        self.latest: dict[str, dict[str, tuple[float, int]]] = {}
        self._git = None

    def announce(self, trainer: Trainer, split: str, metrics: dict[str, float]) -> None:
        """Remember the metrics for the summary (and print each one when ``verbose``)."""
        seen = self.latest.setdefault(split, {})
        for name, value in metrics.items():
            seen[name] = (float(value), trainer.current_epoch)
            if self.verbose:
                rank_zero_info(f"[{split}] {name} = {value:.4f} (epoch {trainer.current_epoch})")

    def summary(self) -> Table | None:
        """A rich table of the newest value of each headline metric per split."""
        splits = [s for s in ("train", "val", "test") if s in self.latest]
        splits += sorted(set(self.latest) - set(splits))
        names = sorted({n for s in splits for n in self.latest[s] if HEADLINE.search(n)})
        if not names:
            return None
        table = Table(title="headline metrics (all of them: results.jsonl, metrics.csv)")
        table.add_column("metric", style="cyan")
        for split in splits:
            epochs = {e for _, e in self.latest[split].values()}
            table.add_column(f"{split} (epoch {max(epochs)})", justify="right")
        for name in names:
            cells = [self.latest[s].get(name) for s in splits]
            table.add_row(name, *(f"{c[0]:.4f}" if c else "-" for c in cells))
        return table

    def headline(self) -> dict[str, float]:
        """``{"<split>/<metric>": newest value}`` of every headline metric seen."""
        return {
            f"{split}/{name}": value
            for split, seen in self.latest.items()
            for name, (value, _) in seen.items()
            if HEADLINE.search(name)
        }

    def print_summary(self, trainer: Trainer) -> None:
        """Print the table and put the headline metrics in each wandb run's summary (the runs
        table and the run's overview show them)."""
        table = self.summary() if trainer.is_global_zero else None
        if table is not None:
            Console().print(table)
        if trainer.is_global_zero and self.latest:
            from lightning.pytorch.loggers import WandbLogger

            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.summary.update(self.headline())
        self.latest = {}

    def teardown(self, trainer, pl_module, stage: str) -> None:
        """End of fit, validate or test: after the progress bar has stopped."""
        self.print_summary(trainer)

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
    folder = newest_version(run_root)
    path = folder / "results.jsonl" if folder is not None else None
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
