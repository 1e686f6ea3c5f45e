"""The protocol every evaluation callback shares: when it runs, where its features come from,
how its numbers are gathered, logged and recorded.

When: skipped during the sanity check; at the end of every ``every_n_epochs``-th validation
epoch (split ``val_split``; always on ``assoc validate``); once at the end of training on
``final_split`` (``test`` by default, so ``assoc fit`` reports test numbers); and on
``assoc test``. Features are embedded on every rank, gathered and de-duplicated
(``eval/bank.py``), and kept in a :class:`FeatureCache` for the current step, so callbacks
sharing one cache (the children of an ``EvaluationSuite``) embed each split once. Metrics are
computed on rank 0 in fp32/fp64, broadcast, logged as ``{split}/{metric}`` and appended to
results.jsonl. Sampled embeddings are seeded per item, so results do not depend on the number
of ranks, and evaluating never changes the training run's random stream.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info

from assoc_lightning.data.protocols import EvaluationData, require
from assoc_lightning.eval.bank import Features, collect_features
from assoc_lightning.eval.results import results_writer
from assoc_lightning.utils.dist import rank


def evaluation_data(trainer: Trainer) -> EvaluationData:
    """The trainer's datamodule, checked to offer what evaluation reads."""
    dm = trainer.datamodule
    require(dm, EvaluationData, "evaluation")
    return dm


class FeatureCache:
    """Evaluation features of one trainer at one training step, computed once and shared.

    Keyed by split, number of samples, seed and pairing; emptied whenever the trainer, its
    step, epoch or entry point (fit / validate / test) changes.
    """

    def __init__(self) -> None:
        self._trainer: weakref.ref | None = None
        self._stamp: tuple | None = None
        self._store: dict[tuple, dict[str, Features]] = {}

    def get(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        split: str,
        num_samples: int = 0,
        seed: int = 0,
        paired: bool = False,
        space: str = "features",
    ) -> dict[str, Features]:
        """Features of every modality of ``split`` (of its fixed pairs with ``paired=True``;
        in the method's retrieval space with ``space="retrieval"``).

        Call on every rank. Sampled embeddings are seeded per item
        (``embed_samples(..., seed)``): the same on any number of ranks, and the training
        run's random stream is never touched.
        """
        stamp = (trainer.global_step, trainer.current_epoch, str(trainer.state.fn))
        if self._trainer is None or self._trainer() is not trainer or self._stamp != stamp:
            self._store.clear()
            self._trainer, self._stamp = weakref.ref(trainer), stamp
        key = (split, num_samples, seed, paired, space)
        if key not in self._store:
            dm = evaluation_data(trainer)
            args = (dm.eval_batch_size, dm.num_workers, num_samples, seed, space)
            devices = [pl_module.device] if pl_module.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices):  # loaders draw from the global RNG
                if paired:
                    feats = collect_features(
                        pl_module, dm.pair_dataset(split), dm.modalities, *args
                    )
                else:
                    feats = {
                        m: collect_features(pl_module, dm.eval_dataset(split, m), [m], *args)[m]
                        for m in dm.modalities
                    }
            self._store[key] = feats
        return self._store[key]


def wandb_loggers(trainer: Trainer) -> list:
    """The trainer's WandbLoggers (none without wandb configured)."""
    from lightning.pytorch.loggers import WandbLogger

    return [logger for logger in trainer.loggers if isinstance(logger, WandbLogger)]


def log_image(trainer: Trainer, key: str, path: Path) -> None:
    """Send a picture saved with the run to wandb too, when a WandbLogger is attached."""
    for logger in wandb_loggers(trainer):
        logger.log_image(key=key, images=[str(path)], step=trainer.global_step)


def log_table(trainer: Trainer, key: str, columns: list[str], rows: list[list]) -> None:
    """Send a table to wandb when a WandbLogger is attached; a cell given as ``(picture,
    caption)`` (``[H, W, 3]`` in [0, 1]) becomes a ``wandb.Image``."""
    loggers = wandb_loggers(trainer)
    if not loggers:
        return
    import wandb

    data = [
        [wandb.Image(c[0], caption=c[1]) if isinstance(c, tuple) else c for c in row]
        for row in rows
    ]
    for logger in loggers:
        logger.log_table(key=key, columns=columns, data=data, step=trainer.global_step)


class EmbeddingEvalCallback(Callback):
    """Base: when to evaluate, gathering, broadcasting, logging and results.jsonl.

    Subclasses implement :meth:`compute` (rank 0, from gathered features) and, when they need
    other features than their split's embeddings, :meth:`features`.

    Args:
        every_n_epochs: evaluate on ``val_split`` every that many epochs (0: never during fit).
        val_split: split evaluated during training.
        final_split: split evaluated once when training ends (``None``: skip).
        seed: seed for sampling and subsetting in the evaluation.
    """

    # modalities the evaluation is defined for (e.g. audio->image retrieval); empty: any
    needs: frozenset[str] = frozenset()
    # fit or score against class labels (kNN, linear probe): skipped on unlabelled data
    needs_labels: bool = False
    # embeddings sampled per input (0: ``embed``, the deterministic ones); callbacks that
    # evaluate sampled embeddings take it as an argument
    num_samples: int = 0

    def __init__(
        self,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        seed: int = 0,
    ) -> None:
        self.every_n_epochs = every_n_epochs
        self.val_split = val_split
        self.final_split = final_split
        self.seed = seed
        self.cache = FeatureCache()  # an EvaluationSuite passes its shared one instead

    def applies(self, trainer: Trainer) -> bool:
        """Whether the datamodule has every modality in ``needs`` (and, for ``needs_labels``,
        at least two classes); says once when not."""
        dm = evaluation_data(trainer)
        missing = self.needs - set(dm.modalities)
        why = f"the data have no {sorted(missing)}" if missing else None
        if why is None and self.needs_labels and getattr(dm, "num_classes", 0) < 2:
            why = f"the data are unlabelled (num_classes = {getattr(dm, 'num_classes', 0)})"
        if why and not getattr(self, "_said_skip", False):
            rank_zero_info(f"{type(self).__name__}: skipped, {why}")
            self._said_skip = True
        return why is None

    def features(self, trainer: Trainer, pl_module: LightningModule, split: str, cache):
        """The gathered features :meth:`compute` needs; runs on every rank."""
        return cache.get(trainer, pl_module, split, self.num_samples, self.seed)

    def compute(self, features, log_dir: Path, split: str, trainer: Trainer) -> dict[str, float]:
        """Metric values from gathered features; runs on rank 0 only."""
        raise NotImplementedError

    def evaluate(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        split: str,
        via_module_log: bool,
        cache: FeatureCache | None = None,
    ) -> dict:
        """Run on every rank: gather features, compute on rank 0, broadcast, log, record."""
        if not self.applies(trainer):  # the same answer on every rank
            return {}
        features = self.features(trainer, pl_module, split, cache or self.cache)
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
        writer = results_writer(trainer)
        writer.write(trainer, pl_module, split, metrics)
        writer.announce(trainer, split, metrics)
        return metrics

    # The three moments, with the cache to use (their own, or a suite's).
    def at_validation_end(self, trainer, pl_module, cache: FeatureCache) -> None:
        if trainer.sanity_checking:
            return
        always = trainer.state.fn == "validate"  # `assoc validate`: always evaluate
        due = self.every_n_epochs > 0 and (trainer.current_epoch + 1) % self.every_n_epochs == 0
        if always or due:
            self.evaluate(trainer, pl_module, self.val_split, True, cache)

    def at_train_end(self, trainer, pl_module, cache: FeatureCache) -> None:
        if self.final_split:
            self.evaluate(trainer, pl_module, self.final_split, False, cache)

    def at_test_end(self, trainer, pl_module, cache: FeatureCache) -> None:
        self.evaluate(trainer, pl_module, "test", True, cache)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.at_validation_end(trainer, pl_module, self.cache)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.at_train_end(trainer, pl_module, self.cache)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.at_test_end(trainer, pl_module, self.cache)


class TrainBankEvalCallback(EmbeddingEvalCallback):
    """Base of evaluations fit on the train split's embeddings (kNN bank, linear probe): its
    features are ``{split: {modality: Features}}`` for train, val and the evaluated split."""

    needs_labels = True

    def features(self, trainer, pl_module, split, cache):
        splits = {"train", self.val_split, split}
        return {s: cache.get(trainer, pl_module, s, 0, self.seed) for s in sorted(splits)}
