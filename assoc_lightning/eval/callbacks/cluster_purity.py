"""K-means cluster purity of both modalities embedded together (the IG paper)."""

from __future__ import annotations

from assoc_lightning.eval.bank import balanced_embeddings
from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback
from assoc_lightning.eval.metrics.clustering import kmeans_purity


class ClusterPurityCallback(EmbeddingEvalCallback):
    """K-means cluster purity of both modalities embedded together (``cluster_purity``).

    An equal number of inputs per modality (the smaller modality's size, or
    ``max_per_modality``), each contributing ``num_samples`` sampled embeddings, as the IG
    paper does (1,076 inputs x 16 samples per modality).

    Args:
        k: number of clusters (10).
        max_per_modality: cap on inputs per modality.
        num_samples: embeddings sampled per input (0: ``embed``, the deterministic ones).
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    def __init__(
        self,
        k: int = 10,
        max_per_modality: int | None = None,
        num_samples: int = 16,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_samples = num_samples
        self.k = k
        self.max_per_modality = max_per_modality

    def compute(self, features, log_dir, split, trainer):
        emb, lab, _ = balanced_embeddings(features, self.max_per_modality, self.seed, True)
        return {"cluster_purity": kmeans_purity(emb, lab, self.k, self.seed)}
