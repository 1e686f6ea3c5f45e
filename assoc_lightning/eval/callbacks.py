"""Evaluation callbacks. Each calls ``embed`` on the datamodule's eval sets; none trains.

Shared protocol (``EmbeddingEvalCallback``): skipped during the sanity check; at the end of
every ``every_n_epochs``-th validation epoch (split ``val``; always on ``assoc validate``);
once at the end of training on ``final_split`` (``test`` by default, so ``assoc fit`` reports
test numbers); and on ``assoc test``. Features are gathered from all ranks and de-duplicated (``eval/bank.py``),
metrics are computed on rank 0 in fp32/fp64, broadcast, logged as ``{split}/{metric}`` and
appended to results.jsonl. Sampled embeddings are seeded per item, so results do not depend on
the number of ranks, and evaluating never changes the training run's random stream.
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
from assoc_lightning.eval.knn import majority_select_k, topk_neighbors, weighted_accuracy
from assoc_lightning.eval.linear_probe import linear_probe_accuracy
from assoc_lightning.eval.modality import modality_svm_accuracy
from assoc_lightning.eval.results import results_writer
from assoc_lightning.eval.retrieval import (
    class_match_at_k,
    class_mean_average_precision,
    instance_metrics,
    instance_ranks,
)
from assoc_lightning.utils.dist import rank

# Features computed once per (trainer, training step) and shared by every callback.
_FEATURE_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _datamodule(trainer: Trainer):
    dm = trainer.datamodule
    if dm is None or not hasattr(dm, "eval_dataset"):
        raise RuntimeError(
            "evaluation callbacks need an AssocDataModule (with eval_dataset(split, modality)); "
            f"got {type(dm).__name__}"
        )
    return dm


def eval_features(
    trainer: Trainer,
    pl_module: LightningModule,
    split: str,
    num_samples: int = 0,
    seed: int = 0,
    paired: bool = False,
) -> dict[str, Features]:
    """Features of every modality of ``split`` (of its fixed pairs with ``paired=True``).

    Computed once per training step and shared between callbacks. Sampled embeddings are
    seeded per item (``embed_samples(..., seed)``): the same on any number of ranks, and the
    training run's random stream is never touched.
    """
    dm = _datamodule(trainer)
    stamp = (trainer.global_step, trainer.current_epoch, str(trainer.state.fn))
    cache = _FEATURE_CACHE.setdefault(trainer, {})
    if cache.get("stamp") != stamp:
        cache.clear()
        cache["stamp"] = stamp
    key = (split, num_samples, seed, paired)
    if key not in cache:
        args = (dm.eval_batch_size, dm.num_workers, num_samples, seed)
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # loaders draw from the global RNG
            if paired:
                cache[key] = collect_features(
                    pl_module, dm.pair_dataset(split), dm.modalities, *args
                )
            else:
                cache[key] = {
                    m: collect_features(pl_module, dm.eval_dataset(split, m), [m], *args)[m]
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

    # modalities the evaluation is defined for (e.g. audio->image retrieval); empty: any
    needs: frozenset[str] = frozenset()

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

    def applies(self, trainer: Trainer) -> bool:
        """Whether the datamodule has every modality in ``needs``; says once when not."""
        missing = self.needs - set(_datamodule(trainer).modalities)
        if missing and not getattr(self, "_said_skip", False):
            rank_zero_info(f"{type(self).__name__}: skipped, the data have no {sorted(missing)}")
            self._said_skip = True
        return not missing

    def features(self, trainer: Trainer, pl_module: LightningModule, split: str):
        """The gathered features :meth:`compute` needs; runs on every rank."""
        return eval_features(trainer, pl_module, split, self.num_samples, self.seed)

    def compute(self, features, log_dir: Path, split: str, trainer: Trainer) -> dict[str, float]:
        """Metric values from gathered features; runs on rank 0 only."""
        raise NotImplementedError

    def evaluate(
        self, trainer: Trainer, pl_module: LightningModule, split: str, via_module_log: bool
    ) -> dict:
        """Run on every rank: gather features, compute on rank 0, broadcast, log, record."""
        if not self.applies(trainer):  # the same answer on every rank
            return {}
        features = self.features(trainer, pl_module, split)
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
        if trainer.sanity_checking:
            return
        always = trainer.state.fn == "validate"  # `assoc validate`: always evaluate
        due = self.every_n_epochs > 0 and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if always or due:
            self.evaluate(trainer, pl_module, self.val_split, via_module_log=True)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.final_split:
            self.evaluate(trainer, pl_module, self.final_split, via_module_log=False)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.evaluate(trainer, pl_module, "test", via_module_log=True)


def balanced_embeddings(
    features: dict[str, Features], limit: int | None, seed: int, all_samples: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal numbers of inputs per modality (see :func:`balanced_subset`), as fp64 arrays:
    ``(embeddings, labels, modality names)``. With ``all_samples`` every sampled embedding of
    an input is a row; otherwise one per input (the first sample)."""
    subset = balanced_subset({m: len(f.indices) for m, f in features.items()}, limit, seed)
    embs, labels, mods = [], [], []
    for m, rows in subset.items():
        emb = features[m].embeddings[torch.as_tensor(rows)]
        lab = features[m].labels[torch.as_tensor(rows)]
        if emb.dim() == 3 and all_samples:
            lab = lab.repeat_interleave(emb.size(1))
            emb = emb.reshape(-1, emb.size(-1))
        elif emb.dim() == 3:
            emb = emb[:, 0]
        embs.append(emb.double().numpy())
        labels.append(lab.numpy())
        mods += [m] * len(lab)
    return np.concatenate(embs), np.concatenate(labels), np.array(mods)


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
        emb, lab, _ = balanced_embeddings(features, self.max_per_modality, self.seed, True)
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

    needs = frozenset({"image", "audio"})

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
        emb, _, mods = balanced_embeddings(features, self.max_per_modality, self.seed, False)
        acc = modality_svm_accuracy(emb, mods == "audio", self.train_size, self.c_grid, self.seed)
        return {"modality_acc": acc}


class TSNEPlotCallback(EmbeddingEvalCallback):
    """A t-SNE picture of both modalities (colour: class, marker: modality), saved with the run.

    ``per_modality`` inputs per modality, one sampled embedding each, one t-SNE fit. Written
    to ``<log_dir>/tsne_<split>_step<step>.png`` and to wandb when a WandbLogger is active.
    Runs at the end of training and on test by default (``every_n_epochs=0``).
    """

    needs = frozenset({"image", "audio"})

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

        emb, labels, mods = balanced_embeddings(features, self.per_modality, self.seed, False)
        xy = TSNE(
            perplexity=min(self.perplexity, len(mods) - 1), random_state=self.seed, init="pca"
        ).fit_transform(emb)
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


class TrainBankEvalCallback(EmbeddingEvalCallback):
    """Base of evaluations fit on the train split's embeddings (kNN bank, linear probe): its
    features are ``{split: {modality: Features}}`` for train, val and the evaluated split."""

    def features(self, trainer, pl_module, split):
        splits = {"train", self.val_split, split}
        return {s: eval_features(trainer, pl_module, s, 0, self.seed) for s in sorted(splits)}


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
        every_n_epochs, val_split, final_split, seed: see EmbeddingEvalCallback.
    """

    def __init__(
        self,
        ks: tuple[int, ...] = (200, 20),
        temperature: float = 0.1,
        majority_k_grid: tuple[int, ...] = (7, 9, 11, 13, 15),
        query_chunk: int = 1024,
        bank_chunk: int = 65536,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, 0, seed)
        self.ks, self.temperature = tuple(ks), temperature
        self.majority_k_grid = tuple(majority_k_grid)
        self.query_chunk, self.bank_chunk = query_chunk, bank_chunk

    def compute(self, features, log_dir, split, trainer):
        train, val, test = features["train"], features[self.val_split], features[split]
        kmax = max(self.ks + self.majority_k_grid)
        out = {}
        for m in test:
            labels = train[m].labels
            num_classes = _datamodule(trainer).num_classes or int(labels.max()) + 1
            # one neighbour search per query set serves both votes (and val == test reuses it)
            search = {}
            for s in {split, self.val_split} if self.majority_k_grid else {split}:
                sims, idx = topk_neighbors(
                    features[s][m].embeddings, train[m].embeddings, kmax,
                    self.query_chunk, self.bank_chunk,
                )  # fmt: skip
                search[s] = (sims, labels[idx])
            sims, neighbors = search[split]
            accs = weighted_accuracy(
                sims, neighbors, test[m].labels, self.ks, self.temperature, num_classes
            )
            for i, k in enumerate(self.ks):
                out[f"knn_top1/{m}" if i == 0 else f"knn_top1_k{k}/{m}"] = accs[k]
            if self.majority_k_grid:
                k, _, acc = majority_select_k(
                    search[self.val_split][1], val[m].labels, neighbors, test[m].labels,
                    self.majority_k_grid, num_classes,
                )  # fmt: skip
                out[f"knn_majority_top1/{m}"] = acc
                out[f"knn_majority_k/{m}"] = float(k)
        return out


class LinearProbeCallback(TrainBankEvalCallback):
    """Logistic regression on frozen, standardized train-split features: ``linear_top1/{m}``.

    C is chosen on the validation split when evaluating another split (on the validation
    split itself, the middle of the grid is used, so no number is tuned on what it reports).

    Args:
        c_grid: inverse regularization strengths searched.
        max_iter: L-BFGS iterations.
        every_n_epochs, val_split, final_split, seed: see EmbeddingEvalCallback.
    """

    def __init__(
        self,
        c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
        max_iter: int = 1000,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, 0, seed)
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


class RetrievalCallback(EmbeddingEvalCallback):
    """Audio->image and image->audio retrieval on the split's fixed pairs.

    Instance level (C-MCR): ``retrieval/{a2i,i2a}_r{K}``, ``_map``, ``_medr``. Class match
    (BMA-Memory Table 3): ``retrieval/{a2i,i2a}_class_r{K}``: a hit when any of the top K has
    the query's class; ``retrieval/{a2i,i2a}_class_map``: mAP with every same-class gallery
    item relevant (the C-MCR toy default's zero-shot measure).

    Args:
        ks: K for instance-level recall (1, 5, 10).
        class_ks: K for class-match accuracy (1..5).
        chunk: queries per similarity block.
        every_n_epochs, val_split, final_split, seed: see EmbeddingEvalCallback.
    """

    needs = frozenset({"image", "audio"})

    def __init__(
        self,
        ks: tuple[int, ...] = (1, 5, 10),
        class_ks: tuple[int, ...] = (1, 2, 3, 4, 5),
        chunk: int = 1024,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, 0, seed)
        self.ks, self.class_ks, self.chunk = tuple(ks), tuple(class_ks), chunk

    def features(self, trainer, pl_module, split):
        return eval_features(trainer, pl_module, split, 0, self.seed, paired=True)

    def compute(self, features, log_dir, split, trainer):
        out = {}
        for name, (q, g) in {"a2i": ("audio", "image"), "i2a": ("image", "audio")}.items():
            fq, fg = features[q], features[g]
            ranks = instance_ranks(fq.embeddings, fg.embeddings, self.chunk)
            out.update(
                {f"retrieval/{name}_{k}": v for k, v in instance_metrics(ranks, self.ks).items()}
            )
            hits = class_match_at_k(
                fq.embeddings, fq.labels, fg.embeddings, fg.labels, self.class_ks, self.chunk
            )
            out.update({f"retrieval/{name}_class_r{k}": v for k, v in hits.items()})
            out[f"retrieval/{name}_class_map"] = class_mean_average_precision(
                fq.embeddings, fq.labels, fg.embeddings, fg.labels
            )
        return out


class EvaluationSuite(Callback):
    """The shared evaluation every experiment runs: kNN, linear probe and retrieval.

    The CLI adds it to every run as the ``eval`` config group (``experiments/base/eval.yaml``),
    so all methods report the same metrics. Each part is also usable on its own as a callback.

    Args:
        knn, linear_probe, retrieval: which parts run.
        every_n_epochs: evaluate at every n-th validation epoch (validation itself runs every
            ``trainer.check_val_every_n_epoch`` epochs).
        final_split: split evaluated once when training ends (``None``: skip).
        knn_ks, knn_temperature, knn_majority_k_grid: see KNNCallback.
        linear_c_grid: see LinearProbeCallback.
        retrieval_ks, retrieval_class_ks: see RetrievalCallback.
        chunk: queries per similarity block (bounds memory).
        seed: seed for any sampling in the evaluation.
    """

    def __init__(
        self,
        knn: bool = True,
        linear_probe: bool = True,
        retrieval: bool = True,
        every_n_epochs: int = 1,
        final_split: str | None = "test",
        knn_ks: tuple[int, ...] = (200, 20),
        knn_temperature: float = 0.1,
        knn_majority_k_grid: tuple[int, ...] = (7, 9, 11, 13, 15),
        linear_c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
        retrieval_ks: tuple[int, ...] = (1, 5, 10),
        retrieval_class_ks: tuple[int, ...] = (1, 2, 3, 4, 5),
        chunk: int = 1024,
        seed: int = 0,
    ) -> None:
        common = {"every_n_epochs": every_n_epochs, "final_split": final_split, "seed": seed}
        self.parts: list[EmbeddingEvalCallback] = []
        if knn:
            self.parts.append(
                KNNCallback(knn_ks, knn_temperature, knn_majority_k_grid, chunk, **common)
            )
        if linear_probe:
            self.parts.append(LinearProbeCallback(linear_c_grid, **common))
        if retrieval:
            self.parts.append(RetrievalCallback(retrieval_ks, retrieval_class_ks, chunk, **common))

    def on_validation_epoch_end(self, trainer, pl_module):
        for part in self.parts:
            part.on_validation_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer, pl_module):
        for part in self.parts:
            part.on_train_end(trainer, pl_module)

    def on_test_epoch_end(self, trainer, pl_module):
        for part in self.parts:
            part.on_test_epoch_end(trainer, pl_module)
