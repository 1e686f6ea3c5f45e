"""Training throughput of a run, measured from inside the fit loop: samples/s in the steady
state and the share of time spent between steps (waiting for the next batch).

    assoc fit --config experiments/dmc.yaml \
      --trainer.callbacks+=assoc_lightning.utils.throughput.ThroughputMonitor

Each training batch is timed from ``on_train_batch_start`` to ``on_train_batch_end`` (the
step: forward, backward, optimizer; CUDA is synchronized at the end so queued kernels count),
and the gap before it from the previous ``on_train_batch_end`` (fetching and collating the next
batch, the host-to-device copy, the loop's bookkeeping). A data pipeline that keeps up leaves
that gap small; a wait fraction near 1 says the GPU starves. Gaps that contain a validation
loop are left out of both. When training ends, rank 0 writes ``throughput.json`` into the
run's log dir (``scripts/gpu_check.py`` reads it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info


def batch_items(pl_module: LightningModule, batch) -> int:
    """Items in one training batch as the method counts them (``batch_size_of``: pairs for
    BMA-Memory), else the first dimension of the first tensor found in it."""
    count = getattr(pl_module, "batch_size_of", None)
    if callable(count):
        try:
            return int(count(batch))
        except (KeyError, TypeError, AttributeError):
            pass
    stack = [batch]
    while stack:
        item = stack.pop(0)
        if torch.is_tensor(item) and item.dim() > 0:
            return int(item.shape[0])
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return 0


class ThroughputMonitor(Callback):
    """Steady-state training samples/s and data-wait fraction, written as ``throughput.json``.

    Args:
        warmup_steps: first training batches left out of the numbers (compilation, cuDNN
            autotuning, allocator growth); at most half of the batches run.
        filename: the file written into ``trainer.log_dir`` by rank 0.

    Under DDP the samples are global: the rank's batch times the world size (every rank runs
    the same number of equally sized batches).
    """

    def __init__(self, warmup_steps: int = 10, filename: str = "throughput.json") -> None:
        self.warmup_steps = warmup_steps
        self.filename = filename
        self.summary: dict = {}
        self._reset()

    def _reset(self) -> None:
        self._steps: list[tuple[float, float, float | None, int]] = []  # start, end, gap, items
        self._start = 0.0
        self._last_end: float | None = None
        self._validated = False
        self._clock_offset = time.time() - time.perf_counter()  # perf_counter -> unix time

    @staticmethod
    def _sync(pl_module: LightningModule) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._reset()
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._sync(pl_module)
        end = time.perf_counter()
        gap = None
        if self._last_end is not None and not self._validated:
            gap = self._start - self._last_end
        self._steps.append((self._start, end, gap, batch_items(pl_module, batch)))
        self._last_end, self._validated = end, False

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._validated = True  # the next gap holds a validation loop: not data waiting

    def compute(self, world_size: int) -> dict:
        """The numbers over the batches after warm-up (empty before two batches have run)."""
        if len(self._steps) < 2:
            return {}
        warmup = min(self.warmup_steps, len(self._steps) // 2)
        kept = self._steps[warmup:]
        busy = sum(end - start for start, end, _, _ in kept)
        wait = sum(gap for _, _, gap, _ in kept if gap is not None)
        elapsed = busy + wait
        items = sum(n for *_, n in kept) * world_size
        return {
            "steps": len(self._steps),
            "warmup_steps": warmup,
            "measured_steps": len(kept),
            "world_size": world_size,
            "samples_per_step": items / len(kept),
            "samples_per_s": items / elapsed if elapsed > 0 else 0.0,
            "step_ms": 1000 * busy / len(kept),
            "wait_ms": 1000 * wait / len(kept),
            "wait_fraction": wait / elapsed if elapsed > 0 else 0.0,
            # the steady window in unix time, to match outside samples (nvidia-smi) against
            "window_unix": [kept[0][0] + self._clock_offset, kept[-1][1] + self._clock_offset],
        }

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compute on every rank (``trainer.log_dir`` is a broadcast); rank 0 writes."""
        summary = self.compute(trainer.world_size)
        log_dir = trainer.log_dir or trainer.default_root_dir
        if not summary:
            return
        summary["device"] = str(pl_module.device)
        summary["precision"] = str(trainer.precision)
        if pl_module.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(pl_module.device)
            summary["peak_memory_allocated_mib"] = peak / 2**20
        self.summary = summary
        if not trainer.is_global_zero:
            return
        path = Path(log_dir) / self.filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2) + "\n")
        rank_zero_info(
            f"throughput: {summary['samples_per_s']:.1f} samples/s over "
            f"{summary['measured_steps']} steps, {100 * summary['wait_fraction']:.1f} % of the "
            f"time between steps (next batch, copy, loop) -> {path}"
        )
