"""What every method gets from AssociativeMethod: the shared steps, and a diverged run that
never replaces a good checkpoint."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from assoc_lightning.errors import TrainingDivergedError
from assoc_lightning.methods.base import AssociativeMethod


class Line(AssociativeMethod):
    """A scalar weight fit to targets; eval_losses skips batches with index 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def compute_losses(self, batch):
        err = (self.w * batch["x"] - batch["y"]) ** 2
        return {"loss": err.mean(), "max": err.max()}

    def eval_losses(self, batch):
        return None if int(batch["index"][0]) == 0 else self.compute_losses(batch)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def items(n=8):
    return [{"x": torch.tensor(1.0), "y": torch.tensor(2.0), "index": i} for i in range(n)]


class Poison(Callback):
    """Weights become NaN after step ``at`` (as after an inf gradient)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.at:
            with torch.no_grad():
                pl_module.w.fill_(float("nan"))


def trainer(tmp_path, callbacks, **kw):
    return Trainer(
        default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", callbacks=callbacks, **kw,
    )  # fmt: skip


def test_shared_steps_log_every_term_and_skip_what_eval_losses_skips(tmp_path):
    t = trainer(tmp_path, [], max_steps=4, enable_checkpointing=False, limit_val_batches=2)
    t.fit(Line(), DataLoader(items(), batch_size=2), DataLoader(items(4), batch_size=2))
    assert {"train/loss", "train/max", "val/loss", "val/max"} <= set(t.callback_metrics)
    # validation batch 0 (index 0) was skipped: val/loss is the second batch's alone
    assert float(t.callback_metrics["val/loss"]) == pytest.approx((float(t.model.w) - 2) ** 2)


def test_non_finite_weights_are_never_checkpointed(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=1)
    t = trainer(tmp_path, [ckpt, Poison(at=3)], max_steps=10, limit_val_batches=0)
    with pytest.raises(TrainingDivergedError, match=r"(?s)non-finite weights at step 3.*w.*"
                       r"not written. The last good checkpoint is .*last.ckpt"):  # fmt: skip
        t.fit(Line(), DataLoader(items(), batch_size=2))
    last = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert last["global_step"] == 2 and torch.isfinite(last["state_dict"]["w"]).all()
