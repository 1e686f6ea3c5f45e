"""AssociativeMethod: the one promise every method keeps, plus small shared helpers.

    embed(batch) -> {"audio": Tensor[N, D], "image": Tensor[N, D]}   # modalities present only

and, where a method retrieves in another space than it classifies in, ``retrieval_embed``
(the same shape of dict; by default ``embed``): BMA-Memory classifies with h and retrieves
with its projections z, as its paper does.

Evaluation callbacks only ever call ``embed`` (and ``embed_samples`` for stochastic
embeddings), so a new method gets every evaluation and a new evaluation works for every
method. No method logic lives here; the steps every method shares do: a method implements
``compute_losses(batch) -> {"loss": ..., <term>: ...}`` and gets its training, validation and
test steps, with every term logged and a diverged loss stopped with a clear message.

Methods that generate one modality from another also keep a second, optional promise, used by
the recognition-accuracy evaluation (``eval/callbacks/recognition.py``):

    output_space(batch) -> {modality: Tensor[N, ...]}   # the data as the decoders produce it
    translate(batch, source, target) -> Tensor[N, ...]   # target generated from batch[source]
"""

from __future__ import annotations

from typing import ClassVar

import torch
from lightning.pytorch import LightningModule

from assoc_lightning.errors import TrainingDivergedError


class AssociativeMethod(LightningModule):
    """Base class of all methods. Subclasses set ``name`` and implement ``embed``."""

    name: ClassVar[str] = ""

    # ------------------------------------------------------------------ steps
    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """``{"loss": total, <term>: value, ...}`` for one batch."""
        raise NotImplementedError

    def eval_losses(self, batch: dict) -> dict[str, torch.Tensor] | None:
        """The losses of a validation / test batch (``None``: nothing to log for it)."""
        return self.compute_losses(batch)

    @staticmethod
    def batch_size_of(batch: dict) -> int:
        """Items in a batch: every batch carries its dataset ``index``."""
        return int(batch["index"].shape[0])

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses = self.compute_losses(batch)
        self.log_losses(losses, "train", self.batch_size_of(batch))
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _eval_step(self, batch: dict, stage: str) -> None:
        losses = self.eval_losses(batch)
        if losses is not None:
            self.log_losses(losses, stage, self.batch_size_of(batch))

    # ------------------------------------------------------------------ contract

    def embed(self, batch: dict) -> dict[str, torch.Tensor]:
        """Embeddings ``[N, D]`` for each modality present in ``batch`` (``audio``/``image``)."""
        raise NotImplementedError

    def retrieval_embed(self, batch: dict) -> dict[str, torch.Tensor]:
        """Embeddings for cross-modal retrieval (``eval/callbacks/retrieval.py``); by default
        the ``embed`` space. Override where the paper retrieves in another space."""
        return self.embed(batch)

    def embed_samples(
        self, batch: dict, num_samples: int, seed: int | None = None
    ) -> dict[str, torch.Tensor]:
        """``num_samples`` embeddings per input, ``[N, S, D]``; deterministic methods repeat.

        With ``seed``, stochastic methods must make item i's samples a function of
        ``(seed, batch["index"][i])`` only, so evaluation is independent of batching and ranks.
        """
        return {k: v.unsqueeze(1).expand(-1, num_samples, -1) for k, v in self.embed(batch).items()}

    def output_space(self, batch: dict) -> dict[str, torch.Tensor]:
        """Each modality present in ``batch`` as the tensors ``translate`` outputs (e.g. images
        as they are, audio as the front-end's features), so a classifier trained on the
        original data can judge generated data. Optional: methods without a decoder raise."""
        raise NotImplementedError(f"{type(self).__name__} does not generate data")

    def translate(self, batch: dict, source: str, target: str) -> torch.Tensor:
        """``target``-modality data generated from ``batch[source]`` (deterministically, e.g.
        from posterior means), in ``output_space``; ``source == target`` reconstructs.
        Optional: methods without a decoder raise ``NotImplementedError``."""
        raise NotImplementedError(f"{type(self).__name__} does not generate data")

    def log_losses(self, losses: dict[str, torch.Tensor], stage: str, batch_size: int) -> None:
        """Log every term as ``{stage}/{name}``; stop with a clear error if ``loss`` is not finite."""
        total = losses["loss"]
        if not torch.isfinite(total):
            terms = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
            raise TrainingDivergedError(
                f"{type(self).__name__}: non-finite {stage} loss at step {self.global_step} "
                f"(epoch {self.current_epoch}): {terms}. {self.last_good_checkpoint()} Try a "
                "lower learning rate, bf16 instead of fp16, or check the inputs for NaNs."
            )
        on_step = stage == "train"
        for key, value in losses.items():
            self.log(
                f"{stage}/{key}",
                value.detach(),
                on_step=on_step,
                on_epoch=not on_step,
                prog_bar=key == "loss",
                batch_size=batch_size,
                sync_dist=not on_step,
            )

    # ------------------------------------------------------------------ checkpoints
    def last_good_checkpoint(self) -> str:
        """Where to resume after a divergence: the newest checkpoint written (every checkpoint
        is checked to hold finite weights before it is written, see ``on_save_checkpoint``)."""
        trainer = self._trainer
        cb = getattr(trainer, "checkpoint_callback", None) if trainer is not None else None
        path = getattr(cb, "last_model_path", "") or getattr(cb, "best_model_path", "")
        if path:
            return f"The last good checkpoint is {path} (only finite weights are ever saved)."
        return "No checkpoint was written before this point."

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Refuse to write weights that are no longer finite: a diverged run never replaces a
        good checkpoint (``last.ckpt`` keeps the last finite weights)."""
        bad = [
            k
            for k, v in checkpoint.get("state_dict", {}).items()
            if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
        ]
        if bad:
            raise TrainingDivergedError(
                f"{type(self).__name__}: non-finite weights at step {self.global_step} "
                f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); this checkpoint was "
                f"not written. {self.last_good_checkpoint()} Try a lower learning rate, bf16 "
                "instead of fp16, or check the inputs for NaNs."
            )
