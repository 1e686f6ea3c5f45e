"""Cross-modal retrieval (audio->image, image->audio) on the fixed pairs of a split."""

from __future__ import annotations

from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback
from assoc_lightning.eval.metrics.retrieval import (
    class_match_at_k,
    class_mean_average_precision,
    instance_metrics,
    instance_ranks,
)


class RetrievalCallback(EmbeddingEvalCallback):
    """Audio->image and image->audio retrieval on the split's fixed pairs, in each method's
    retrieval space (``retrieval_embed``: ``embed`` unless the method says otherwise, e.g.
    BMA-Memory's projections z).

    Instance level (C-MCR): ``retrieval/{a2i,i2a}_r{K}``, ``_map``, ``_medr``. Class match
    (BMA-Memory Table 3): ``retrieval/{a2i,i2a}_class_r{K}``: a hit when any of the top K has
    the query's class; ``retrieval/{a2i,i2a}_class_map``: mAP with every same-class gallery
    item relevant (the C-MCR toy default's zero-shot measure).

    Args:
        ks: K for instance-level recall (1, 5, 10).
        class_ks: K for class-match accuracy (1..5).
        chunk: queries per similarity block.
        precision: the path of the class-match top-k search and the instance ranks,
            ``auto``, ``fp32`` or ``bf16`` (``eval/metrics/topk.py``; the same neighbours and
            ranks either way). Class mAP ranks the whole gallery in fp32 (its cost is the sort,
            not the product). Every measure is computed on the trainer's device.
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    needs = frozenset({"image", "audio"})

    def __init__(
        self,
        ks: tuple[int, ...] = (1, 5, 10),
        class_ks: tuple[int, ...] = (1, 2, 3, 4, 5),
        chunk: int = 1024,
        precision: str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.ks, self.class_ks, self.chunk = tuple(ks), tuple(class_ks), chunk
        self.precision = precision

    def features(self, trainer, pl_module, split, cache):
        return cache.get(trainer, pl_module, split, 0, self.seed, paired=True, space="retrieval")

    def compute(self, features, log_dir, split, trainer):
        dev = trainer.strategy.root_device
        out = {}
        for name, (q, g) in {"a2i": ("audio", "image"), "i2a": ("image", "audio")}.items():
            qe, ql = features[q].embeddings.to(dev), features[q].labels.to(dev)
            ge, gl = features[g].embeddings.to(dev), features[g].labels.to(dev)
            ranks = instance_ranks(qe, ge, self.chunk, precision=self.precision)
            out.update(
                {f"retrieval/{name}_{k}": v for k, v in instance_metrics(ranks, self.ks).items()}
            )
            hits = class_match_at_k(qe, ql, ge, gl, self.class_ks, self.chunk, self.precision)
            out.update({f"retrieval/{name}_class_r{k}": v for k, v in hits.items()})
            out[f"retrieval/{name}_class_map"] = class_mean_average_precision(qe, ql, ge, gl)
        return out
