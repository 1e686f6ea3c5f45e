"""A t-SNE picture of both modalities, saved with the run (and to wandb)."""

from __future__ import annotations

from assoc_lightning.eval.bank import balanced_embeddings
from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback, log_image
from assoc_lightning.eval.pictures import tsne_figure


class TSNEPlotCallback(EmbeddingEvalCallback):
    """A t-SNE picture of both modalities (colour: class, marker: modality), saved with the run.

    ``per_modality`` inputs per modality, one embedding each (``embed``; with ``num_samples`` > 0
    the first of that many sampled ones, ``embed_samples``), one t-SNE fit. Part of every run's
    ``EvaluationSuite`` (``eval: {tsne: null}`` switches it off). Written
    to ``<log_dir>/tsne_<split>_step<step>.png`` and to wandb when a WandbLogger is active.
    Runs at the end of training and on test by default (``every_n_epochs=0``).
    """

    needs = frozenset({"image", "audio"})

    def __init__(
        self,
        per_modality: int = 200,
        perplexity: float = 30.0,
        num_samples: int = 0,
        every_n_epochs: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(every_n_epochs=every_n_epochs, **kwargs)
        self.num_samples = num_samples
        self.per_modality = per_modality
        self.perplexity = perplexity

    def compute(self, features, log_dir, split, trainer):
        from sklearn.manifold import TSNE

        emb, labels, mods = balanced_embeddings(features, self.per_modality, self.seed, False)
        xy = TSNE(
            perplexity=min(self.perplexity, len(mods) - 1), random_state=self.seed, init="pca"
        ).fit_transform(emb)
        path = log_dir / f"tsne_{split}_step{trainer.global_step}.png"
        title = f"t-SNE of {split} embeddings (step {trainer.global_step})"
        tsne_figure(xy, labels, mods, title, path)
        log_image(trainer, f"{split}/tsne", path)
        return {}
