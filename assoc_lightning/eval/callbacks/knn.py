"""kNN classification of frozen embeddings against the train split (weighted and majority vote)."""

from __future__ import annotations

from assoc_lightning.eval.callbacks.base import TrainBankEvalCallback, evaluation_data
from assoc_lightning.eval.metrics.knn import majority_select_k, topk_neighbors, weighted_accuracy


class KNNCallback(TrainBankEvalCallback):
    """kNN classification of each modality's embeddings, the train split as the bank.

    Logs ``knn_top1/{modality}`` (weighted cosine vote, ``ks[0]`` neighbours, temperature
    ``temperature``), ``knn_top1_k{k}/{modality}`` for the other ``ks``, and the BMA-Memory /
    ACIVW protocol ``knn_majority_top1/{modality}``: majority vote with k chosen on the
    validation split from ``majority_k_grid`` (the chosen k as ``knn_majority_k/{modality}``).

    Args:
        ks: neighbour counts for the weighted vote (200 and 20).
        temperature: temperature of the exp(sim / T) weights (0.1).
        majority_k_grid: candidate k for the majority-vote protocol (empty: skip it).
        query_chunk, bank_chunk: chunk sizes bounding memory of the similarity blocks.
        precision: the exact search's path, ``auto``, ``fp32`` or ``bf16``
            (``eval/metrics/topk.py``; the same neighbours either way). The search runs on
            the trainer's device.
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    def __init__(
        self,
        ks: tuple[int, ...] = (200, 20),
        temperature: float = 0.1,
        majority_k_grid: tuple[int, ...] = (7, 9, 11, 13, 15),
        query_chunk: int = 1024,
        bank_chunk: int = 65536,
        precision: str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.ks, self.temperature = tuple(ks), temperature
        self.majority_k_grid = tuple(majority_k_grid)
        self.query_chunk, self.bank_chunk = query_chunk, bank_chunk
        self.precision = precision

    def compute(self, features, log_dir, split, trainer):
        train, val, test = features["train"], features[self.val_split], features[split]
        kmax = max(self.ks + self.majority_k_grid)
        dev = trainer.strategy.root_device
        out = {}
        for m in test:
            bank, labels = train[m].embeddings.to(dev), train[m].labels.to(dev)
            num_classes = evaluation_data(trainer).num_classes or int(labels.max()) + 1
            # one neighbour search per query set serves both votes (and val == test reuses it)
            search = {}
            for s in {split, self.val_split} if self.majority_k_grid else {split}:
                sims, idx = topk_neighbors(
                    features[s][m].embeddings.to(dev), bank, kmax,
                    self.query_chunk, self.bank_chunk, precision=self.precision,
                )  # fmt: skip
                search[s] = (sims, labels[idx])
            sims, neighbors = search[split]
            accs = weighted_accuracy(
                sims, neighbors, test[m].labels.to(dev), self.ks, self.temperature, num_classes
            )
            for i, k in enumerate(self.ks):
                out[f"knn_top1/{m}" if i == 0 else f"knn_top1_k{k}/{m}"] = accs[k]
            if self.majority_k_grid:
                k, _, acc = majority_select_k(
                    search[self.val_split][1], val[m].labels.to(dev), neighbors,
                    test[m].labels.to(dev),
                    self.majority_k_grid, num_classes,
                )  # fmt: skip
                out[f"knn_majority_top1/{m}"] = acc
                out[f"knn_majority_k/{m}"] = float(k)
        return out
