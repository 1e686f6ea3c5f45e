"""MNIST / Fashion-MNIST from their IDX files (gzipped or not), checked on content.

Accepted layouts: ``<root>/<MNIST|FashionMNIST>/raw/<file>[.gz]`` (torchvision's) or the four
files directly in ``<root>/<MNIST|FashionMNIST>/`` or ``<root>/``. The IDX reader
(``data/io/idx.py``) checks the decompressed content, never archive checksums, so
re-compressed copies (e.g. Debian's dataset-fashion-mnist) are accepted. ``download`` goes
through torchvision's dataset classes (official URLs and checksums), only when asked.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.idx import read_idx
from assoc_lightning.errors import ConfigError

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SIZES = {"train": 60000, "test": 10000}


class IDXImages(LabeledDataset):
    """One split of an IDX image set as ``[1, 28, 28]`` floats in [0, 1].

    ``test`` is the t10k file; ``val`` is the last ``val_size`` images of the training file and
    ``train`` the rest (our choice: the official split has no validation part).
    """

    modality = "image"
    folder = "MNIST"
    how_to_get = "https://yann.lecun.com/exdb/mnist/ (or `download: true`)"

    def __init__(self, root: str | Path, split: str, val_size: int = 5000) -> None:
        if split not in ("train", "val", "test"):
            raise ConfigError(f"split must be train/val/test, got {split!r}")
        self.root = Path(root)
        names = FILES["test" if split == "test" else "train"]
        img_path, lab_path = (self._find(n) for n in names)
        images = read_idx(img_path, magic=2051)
        labels = read_idx(lab_path, magic=2049)
        if len(images) != len(labels):
            raise DatasetCorruptError(
                lab_path, f"{len(images)} labels (one per image)", f"{len(labels)}"
            )
        if split != "test":
            if not 0 <= val_size < len(images):
                raise ConfigError(
                    f"{self.folder}: val_size={val_size} must leave training images: "
                    f"{img_path} holds {len(images)} (use a val_size from 0 to {len(images) - 1})"
                )
            cut = len(images) - val_size
            rows = slice(cut, None) if split == "val" else slice(0, cut)
            images, labels = images[rows], labels[rows]
        super().__init__(labels.astype(np.int64))
        self.images = torch.from_numpy(images.astype(np.uint8))

    def _find(self, name: str) -> Path:
        for d in (self.root / self.folder / "raw", self.root / self.folder, self.root):
            for candidate in (d / name, d / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        layout = "\n".join(
            f"<root>/{self.folder}/raw/{n}[.gz]" for pair in FILES.values() for n in pair
        )
        raise DatasetNotFoundError(self.folder, self.root, layout, self.how_to_get, missing=name)

    def load(self, index: int) -> torch.Tensor:
        return self.images[index].float().div(255.0).unsqueeze(0)


class MNISTImages(IDXImages):
    folder = "MNIST"


class FashionMNISTImages(IDXImages):
    folder = "FashionMNIST"
    how_to_get = (
        "https://github.com/zalandoresearch/fashion-mnist (or `download: true`, or Debian's "
        "dataset-fashion-mnist package: /usr/share/datasets/fashion-mnist)"
    )


def download_mnist(root: str | Path) -> None:
    """MNIST into ``<root>/MNIST/raw`` through torchvision (official URLs, checksums)."""
    from torchvision.datasets import MNIST

    for train in (True, False):
        MNIST(str(root), train=train, download=True)


def download_fashion_mnist(root: str | Path) -> None:
    """Fashion-MNIST into ``<root>/FashionMNIST/raw`` through torchvision."""
    from torchvision.datasets import FashionMNIST

    for train in (True, False):
        FashionMNIST(str(root), train=train, download=True)
