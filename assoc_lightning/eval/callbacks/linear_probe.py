"""Linear probe: logistic regression on frozen, standardized train-split features."""

from __future__ import annotations

from assoc_lightning.eval.callbacks.base import TrainBankEvalCallback
from assoc_lightning.eval.metrics.linear_probe import linear_probe_accuracy


class LinearProbeCallback(TrainBankEvalCallback):
    """Logistic regression on frozen, standardized train-split features: ``linear_top1/{m}``.

    C is chosen on the validation split when evaluating another split (on the validation
    split itself, the middle of the grid is used, so no number is tuned on what it reports).

    Args:
        c_grid: inverse regularization strengths searched.
        max_iter: L-BFGS iterations.
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    def __init__(
        self,
        c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
        max_iter: int = 1000,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.c_grid, self.max_iter = tuple(c_grid), max_iter

    def compute(self, features, log_dir, split, trainer):
        train, val, test = features["train"], features[self.val_split], features[split]
        out = {}
        for m in test:
            use_val = split != self.val_split
            acc, _ = linear_probe_accuracy(
                train[m].embeddings.numpy(), train[m].labels.numpy(),
                test[m].embeddings.numpy(), test[m].labels.numpy(),
                val[m].embeddings.numpy() if use_val else None,
                val[m].labels.numpy() if use_val else None,
                self.c_grid, self.max_iter,
            )  # fmt: skip
            out[f"linear_top1/{m}"] = acc
        return out
