"""Run folders that survive a kill: find the run to resume, continue it in place.

A run lives in ``<save_dir>/<name>/version_N/`` (config.yaml, metrics.csv, results.jsonl,
checkpoints/). ``assoc fit --config X.yaml --ckpt_path last`` resumes the newest run of that
config that has a ``checkpoints/last.ckpt``: same folder, metrics.csv and results.jsonl cut
back to what they held when the checkpoint was written and appended to from there, the
random state restored, so the resumed run ends where an uninterrupted one would.

:class:`RunState` (added to every CLI run) writes into each checkpoint how many rows
metrics.csv and results.jsonl held, and the random state of every generator; the CLI reads
them back when resuming (:func:`resume_target`, :func:`continue_files`).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
import torch
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch import Callback
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from assoc_lightning.errors import AssocError
from assoc_lightning.utils import run_folders
from assoc_lightning.utils.run_folders import VERSION

STATE_KEY = "assoc_run"


class ResumeError(AssocError, FileNotFoundError):
    """There is no checkpoint to resume from where one was asked for."""


def rng_states() -> dict:
    """Every random generator's state (Python, NumPy, torch CPU and CUDA), in types that a
    ``weights_only`` checkpoint load accepts (tensors, numbers, tuples)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)
    states = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def data_rows(path: Path) -> int:
    """Data rows of a CSV file with a header (0 when absent)."""
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


class RunState(Callback):
    """Puts the run's file positions and random state into every checkpoint and restores the
    random state when training resumes from one (at the start of the first resumed epoch,
    where an uninterrupted run would stand: before that epoch's loaders draw their order).

    Args:
        results_file: the results file's name in the log dir.
    """

    def __init__(self, results_file: str = "results.jsonl") -> None:
        self.results_file = results_file
        self._pending: dict | None = None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        for logger in trainer.loggers:
            logger.save()  # what was logged so far is on disk before its row count is taken
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)
        checkpoint[STATE_KEY] = {
            "metrics_rows": data_rows(log_dir / ExperimentWriter.NAME_METRICS_FILE),
            "results_lines": lines(log_dir / self.results_file),
            "rng": rng_states(),
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        self._pending = checkpoint.get(STATE_KEY, {}).get("rng")

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self._pending is not None:
            set_rng_states(self._pending)
            self._pending = None


def newest_version(root: Path) -> tuple[int, Path] | None:
    """``(N, path)`` of the highest ``version_N`` under ``root`` holding checkpoints/last.ckpt."""
    folder = run_folders.newest_version(root, "checkpoints/last.ckpt")
    if folder is None:
        return None
    return int(VERSION.match(folder.name).group(1)), folder / "checkpoints" / "last.ckpt"


def resume_target(ckpt_path: str, run_root: Path | None) -> tuple[str, int | None]:
    """The checkpoint file behind ``--ckpt_path`` and the version folder it belongs to.

    ``last``: the newest ``version_N/checkpoints/last.ckpt`` under ``run_root`` (the CSV
    logger's ``<save_dir>/<name>``), resumed in that folder. A path: it must exist; when it
    lies in ``run_root/version_N/checkpoints/`` that run is continued in place.
    """
    if ckpt_path == "last":
        if run_root is None:
            raise ResumeError(
                "--ckpt_path last needs a CSV logger (its save_dir/name says where runs are); "
                "give the checkpoint file instead: --ckpt_path PATH"
            )
        newest = newest_version(run_root)
        if newest is None:
            raise ResumeError(
                f"--ckpt_path last: no run to resume under {run_root} (no version_*/checkpoints/"
                "last.ckpt). Drop --ckpt_path to start a new run, or give a checkpoint file."
            )
        version, path = newest
        return str(path), version
    path = Path(ckpt_path).expanduser()
    if not path.is_file():
        raise ResumeError(
            f"checkpoint not found: {ckpt_path}. Give an existing .ckpt file, or --ckpt_path "
            "last for the newest run's last.ckpt."
        )
    version = None
    if run_root is not None and path.parent.name == "checkpoints":
        m = VERSION.match(path.parent.parent.name)
        if m and path.parent.parent.parent.resolve() == run_root.resolve():
            version = int(m.group(1))
    return str(path), version


class _KeptRowsWriter(ExperimentWriter):
    """Lightning's CSV writer, continuing an existing metrics.csv instead of deleting it: the
    first ``keep`` rows (what the resumed checkpoint had seen) stay, later ones are dropped."""

    def __init__(self, log_dir: str, keep: int) -> None:
        # not the parent's __init__: it deletes metrics.csv when the folder is not empty
        self.metrics, self.metrics_keys, self.hparams = [], [], {}
        self._fs = get_filesystem(log_dir)
        self.log_dir = log_dir
        self.metrics_file_path = str(Path(log_dir) / self.NAME_METRICS_FILE)
        self._fs.makedirs(log_dir, exist_ok=True)
        path = Path(self.metrics_file_path)
        if path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.metrics_keys = list(reader.fieldnames or [])
                rows = list(reader)[:keep]
            with open(path, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.metrics_keys)
                writer.writeheader()
                writer.writerows(rows)


def continue_files(trainer, ckpt_path: str, results_file: str = "results.jsonl") -> None:
    """Cut metrics.csv and results.jsonl of the resumed run folder back to what the
    checkpoint had seen, and make the CSV loggers append to them (rank 0 writes)."""
    # memory-mapped: only the small run state is read here, not the weights (Lightning reads
    # those when it restores the checkpoint)
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True)
    state = checkpoint.get(STATE_KEY)
    if state is None:
        return  # written before runs kept their state: the files stay as they are
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger) and trainer.is_global_zero:
            logger._experiment = _KeptRowsWriter(logger.log_dir, state["metrics_rows"])
    results = Path(trainer.log_dir or trainer.default_root_dir) / results_file
    if trainer.is_global_zero and results.is_file():
        kept = results.read_text().splitlines()[: state["results_lines"]]
        results.write_text("".join(line + "\n" for line in kept))
