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

Our choices (the paper's classifiers are unspecified): ``RecognitionCNN`` below, Adam 1e-3,
15 epochs, batch 128, no augmentation, seeded; the output covers every class of the datamodule
and is not restricted to the paired ones. Everything is computed on rank 0 (generation and
classification are plain forward passes, no collective), then broadcast.
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

from assoc_lightning.eval.callbacks import EmbeddingEvalCallback, _datamodule

CACHE_VERSION = 1


class RecognitionCNN(nn.Module):
    """Three 3x3 stride-2 convs (16, 32, 64 channels, BatchNorm, ReLU), FC 128, FC classes.

    Small on purpose: it must train in seconds on CPU for the embedded default, and still
    reaches the paper's accuracies on MNIST-sized data. Any ``[C, H, W]`` input shape.
    """

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = in_shape[0], in_shape[1:]
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, 2, 1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c, h, w = out, (h + 1) // 2, (w + 1) // 2
        self.net = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(c * h * w, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    epochs: int = 15,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> RecognitionCNN:
    """A ``RecognitionCNN`` fit to ``(x, y)`` with Adam and cross-entropy, seeded."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RecognitionCNN(tuple(x.shape[1:]), num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=gen).split(batch_size):
            if len(rows) < 2:  # BatchNorm needs two items
                continue
            loss = nn.functional.cross_entropy(model(x[rows].to(device)), y[rows].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Class predictions for ``x`` (on the model's device, in eval mode), on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model(c.to(device)).argmax(1).cpu() for c in x.split(batch_size)])


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).float().mean()) if len(labels) else float("nan")


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


def pictures(x: torch.Tensor, unit_range: bool) -> torch.Tensor:
    """Tensors ``[N, C, H, W]`` as pictures in [0, 1]; others min-max scaled, flipped up."""
    if unit_range:
        return x.clamp(0, 1)
    flat = x.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    x = (x - lo[:, None, None, None]) / (hi - lo).clamp_min(1e-8)[:, None, None, None]
    return x.flip(-2)


def grid(rows: list[torch.Tensor], pad: int = 2) -> torch.Tensor:
    """Rows of equally many tiles, each tile centred on a canvas fitting the largest one."""
    c = max(r.size(1) for r in rows)
    h, w = max(r.size(2) for r in rows), max(r.size(3) for r in rows)
    tiles = []
    for r in rows:
        canvas = torch.zeros(r.size(0), c, h, w)
        top, left = (h - r.size(2)) // 2, (w - r.size(3)) // 2
        canvas[:, :, top : top + r.size(2), left : left + r.size(3)] = r.expand(-1, c, -1, -1)
        tiles.append(canvas)
    from torchvision.utils import make_grid

    return make_grid(torch.cat(tiles), nrow=rows[0].size(0), padding=pad, pad_value=1.0)


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
        every_n_epochs, val_split, final_split, seed: see EmbeddingEvalCallback.
    """

    def __init__(
        self,
        directions: list[tuple[str, str]] | None = None,
        classifier_epochs: int = 15,
        classifier_lr: float = 1e-3,
        classifier_batch_size: int = 128,
        cache_dir: str | None = None,
        grid_columns: int = 10,
        every_n_epochs: int = 1,
        val_split: str = "val",
        final_split: str | None = "test",
        seed: int = 0,
    ) -> None:
        super().__init__(every_n_epochs, val_split, final_split, 0, seed)
        self.directions = [tuple(d) for d in directions] if directions is not None else None
        self.classifier_epochs = classifier_epochs
        self.classifier_lr = classifier_lr
        self.classifier_batch_size = classifier_batch_size
        self.cache_dir = cache_dir
        self.grid_columns = grid_columns
        self.classifiers: dict[str, tuple[str, nn.Module, bool]] = {}  # m -> (key, net, [0,1]?)
        self.trained: list[str] = []  # modalities whose classifier this callback trained

    def features(self, trainer, pl_module, split):
        return None  # everything happens on rank 0 in compute()

    def classifier(self, trainer: Trainer, modality: str) -> tuple[nn.Module, bool]:
        """Modality's classifier (memory, then disk cache, else trained and cached) and
        whether its data lie in [0, 1]."""
        dm, module = _datamodule(trainer), trainer.lightning_module
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
        # evaluation may run in inference mode: the classifier is built and trained outside it
        if path.is_file():
            saved = torch.load(path, map_location="cpu", weights_only=True)
            with torch.inference_mode(False):
                net = RecognitionCNN(tuple(probe.shape[1:]), settings["num_classes"])
                net.load_state_dict(saved["state_dict"])
            unit = bool(saved["unit_range"])
            rank_zero_info(f"recognition: loaded the {modality} classifier from {path}")
        else:
            x, y = generate(module, train, modality, **kw)
            unit = bool(x.min() >= 0 and x.max() <= 1)
            with torch.inference_mode(False), torch.enable_grad():
                x, y = x.clone(), y.clone()  # normal tensors, usable by autograd
                net = train_classifier(
                    x, y, settings["num_classes"], self.classifier_epochs,
                    self.classifier_lr, self.classifier_batch_size, self.seed, module.device,
                )  # fmt: skip
            self.trained.append(modality)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                state = {k: v.cpu() for k, v in net.state_dict().items()}
                torch.save({"state_dict": state, "unit_range": unit, "settings": settings}, path)
                rank_zero_info(f"recognition: trained the {modality} classifier, cached at {path}")
            except OSError as err:
                rank_zero_warn(f"recognition: could not cache the {modality} classifier: {err}")
        with torch.inference_mode(False):
            net = net.to(module.device).eval()
        self.classifiers[modality] = (key, net, unit)
        return net, unit

    @staticmethod
    def _num_classes(dm) -> int:
        if dm.num_classes:
            return int(dm.num_classes)
        return 1 + max(int(dm.eval_dataset("train", m).labels.max()) for m in dm.modalities)

    def compute(self, features, log_dir, split, trainer):
        dm, module = _datamodule(trainer), trainer.lightning_module
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
        picture = grid(
            [pictures(sources, nets[a][1]), pictures(generated[torch.as_tensor(first)], nets[b][1])]
        )
        path = Path(log_dir) / f"crossmodal_{split}_step{trainer.global_step}_{a}2{b}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        from torchvision.utils import save_image

        save_image(picture, path)
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key=f"{split}/crossmodal/{a}2{b}", images=[str(path)])
