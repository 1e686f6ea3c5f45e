"""The training-throughput clock the method benchmarks share (run as ``python bench/x.py``)."""

from __future__ import annotations

import time

import torch
from lightning.pytorch import Callback, LightningDataModule, LightningModule, Trainer


def fit_throughput(
    model: LightningModule, data: LightningDataModule, batch: int, steps: int, device: str
) -> float:
    """Samples/s of ``Trainer.fit`` over ``steps`` steps after 2 warm-up steps."""
    times: list[float] = []

    class Clock(Callback):
        def on_train_batch_end(self, *args):
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    trainer = Trainer(
        max_steps=steps + 2, accelerator=device, devices=1, logger=False, callbacks=[Clock()],
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, data)
    return batch * steps / (times[-1] - times[1])  # skip 2 warm-up steps
