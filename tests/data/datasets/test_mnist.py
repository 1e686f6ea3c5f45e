"""MNIST / Fashion-MNIST from IDX files; real Fashion-MNIST when Debian's dataset-fashion-mnist is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assoc_lightning.data.datasets.mnist import FashionMNISTImages, MNISTImages
from assoc_lightning.data.errors import DatasetNotFoundError
from tests.fixtures.idx import make_mnist


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_gz_and_raw_with_val_carved_from_train(tmp_path, gz):
    make_mnist(tmp_path, gz=gz)
    train, val, test = (MNISTImages(tmp_path, s, val_size=10) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (50, 10, 20)
    assert val.labels.tolist() == list(range(10))  # the last 10 training images
    item = train[3]
    assert item["image"].shape == (1, 28, 28) and item["label"] == 3
    assert 0.23 < item["image"].mean() < 0.26  # 3 * 20 / 255 plus a little noise


def test_idx_missing_file_names_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="MNIST/raw/train-images-idx3-ubyte"):
        MNISTImages(tmp_path, "train")


@pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="Debian's dataset-fashion-mnist package is not installed",
)
def test_real_fashion_mnist_through_the_idx_reader():
    root = Path("/usr/share/datasets/fashion-mnist")
    train, test = FashionMNISTImages(root, "train", val_size=0), FashionMNISTImages(root, "test")
    assert (len(train), len(test)) == (60000, 10000)
    assert np.bincount(test.labels).tolist() == [1000] * 10
