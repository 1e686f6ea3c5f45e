"""Recognition accuracy of generated data (the VAE-associator paper's Tables 1 and 2).

One classifier per modality, trained by the framework on that modality's original training
split, in the space the method generates (``method.output_space``: images as they are, audio
as the method's MFCC), and cached on disk. Then, for a split:

- ``recognition_acc/{m}``: the classifier on the split's original data (Table 2, "original").
- ``recon_acc/{m}``: the classifier on the method's reconstructions (Table 2, "VAE").
- ``crossmodal_acc/{a}2{b}``: ``translate`` every item of ``a`` whose class modality ``b`` has
  into ``b``, classify with ``b``'s classifier; correct when it is the item's class (Table 1).
  Chained translations (cascades) are the method's business.

Pictures: per direction, the first item of each class and what was generated from it
(``crossmodal_{split}_step{N}_{a}2{b}.png``, sources on top), saved in the run's log dir and
logged to wandb when a WandbLogger is attached. Data outside [0, 1] (MFCC) are min-max scaled
per tile and drawn with coefficient 0 at the bottom.

The classifiers (``eval/metrics/recognition.py``) cover every class of the datamodule, not
only the paired ones. Everything is computed on rank 0 (generation and classification are
plain forward passes, no collective), then broadcast.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn
from torch.utils.data import DataLoader, Dataset

from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback, evaluation_data, log_image
from assoc_lightning.eval.metrics.recognition import (
    RecognitionCNN,
    accuracy,
    predict,
    train_classifier,
)
from assoc_lightning.eval.pictures import pictures, save_grid
from assoc_lightning.utils.files import CacheWriteError, atomic_save, load_or_build

CACHE_VERSION = 1


def _batches(dataset: Dataset, batch_size: int, num_workers: int, rows=None):
    if rows is not None:
        dataset = torch.utils.data.Subset(dataset, [int(r) for r in rows])
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)


@torch.no_grad()
def generate(
    module: LightningModule,
    dataset: Dataset,
    source: str,
    target: str | None = None,
    rows=None,
    batch_size: int = 256,
    num_workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(outputs, labels)`` on the CPU: ``dataset`` items of ``source`` in the method's output
    space (``target=None``) or translated into ``target`` (``rows``: a subset)."""
    outs, labels = [], []
    for batch in _batches(dataset, batch_size, num_workers, rows):
        batch = {k: v.to(module.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        if target is None:
            out = module.output_space({source: batch[source]})[source]
        else:
            out = module.translate(batch, source, target)
        outs.append(out.float().cpu())
        labels.append(batch["label"].cpu())
    return torch.cat(outs), torch.cat(labels)


def content_key(parts: dict, samples: torch.Tensor, labels: np.ndarray) -> str:
    """A short hash of ``parts``, the labels and a few samples (rounded to 1e-3)."""
    h = hashlib.sha1(json.dumps(parts, sort_keys=True).encode())
    h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    h.update(torch.round(samples.double() * 1000).to(torch.int64).numpy().tobytes())
    return h.hexdigest()[:16]


class CrossModalRecognitionCallback(EmbeddingEvalCallback):
    """Recognition accuracy of original, reconstructed and cross-modally generated data.

    Needs a method with ``output_space`` and ``translate`` (others are skipped with a log
    line). See the module docstring for the metrics and pictures.

    Args:
        directions: ``[source, target]`` pairs to evaluate; ``None``: every ordered pair of
            the datamodule's modalities.
        classifier_epochs, classifier_lr, classifier_batch_size: classifier training.
        cache_dir: where trained classifiers are kept; ``None``: ``<data_dir>/recognition``.
            Keyed by datamodule, modality, labels, a hash of some training items in output
            space (so a changed front-end retrains) and the training settings.
        grid_columns: classes shown per picture (0: no pictures).
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    def __init__(
        self,
        directions: list[tuple[str, str]] | None = None,
        classifier_epochs: int = 15,
        classifier_lr: float = 1e-3,
        classifier_batch_size: int = 128,
        cache_dir: str | None = None,
        grid_columns: int = 10,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.directions = [tuple(d) for d in directions] if directions is not None else None
        self.classifier_epochs = classifier_epochs
        self.classifier_lr = classifier_lr
        self.classifier_batch_size = classifier_batch_size
        self.cache_dir = cache_dir
        self.grid_columns = grid_columns
        self.classifiers: dict[str, tuple[str, nn.Module, bool]] = {}  # m -> (key, net, [0,1]?)
        self.trained: list[str] = []  # modalities whose classifier this callback trained

    def features(self, trainer, pl_module, split, cache):
        return None  # everything happens on rank 0 in compute()

    def classifier(self, trainer: Trainer, modality: str) -> tuple[nn.Module, bool]:
        """Modality's classifier (memory, then disk cache, else trained and cached) and
        whether its data lie in [0, 1]."""
        dm, module = evaluation_data(trainer), trainer.lightning_module
        train = dm.eval_dataset("train", modality)
        kw = {"batch_size": dm.eval_batch_size, "num_workers": dm.num_workers}
        probe, _ = generate(module, train, modality, rows=range(min(16, len(train))), **kw)
        settings = {
            "version": CACHE_VERSION,
            "datamodule": type(dm).__name__,
            "modality": modality,
            "num_classes": self._num_classes(dm),
            "epochs": self.classifier_epochs,
            "lr": self.classifier_lr,
            "batch_size": self.classifier_batch_size,
            "seed": self.seed,
            "shape": list(probe.shape[1:]),
        }
        key = content_key(settings, probe, train.labels)
        if modality in self.classifiers and self.classifiers[modality][0] == key:
            return self.classifiers[modality][1:]
        folder = Path(self.cache_dir) if self.cache_dir else Path(dm.data_dir) / "recognition"
        path = folder / f"{type(dm).__name__}_{modality}_{key}.pt"
        shape = tuple(probe.shape[1:])
        net_unit = self._load_or_train(path, shape, module, train, modality, settings, kw)
        net, unit = net_unit
        with torch.inference_mode(False):
            net = net.to(module.device).eval()
        self.classifiers[modality] = (key, net, unit)
        return net, unit

    @staticmethod
    def _load(path: Path, shape, num_classes: int, modality: str):
        """``(net, unit_range)`` from the cache file, or None (absent, or damaged: retrained)."""
        if not path.is_file():
            return None
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            # evaluation may run in inference mode: the classifier is built outside it
            with torch.inference_mode(False):
                net = RecognitionCNN(shape, num_classes)
                net.load_state_dict(saved["state_dict"])
            unit = bool(saved["unit_range"])
        except Exception as err:  # any unreadable cache file: train again
            rank_zero_warn(
                f"recognition: cached classifier {path} does not load ({err}); retraining"
            )
            return None
        rank_zero_info(f"recognition: loaded the {modality} classifier from {path}")
        return net, unit

    def _load_or_train(self, path, shape, module, train, modality, settings, kw):
        """The cached classifier, else trained and cached under the cache's lock (one process
        trains, the others wait and load it); an unwritable cache folder trains uncached."""
        load = lambda: self._load(path, shape, settings["num_classes"], modality)  # noqa: E731

        def train_and_save():
            net, unit = self._train(module, train, modality, settings, kw)
            state = {k: v.cpu() for k, v in net.state_dict().items()}
            saved = {"state_dict": state, "unit_range": unit, "settings": settings}
            atomic_save(lambda tmp: torch.save(saved, tmp), path)
            rank_zero_info(f"recognition: trained the {modality} classifier, cached at {path}")
            return net, unit

        try:
            return load_or_build(path, load, train_and_save)
        except CacheWriteError as err:
            rank_zero_warn(f"recognition: could not cache the {modality} classifier: {err}")
            return self._train(module, train, modality, settings, kw)

    def _train(self, module, train, modality: str, settings: dict, kw: dict):
        """Train ``modality``'s classifier on its training split in output space."""
        x, y = generate(module, train, modality, **kw)
        unit = bool(x.min() >= 0 and x.max() <= 1)
        with torch.inference_mode(False), torch.enable_grad():
            x, y = x.clone(), y.clone()  # normal tensors, usable by autograd
            net = train_classifier(
                x, y, settings["num_classes"], self.classifier_epochs,
                self.classifier_lr, self.classifier_batch_size, self.seed, module.device,
            )  # fmt: skip
        self.trained.append(modality)
        return net, unit

    @staticmethod
    def _num_classes(dm) -> int:
        if dm.num_classes:
            return int(dm.num_classes)
        return 1 + max(int(dm.eval_dataset("train", m).labels.max()) for m in dm.modalities)

    def compute(self, features, log_dir, split, trainer):
        dm, module = evaluation_data(trainer), trainer.lightning_module
        kw = {"batch_size": dm.eval_batch_size, "num_workers": dm.num_workers}
        directions = self.directions
        if directions is None:
            directions = [(a, b) for a in dm.modalities for b in dm.modalities if a != b]
        was_training = module.training
        module.eval()
        devices = [module.device] if module.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                return self._compute(dm, module, trainer, split, directions, log_dir, kw)
        except NotImplementedError as err:
            rank_zero_info(f"recognition: skipped ({err})")
            return {}
        finally:
            module.train(was_training)

    def _compute(self, dm, module, trainer, split, directions, log_dir, kw):
        out, nets = {}, {}
        for m in dm.modalities:
            nets[m] = self.classifier(trainer, m)
            data = dm.eval_dataset(split, m)
            x, y = generate(module, data, m, **kw)
            out[f"recognition_acc/{m}"] = accuracy(predict(nets[m][0], x), y)
            x, y = generate(module, data, m, m, **kw)
            out[f"recon_acc/{m}"] = accuracy(predict(nets[m][0], x), y)
        for a, b in directions:
            data = dm.eval_dataset(split, a)
            target_classes = np.unique(dm.eval_dataset("train", b).labels)
            rows = np.flatnonzero(np.isin(data.labels, target_classes))
            try:
                x, y = generate(module, data, a, b, rows=rows, **kw)
            except ValueError as err:  # e.g. no chain of associators leads there
                rank_zero_info(f"recognition: {a}2{b} skipped ({err})")
                continue
            out[f"crossmodal_acc/{a}2{b}"] = accuracy(predict(nets[b][0], x), y)
            if self.grid_columns > 0:
                self.save_grid(trainer, log_dir, split, module, data, rows, y, x, a, b, nets, kw)
        return out

    def save_grid(
        self, trainer, log_dir, split, module, data, rows, labels, generated, a, b, nets, kw
    ):
        """Sources (first item of each class, up to ``grid_columns``) above their outputs."""
        first = np.unique(labels.numpy(), return_index=True)[1][: self.grid_columns]
        sources, _ = generate(module, data, a, rows=rows[first], **kw)
        path = Path(log_dir) / f"crossmodal_{split}_step{trainer.global_step}_{a}2{b}.png"
        save_grid(
            [
                pictures(sources, nets[a][1]),
                pictures(generated[torch.as_tensor(first)], nets[b][1]),
            ],
            path,
        )
        log_image(trainer, f"{split}/crossmodal/{a}2{b}", path)
