"""How well an RBF SVM tells audio from image embeddings (the IG paper; chance 0.5)."""

from __future__ import annotations

from assoc_lightning.eval.bank import balanced_embeddings
from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback
from assoc_lightning.eval.metrics.modality import modality_svm_accuracy


class ModalityClassifierCallback(EmbeddingEvalCallback):
    """RBF-SVM accuracy at telling audio from image embeddings (``modality_acc``; chance 0.5).

    One embedding per input (the first sample when ``num_samples > 0``), equal numbers per
    modality, ``train_size`` for training (C by 3-fold CV), the rest for the reported accuracy.

    Args:
        train_size: training items, a count (the paper: 1600 of 2152) or a fraction.
        c_grid: SVM C values searched.
        max_per_modality: cap on inputs per modality.
        num_samples: embeddings sampled per input (0: ``embed``, the deterministic ones).
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    needs = frozenset({"image", "audio"})

    def __init__(
        self,
        train_size: int | float = 1600 / 2152,
        c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
        max_per_modality: int | None = None,
        num_samples: int = 16,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_samples = num_samples
        self.train_size = train_size
        self.c_grid = tuple(c_grid)
        self.max_per_modality = max_per_modality

    def compute(self, features, log_dir, split, trainer):
        emb, _, mods = balanced_embeddings(features, self.max_per_modality, self.seed, False)
        acc = modality_svm_accuracy(emb, mods == "audio", self.train_size, self.c_grid, self.seed)
        return {"modality_acc": acc}
