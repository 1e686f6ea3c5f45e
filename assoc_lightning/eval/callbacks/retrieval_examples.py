"""Retrieval examples: audio queries with their top images, saved with the run and to wandb."""

from __future__ import annotations

import torch

from assoc_lightning.eval.callbacks.base import (
    EmbeddingEvalCallback,
    evaluation_data,
    log_image,
    log_table,
)
from assoc_lightning.eval.pictures import display, retrieval_examples_figure


class RetrievalExamplesCallback(EmbeddingEvalCallback):
    """What audio->image retrieval returns, to look at: for ``num_queries`` audio queries of the
    split's fixed pairs (one per class in turn, seeded), the query's spectrogram and its top
    ``k`` images in the method's retrieval space, each framed green when it has the query's
    class (a hit; on unlabelled data, when it is the query's own partner) and red when not,
    titled with its class and cosine score.

    Saved as ``<log_dir>/retrieval_examples_<split>_step<N>.png`` and, with a WandbLogger, as a
    wandb Table ``<split>/retrieval_examples`` (a row per query: spectrogram, class, the top-k
    images captioned hit / miss, the number of hits). It reads the features the retrieval
    metrics embed (one embedding pass for both) and logs no metric. Runs when training ends
    and on test by default (``every_n_epochs=0``).

    Args:
        num_queries: queries shown (rows).
        k: matches shown per query.
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    needs = frozenset({"image", "audio"})

    def __init__(
        self, num_queries: int = 10, k: int = 5, every_n_epochs: int = 0, **kwargs
    ) -> None:
        super().__init__(every_n_epochs=every_n_epochs, **kwargs)
        self.num_queries, self.k = num_queries, k

    def features(self, trainer, pl_module, split, cache):
        return cache.get(trainer, pl_module, split, 0, self.seed, paired=True, space="retrieval")

    def queries(self, labels: torch.Tensor) -> list[int]:
        """Positions of the queries: classes in turn (a seeded shuffle inside each class)."""
        g = torch.Generator().manual_seed(self.seed)
        order = torch.randperm(len(labels), generator=g)
        by_class: dict[int, list[int]] = {}
        for i in order.tolist():
            by_class.setdefault(int(labels[i]), []).append(i)
        picked, depth = [], 0
        while len(picked) < min(self.num_queries, len(labels)):
            for c in sorted(by_class):
                if depth < len(by_class[c]) and len(picked) < self.num_queries:
                    picked.append(by_class[c][depth])
            depth += 1
        return picked

    def compute(self, features, log_dir, split, trainer):
        dm = evaluation_data(trainer)
        pairs, names = dm.pair_dataset(split), dm.class_names
        labelled = getattr(dm, "num_classes", 0) >= 2
        fq, fg = features["audio"], features["image"]
        q = torch.nn.functional.normalize(fq.embeddings.float(), dim=-1)
        g = torch.nn.functional.normalize(fg.embeddings.float(), dim=-1)
        rows = self.queries(fq.labels)
        scores, top = (q[rows] @ g.T).topk(min(self.k, len(g)), dim=1)

        def name(label: int) -> str:
            return names[label] if 0 <= label < len(names) else str(label)

        shown, titles, matches, match_titles, hits, table = [], [], [], [], [], []
        for row, (s, t) in enumerate(zip(scores.tolist(), top.tolist(), strict=True)):
            label = int(fq.labels[rows[row]])
            spec = display(pairs[int(fq.indices[rows[row]])]["audio"])
            pics = [display(pairs[int(fg.indices[j])]["image"]) for j in t]
            if labelled:
                hit = [int(fg.labels[j]) == label for j in t]
            else:  # no classes: a hit is the query's own partner
                hit = [j == rows[row] for j in t]
            caps = [
                f"{name(int(fg.labels[j]))} {'hit' if h else 'miss'} {v:.2f}"
                for j, h, v in zip(t, hit, s, strict=True)
            ]
            shown.append(spec)
            titles.append(f"query: {name(label)}")
            matches.append(pics)
            match_titles.append(caps)
            hits.append(hit)
            table.append(
                [(spec, name(label)), name(label), *zip(pics, caps, strict=True), sum(hit)]
            )
        step = trainer.global_step
        path = log_dir / f"retrieval_examples_{split}_step{step}.png"
        hit_is = "same class" if labelled else "the query's own pair"
        title = f"audio -> image, {split} split, step {step} (green: {hit_is})"
        retrieval_examples_figure(shown, titles, matches, match_titles, hits, title, path)
        log_image(trainer, f"{split}/retrieval_examples_picture", path)
        columns = ["query", "class", *(f"top{j + 1}" for j in range(top.size(1))), "hits"]
        log_table(trainer, f"{split}/retrieval_examples", columns, table)
        return {}
