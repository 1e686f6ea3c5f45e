"""IDX reader, Speech Commands + MNIST pairing, paired_fraction, errors; real Fashion-MNIST
through the idx reader when Debian's dataset-fashion-mnist is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from assoc_lightning.data import PairedDataModule
from assoc_lightning.data.datasets.mnist import FashionMNISTImages, MNISTImages
from assoc_lightning.data.datasets.pairing import stratified_fraction
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.idx import read_idx
from tests.fixtures import make_gsc, make_mnist, write_idx

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPEAKERS = tuple(f"{i:04d}abcd" for i in range(6))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_gz_and_raw_with_val_carved_from_train(tmp_path, gz):
    make_mnist(tmp_path, gz=gz)
    train, val, test = (MNISTImages(tmp_path, s, val_size=10) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (50, 10, 20)
    assert val.labels.tolist() == list(range(10))  # the last 10 training images
    item = train[3]
    assert item["image"].shape == (1, 28, 28) and item["label"] == 3
    assert 0.23 < item["image"].mean() < 0.26  # 3 * 20 / 255 plus a little noise


def test_idx_reader_rejects_truncated_and_wrong_magic(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DatasetCorruptError, match="truncated"):
        read_idx(path, magic=2051)
    write_idx(path, np.zeros(4, np.uint8))
    with pytest.raises(DatasetCorruptError, match="magic 2051"):
        read_idx(path, magic=2051)
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DatasetCorruptError, match="gzip"):
        read_idx(path)


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


@pytest.fixture()
def mnist_gsc(tmp_path):
    make_mnist(tmp_path, n_train=100, n_test=30)
    make_gsc(
        tmp_path / "SpeechCommands" / "speech_commands_v0.02",
        words=DIGITS + ("go", "stop", "left", "right", "cat"),
        speakers=SPEAKERS,
    )
    return tmp_path


def test_mnist_speech_commands_pairs_within_class(mnist_gsc):
    dm = PairedDataModule("mnist_speech_commands", data_dir=str(mnist_gsc), batch_size=8,
                          image_options={"val_size": 20})  # fmt: skip
    dm.prepare_data()
    dm.setup("fit")
    # 10 paired digits + the paper's 4 command words, unpaired (14 GSC words); "cat" left out
    assert (
        dm.num_classes == 14 and dm.class_names[3] == "three" and dm.class_names[10] == "audio:go"
    )
    audio = dm.unpaired["train"]["audio"]
    assert len(audio) == 56 and set(audio.labels.tolist()) == set(range(14))
    for split in ("train", "val", "test"):
        pairs = dm.paired[split]
        for i in range(len(pairs)):
            item = pairs[i]
            assert dm.unpaired[split]["audio"].labels[item["audio_index"]] == item["label"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (8, 1, 28, 28) and batch["audio"].shape == (8, 16000)


def test_paired_fraction_keeps_unpaired_data(mnist_gsc):
    dm = PairedDataModule("mnist_speech_commands", data_dir=str(mnist_gsc), paired_fraction=0.2,
                          image_options={"val_size": 20})  # fmt: skip
    dm.setup("fit")
    assert len(dm.unpaired["train"]["image"]) == 80  # the unimodal parts see everything
    assert len(dm.paired["train"]) == 20  # 2 of 8 per class
    assert np.bincount(dm.paired["train"].anchor.labels).tolist() == [2] * 10
    assert len(dm.paired["val"]) == len(dm.unpaired["val"]["image"])  # evaluation pairs stay whole


def test_stratified_fraction():
    labels = np.repeat(np.arange(5), 100)
    keep = stratified_fraction(labels, 0.01, seed=0)
    assert np.bincount(labels[keep]).tolist() == [1] * 5
    assert (stratified_fraction(labels, 0.01, seed=0) == keep).all()
    with pytest.raises(ValueError, match="paired_fraction"):
        stratified_fraction(labels, 0.0, seed=0)


def test_missing_datasets_and_bad_scenario(tmp_path):
    dm = PairedDataModule("mnist_speech_commands", data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="dataset not found: MNIST"):
        dm.prepare_data()
    make_mnist(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="speech_commands_v0.02"):
        dm.prepare_data()
    tid = PairedDataModule("mnist_tidigits", data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="LDC93S10"):
        tid.prepare_data()
    with pytest.raises(ValueError, match="unknown scenario"):
        PairedDataModule("mnist_klingon")


def test_download_only_when_asked(mnist_gsc, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "assoc_lightning.data.datasets.registry.download", lambda name, root: calls.append(name)
    )
    PairedDataModule("mnist_speech_commands", data_dir=str(mnist_gsc)).prepare_data()
    assert calls == []
    PairedDataModule("mnist_speech_commands", data_dir=str(mnist_gsc), download=True).prepare_data()
    assert calls == ["mnist", "speech_commands"]


def test_gtsrb_speech_commands_traffic_commands(tmp_path):
    from tests.test_gtsrb import make_gtsrb

    make_gtsrb(tmp_path, classes=(1, 15, 35, 36, 37))  # 1 (30 km/h) is a distractor, never paired
    words = ("go", "stop", "left", "right", "yes") + DIGITS
    make_gsc(tmp_path / "speech_commands_v0.02", words=words, speakers=SPEAKERS)
    dm = PairedDataModule("gtsrb_speech_commands", data_dir=str(tmp_path), batch_size=4,
                          image_options={"val_fraction": 0.34})  # fmt: skip
    dm.setup("fit")
    assert dm.class_names[:4] == ("go", "stop", "left", "right") and dm.num_classes == 4 + 5 + 10
    images = dm.unpaired["train"]["image"]
    # 35, 15, 37, 36 -> go, stop, left, right; the distractor 1 (30 km/h) -> 5, unpaired
    assert set(images.labels.tolist()) == {0, 1, 2, 3, 5}
    assert set(dm.paired["train"].anchor.labels.tolist()) == {0, 1, 2, 3}
    assert len(set(dm.unpaired["train"]["audio"].labels.tolist())) == 14
    item = dm.paired["test"][0]
    assert item["image"].shape == (3, 52, 52)
    assert dm.unpaired["test"]["audio"].labels[item["audio_index"]] == item["label"]
