"""The progress bar of every ``assoc`` run: Lightning's rich bar with the right totals.

Runs bounded by steps (``max_epochs: -1``, ``max_steps: N``: C-MCR's default) showed
"Epoch 74/-2"; this bar counts to the epoch in which ``max_steps`` is reached ("Epoch 74/74"
for 300 steps of 4 batches), and to ``max_epochs - 1`` as before when the epochs bound the run.
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import RichProgressBar


class StepsProgressBar(RichProgressBar):
    """``RichProgressBar`` whose epoch total comes from ``max_steps`` when epochs are unbounded."""

    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        epochs = trainer.max_epochs
        if epochs is not None and epochs > 0:
            return super()._get_train_description(current_epoch)
        text = f"Epoch {current_epoch}"
        batches = trainer.num_training_batches
        if trainer.max_steps and trainer.max_steps > 0 and 0 < batches < float("inf"):
            per_epoch = max(1, int(batches) // max(1, trainer.accumulate_grad_batches))
            text += f"/{math.ceil(trainer.max_steps / per_epoch) - 1}"
        if len(self.validation_description) > len(text):
            text = f"{text:{len(self.validation_description)}}"
        return text
