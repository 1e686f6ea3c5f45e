"""Evaluation callbacks. Each calls ``embed`` on the datamodule's eval sets; none trains.

Shared protocol (``EmbeddingEvalCallback``): skipped during the sanity check; on validation
every ``every_n_epochs`` epochs (split ``val``); once at the end of training on
``final_split`` (``test`` by default, so ``assoc fit`` reports test numbers); and on
``assoc test``. Features are gathered from all ranks and de-duplicated (``eval/bank.py``),
metrics are computed on rank 0 in fp32/fp64, broadcast, logged as ``{split}/{metric}`` and
appended to results.jsonl. Sampling during evaluation uses its own seeded RNG, so running an
evaluation never changes the training run's random stream.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from assoc_lightning.eval.bank import Features, collect_features
from assoc_lightning.eval.clustering import kmeans_purity
from assoc_lightning.eval.modality import modality_svm_accuracy
from assoc_lightning.eval.results import results_writer
from assoc_lightning.utils.dist import rank

# Features computed once per (trainer, split, modality, samples, step) and shared by callbacks.
_FEATURE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def eval_features(
    trainer: Trainer, pl_module: LightningModule, split: str, num_samples: int, seed: int
) -> dict[str, Features]:
    """Features of every modality of ``split``; cached until the next training step."""
    dm = trainer.datamodule
    if dm is None or not hasattr(dm, "eval_dataset"):
        raise RuntimeError(
            "evaluation callbacks need an AssocDataModule (with eval_dataset(split, modality)); "
            f"got {type(dm).__name__}"
        )
    key = (split, num_samples, seed, trainer.global_step, trainer.current_epoch)
    cache = _FEATURE_CACHE.setdefault(trainer, {})
    if key not in cache:
        cache.clear()
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            cache[key] = {
                m: collect_features(
                    pl_module,
                    dm.eval_dataset(split, m),
                    m,
                    dm.eval_batch_size,
                    dm.num_workers,
                    num_samples,
                )
                for m in dm.modalities
            }
    return cache[key]


def balanced_subset(
    n_per_modality: dict[str, int], limit: int | None, seed: int
) -> dict[str, np.ndarray]:
    """Seeded equal-size index subsets per modality (size: the smallest modality, or ``limit``)."""
    n = min(n_per_modality.values())
    if limit is not None:
        n = min(n, limit)
    rng = np.random.default_rng(seed)
    return {m: np.sort(rng.choice(total, n, replace=False)) for m, total in n_per_modality.items()}


class EmbeddingEvalCallback(Callback):
    """Base: when to evaluate, gathering, broadcasting, logging and results.jsonl.

    Args:
        every_n_epochs: evaluate on ``val_split`` every that many epochs (0: never during fit).
        val_split: split evaluated during training.
        final_split: split evaluated once when training ends (``None``: skip).
        num_samples: embeddings sampled per input (0: use ``embed``, the deterministic ones).
        seed: seed for sampling and subsetting in the evaluation.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        num_samples: int = 0,
        seed: int = 0,
    ) -> None:
        self.every_n_epochs = every_n_epochs
        self.val_split = val_split
        self.final_split = final_split
        self.num_samples = num_samples
        self.seed = seed

    def compute(
        self, features: dict[str, Features], log_dir: Path, split: str, trainer: Trainer
    ) -> dict[str, float]:
        """Metric values from gathered features; runs on rank 0 only."""
        raise NotImplementedError

    def evaluate(
        self, trainer: Trainer, pl_module: LightningModule, split: str, via_module_log: bool
    ) -> dict:
        """Run on every rank: gather features, compute on rank 0, broadcast, log, record."""
        features = eval_features(trainer, pl_module, split, self.num_samples, self.seed)
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)  # a broadcast: all ranks
        metrics = self.compute(features, log_dir, split, trainer) if rank() == 0 else None
        metrics = trainer.strategy.broadcast(metrics, src=0)
        if via_module_log:
            for name, value in metrics.items():
                pl_module.log(f"{split}/{name}", value, sync_dist=False)
        else:
            for logger in trainer.loggers:
                logger.log_metrics(
                    {f"{split}/{k}": v for k, v in metrics.items()}, step=trainer.global_step
                )
        results_writer(trainer).write(trainer, pl_module, split, metrics)
        for name, value in metrics.items():
            rank_zero_info(f"[{split}] {name} = {value:.4f} (epoch {trainer.current_epoch})")
        return metrics

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.every_n_epochs <= 0:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.evaluate(trainer, pl_module, self.val_split, via_module_log=True)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.final_split:
            self.evaluate(trainer, pl_module, self.final_split, via_module_log=False)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.evaluate(trainer, pl_module, "test", via_module_log=True)


def _flatten_samples(f: Features, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of ``rows`` with any sample axis flattened, and the matching labels."""
    emb = f.embeddings[torch.as_tensor(rows)]
    lab = f.labels[torch.as_tensor(rows)]
    if emb.dim() == 3:
        lab = lab.repeat_interleave(emb.size(1))
        emb = emb.reshape(-1, emb.size(-1))
    return emb.double().numpy(), lab.numpy()


class ClusterPurityCallback(EmbeddingEvalCallback):
    """K-means cluster purity of both modalities embedded together (``cluster_purity``).

    An equal number of inputs per modality (the smaller modality's size, or
    ``max_per_modality``), each contributing ``num_samples`` sampled embeddings, as the IG
    paper does (1,076 inputs x 16 samples per modality).

    Args:
        k: number of clusters (10).
        max_per_modality: cap on inputs per modality.
        every_n_epochs, val_split, final_split, num_samples, seed: see EmbeddingEvalCallback.
    """

    def __init__(
        self,
        k: int = 10,
        max_per_modality: int | None = None,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        num_samples: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, num_samples, seed)
        self.k = k
        self.max_per_modality = max_per_modality

    def compute(self, features, log_dir, split, trainer):
        subset = balanced_subset(
            {m: len(f.indices) for m, f in features.items()}, self.max_per_modality, self.seed
        )
        parts = [_flatten_samples(features[m], rows) for m, rows in subset.items()]
        emb = np.concatenate([p[0] for p in parts])
        lab = np.concatenate([p[1] for p in parts])
        return {"cluster_purity": kmeans_purity(emb, lab, self.k, self.seed)}


class ModalityClassifierCallback(EmbeddingEvalCallback):
    """RBF-SVM accuracy at telling audio from image embeddings (``modality_acc``; chance 0.5).

    One embedding per input (the first sample when ``num_samples > 0``), equal numbers per
    modality, ``train_size`` for training (C by 3-fold CV), the rest for the reported accuracy.

    Args:
        train_size: training items, a count (the paper: 1600 of 2152) or a fraction.
        c_grid: SVM C values searched.
        max_per_modality: cap on inputs per modality.
        every_n_epochs, val_split, final_split, num_samples, seed: see EmbeddingEvalCallback.
    """

    def __init__(
        self,
        train_size: int | float = 1600 / 2152,
        c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
        max_per_modality: int | None = None,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        num_samples: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, num_samples, seed)
        self.train_size = train_size
        self.c_grid = tuple(c_grid)
        self.max_per_modality = max_per_modality

    def compute(self, features, log_dir, split, trainer):
        subset = balanced_subset(
            {m: len(f.indices) for m, f in features.items()}, self.max_per_modality, self.seed
        )
        embs, is_audio = [], []
        for m, rows in subset.items():
            emb = features[m].embeddings[torch.as_tensor(rows)]
            embs.append((emb[:, 0] if emb.dim() == 3 else emb).double().numpy())
            is_audio.append(np.full(len(rows), m == "audio"))
        acc = modality_svm_accuracy(
            np.concatenate(embs), np.concatenate(is_audio), self.train_size, self.c_grid, self.seed
        )
        return {"modality_acc": acc}


class TSNEPlotCallback(EmbeddingEvalCallback):
    """A t-SNE picture of both modalities (colour: class, marker: modality), saved with the run.

    ``per_modality`` inputs per modality, one sampled embedding each, one t-SNE fit. Written
    to ``<log_dir>/tsne_<split>_step<step>.png`` and to wandb when a WandbLogger is active.
    Runs at the end of training and on test by default (``every_n_epochs=0``).
    """

    def __init__(
        self,
        per_modality: int = 200,
        perplexity: float = 30.0,
        every_n_epochs: int = 0,
        val_split: str = "val",
        final_split: str | None = "test",
        num_samples: int = 16,
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, num_samples, seed)
        self.per_modality = per_modality
        self.perplexity = perplexity

    def compute(self, features, log_dir, split, trainer):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from sklearn.manifold import TSNE

        subset = balanced_subset(
            {m: len(f.indices) for m, f in features.items()}, self.per_modality, self.seed
        )
        embs, labels, mods = [], [], []
        for m, rows in subset.items():
            emb = features[m].embeddings[torch.as_tensor(rows)]
            embs.append((emb[:, 0] if emb.dim() == 3 else emb).double().numpy())
            labels.append(features[m].labels[torch.as_tensor(rows)].numpy())
            mods += [m] * len(rows)
        xy = TSNE(
            perplexity=min(self.perplexity, len(mods) - 1), random_state=self.seed, init="pca"
        ).fit_transform(np.concatenate(embs))
        labels, mods = np.concatenate(labels), np.array(mods)
        fig, ax = plt.subplots(figsize=(6, 6))
        for m, marker in (("image", "o"), ("audio", "^")):
            sel = mods == m
            sc = ax.scatter(
                xy[sel, 0],
                xy[sel, 1],
                c=labels[sel],
                cmap="tab10",
                vmin=0,
                vmax=9,
                marker=marker,
                s=14,
            )
            ax.scatter([], [], c="k", marker=marker, label=m)  # legend entry in neutral colour
        ax.legend(loc="best")
        fig.colorbar(sc, ax=ax, label="class")
        ax.set_title(f"t-SNE of {split} embeddings (step {trainer.global_step})")
        path = log_dir / f"tsne_{split}_step{trainer.global_step}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
        plt.close(fig)
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"{split}/tsne", images=[str(path)])
        return {}
