"""Transfer evaluation: kNN and a linear probe on another data set than the one trained on.

"Pretrain on X, evaluate on Y" (BMA-Memory: ACIVW -> DCASE 2018): the method embeds Y's
train / val / test splits with ``embed()``; a majority-vote kNN (k chosen on Y's val) and a
logistic-regression probe (C chosen on Y's val) are fit on Y's train features and reported on
the evaluated split of Y. ``data`` is any evaluation-data provider (``EvaluationData``:
``eval_dataset(split, modality)``, ``modalities``, ``num_classes``, ``eval_batch_size``,
``num_workers``), built from YAML by its ``class_path`` (e.g. ``TransferDataModule``), so this
file never imports the data layer. Features are gathered and de-duplicated across ranks as
everywhere (``eval/bank.py``); metrics are computed on rank 0 and broadcast.

Cross-validated sets (ESC-50, the DCASE 2013 scenes: the DMC / SoundNet protocol) are run once
per fold with ``folds``: the data's ``for_fold(f)`` re-opens it with fold ``f`` as its test
split, every fold is evaluated as above, and the fold mean is reported beside each fold's
numbers. ``classifier: linear_svm`` swaps the logistic probe for a linear SVM.
"""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info

from assoc_lightning.data.protocols import EvaluationData, require
from assoc_lightning.errors import ConfigError
from assoc_lightning.eval.bank import collect_features
from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback
from assoc_lightning.eval.metrics.transfer import CLASSIFIERS, knn_transfer, linear_transfer


class TransferEvalCallback(EmbeddingEvalCallback):
    """kNN and linear probe of one modality of a transfer set (see the module docstring).

    Logs ``transfer/<name>/knn_top1`` (majority vote, cosine), ``transfer/<name>/knn_k`` (the
    k chosen), ``transfer/<name>/linear_top1`` and, when the transfer set's datasets have
    ``clip_ids`` (segments of longer clips, e.g. DCASE), ``knn_clip_top1`` and
    ``linear_clip_top1``: each clip's segment scores averaged before the argmax. As every
    evaluation, under the evaluated split (``test/transfer/<name>/knn_top1``) and in
    results.jsonl. With ``folds``, each of those keys is the mean over the folds (``knn_k``
    excepted) and ``transfer/<name>/fold<f>/<key>`` each fold's value (``knn_k`` included).
    By default it runs once when training ends and on ``assoc test``; the
    split named is the transfer set's (``test``; ``val`` during fit if ``every_n_epochs > 0``,
    k and C then fixed as the kNN and linear-probe callbacks do on their val split).

    Args:
        data: the transfer set (``class_path`` + ``init_args`` in YAML).
        name: its name in the metric keys (``None``: the data's ``name``, e.g. the dataset).
        modality: the modality evaluated (``None``: the data's only one); the method must
            embed it, else the evaluation is skipped with a message.
        k_grid: candidate k of the majority vote, chosen on ``select_split``.
        c_grid: candidate C of the probe, chosen on ``select_split``.
        max_iter: L-BFGS iterations of the probe.
        bank_split: the transfer split the kNN bank and the probe are fit on.
        select_split: the transfer split k and C are chosen on (``None``: the grids' middle).
        query_chunk, bank_chunk: chunk sizes bounding memory of the similarity blocks.
        every_n_epochs, val_split, final_split, seed: when to evaluate and the seed
            (``EmbeddingEvalCallback``; here never during fit by default).
        folds: evaluate once per fold (``data.for_fold(f)``, e.g. ``[1, 2, 3, 4, 5]`` for
            ESC-50) and report the mean; ``None``: the data as given, once.
        classifier: ``logistic`` (the linear probe) or ``linear_svm`` (``LinearSVC``, C
            chosen the same way; clip level from averaged decision scores).
    """

    def __init__(
        self,
        data: LightningDataModule,
        name: str | None = None,
        modality: str | None = None,
        k_grid: tuple[int, ...] = (7, 9, 11, 13, 15),
        c_grid: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0),
        max_iter: int = 1000,
        bank_split: str = "train",
        select_split: str | None = "val",
        query_chunk: int = 1024,
        bank_chunk: int = 65536,
        every_n_epochs: int = 0,
        val_split: str = "val",
        final_split: str | None = "test",
        seed: int = 0,
        folds: list[int] | None = None,
        classifier: str = "logistic",
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, seed)
        if not k_grid or not c_grid:
            raise ConfigError("TransferEvalCallback: k_grid and c_grid must not be empty")
        if classifier not in CLASSIFIERS:
            raise ConfigError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
        if folds is not None and (not folds or len(set(folds)) != len(folds)):
            raise ConfigError(f"folds must be distinct and not empty, got {folds!r}")
        self.folds = list(folds) if folds is not None else None
        self.classifier = classifier
        self._fold_data: dict = {}
        self._prepared: set[int] = set()
        self.data = data
        self.name = name or getattr(data, "name", None) or type(data).__name__
        self.modality = modality
        self.k_grid, self.c_grid, self.max_iter = tuple(k_grid), tuple(c_grid), max_iter
        self.bank_split, self.select_split = bank_split, select_split
        self.query_chunk, self.bank_chunk = query_chunk, bank_chunk

    @property
    def state_key(self) -> str:
        return self._generate_state_key(name=self.name)

    def data_for(self, fold: int | None):
        """The transfer data of one fold (``data.for_fold(fold)``, made once), or the data
        itself for ``None``."""
        if fold is None:
            return self.data
        if fold not in self._fold_data:
            for_fold = getattr(self.data, "for_fold", None)
            if not callable(for_fold):
                raise ConfigError(
                    f"transfer set {self.name!r} ({type(self.data).__name__}) has no "
                    "for_fold(fold), so it cannot run folds: use TransferDataModule"
                )
            self._fold_data[fold] = for_fold(fold)
        return self._fold_data[fold]

    def _prepare(self, trainer, data) -> str:
        """Once per data object: check the transfer data, let it follow the run's data dir,
        prepare and set it up (rank 0 prepares first); returns the modality evaluated."""
        attach = getattr(data, "attach", None)
        if callable(attach):
            attach(trainer.datamodule)  # e.g. data_dir None -> the run's data dir
        if id(data) not in self._prepared:
            require(data, EvaluationData, f"TransferEvalCallback {self.name!r}")
            if trainer.local_rank == 0:
                data.prepare_data()
            trainer.strategy.barrier("transfer_prepare")
            data.setup("test")
            self._prepared.add(id(data))
        have = tuple(data.modalities)
        if self.modality is None and len(have) != 1:
            raise ConfigError(
                f"transfer set {self.name!r} has the modalities {have}: name one as modality"
            )
        modality = self.modality or have[0]
        if modality not in have:
            raise ConfigError(f"transfer set {self.name!r} has no modality {modality!r} ({have})")
        return modality

    def applies(self, trainer) -> bool:
        """Whether the run's data (so the method) has the modality; says once when not."""
        trained = getattr(trainer.datamodule, "modalities", None)
        wanted = self.modality or next(iter(getattr(self.data, "modalities", ())), None)
        ok = trained is None or wanted is None or wanted in trained
        if not ok and not getattr(self, "_said_skip", False):
            rank_zero_info(f"transfer {self.name!r}: skipped, the method has no {wanted!r}")
            self._said_skip = True
        return ok

    def features(self, trainer, pl_module, split, cache):
        """Per fold (one entry, ``None``, without ``folds``): features of the bank, selection
        and evaluated splits of the transfer set, the clip id of every item where the
        datasets have them, and the class count. Runs on every rank."""
        out = {}
        for fold in self.folds or [None]:
            data = self.data_for(fold)
            modality = self._prepare(trainer, data)
            out[fold] = self._fold_features(pl_module, data, modality, split)
        return out

    def _fold_features(self, pl_module, data, modality: str, split: str) -> dict:
        splits = {self.bank_split, split} | ({self.select_split} if self.select_split else set())
        feats, clips = {}, {}
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # loaders draw from the global RNG
            for s in sorted(splits):
                ds = data.eval_dataset(s, modality)
                feats[s] = collect_features(
                    pl_module, ds, [modality], batch_size=data.eval_batch_size,
                    num_workers=data.num_workers, seed=self.seed,
                )[modality]  # fmt: skip
                ids = getattr(ds, "clip_ids", None)
                clips[s] = None if ids is None else np.asarray(ids)[feats[s].indices.numpy()]
        return {"features": feats, "clips": clips, "num_classes": data.num_classes}

    def compute(self, features, log_dir, split, trainer):
        per_fold = {fold: self._metrics(f, split) for fold, f in features.items()}
        prefix = f"transfer/{self.name}"
        if self.folds is None:
            return {f"{prefix}/{k}": v for k, v in per_fold[None].items()}
        out = {
            f"{prefix}/{k}": float(np.mean([m[k] for m in per_fold.values()]))
            for k in per_fold[self.folds[0]]
            if k != "knn_k"  # a mean k is no k: each fold's is logged below
        }
        for fold, metrics in per_fold.items():
            out.update({f"{prefix}/fold{fold}/{k}": v for k, v in metrics.items()})
        return out

    def _metrics(self, features: dict, split: str) -> dict[str, float]:
        """kNN and linear-classifier metrics of one fold (rank 0)."""
        feats, clips = features["features"], features["clips"]
        bank, test = feats[self.bank_split], feats[split]
        # as the kNN / linear-probe callbacks: nothing is tuned on the split it reports
        select = feats[self.select_split] if self.select_split else None
        tune = select is not None and split != self.select_split
        seen = [bank.labels.max(), test.labels.max()] + (
            [select.labels.max()] if select is not None else []
        )
        num_classes = max(int(features["num_classes"] or 0), 1 + int(max(seen)))
        knn = knn_transfer(
            bank.embeddings, bank.labels, test.embeddings, test.labels,
            select.embeddings if select is not None else None,
            select.labels if select is not None else None,
            self.k_grid, num_classes, clips[split], self.query_chunk, self.bank_chunk,
        )  # fmt: skip
        linear = linear_transfer(
            bank.embeddings.numpy(), bank.labels.numpy(),
            test.embeddings.numpy(), test.labels.numpy(),
            select.embeddings.numpy() if tune else None,
            select.labels.numpy() if tune else None,
            self.c_grid, self.max_iter, clips[split], self.classifier,
        )  # fmt: skip
        return {**knn, **linear}
