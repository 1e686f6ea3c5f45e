"""Datasets paired by class: MNIST / GTSRB x Speech Commands, MNIST x TIDIGITS, the cascade; paired_fraction; download only when asked."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_lightning.data import MultiPairedDataModule, PairedDataModule
from assoc_lightning.data.errors import DatasetNotFoundError
from tests.fixtures.idx import make_mnist
from tests.fixtures.speech_commands import make_gsc
from tests.fixtures.tidigits import make_tidigits

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


SPEAKERS = tuple(f"{i:04d}abcd" for i in range(6))


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


def test_missing_datasets_and_bad_scenario(tmp_path):
    dm = PairedDataModule(
        "mnist_speech_commands", data_dir=str(tmp_path), image_options={"val_size": 10}
    )  # the fixture has 60 training images
    with pytest.raises(DatasetNotFoundError, match="dataset not found: MNIST"):
        dm.prepare_data()
    make_mnist(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="speech_commands_v0.02"):
        dm.prepare_data()
    tid = PairedDataModule("mnist_tidigits", data_dir=str(tmp_path), image_options={"val_size": 10})
    with pytest.raises(DatasetNotFoundError, match="LDC93S10"):
        tid.prepare_data()
    with pytest.raises(ValueError, match="unknown scenario"):
        PairedDataModule("mnist_klingon")


def test_download_only_when_asked(mnist_gsc, monkeypatch):
    calls = []
    monkeypatch.setattr(
        "assoc_lightning.data.datasets.registry.download", lambda name, root: calls.append(name)
    )
    small = {"image_options": {"val_size": 20}}  # the fixture has 100 training images
    PairedDataModule("mnist_speech_commands", data_dir=str(mnist_gsc), **small).prepare_data()
    assert calls == []
    PairedDataModule(
        "mnist_speech_commands", data_dir=str(mnist_gsc), download=True, **small
    ).prepare_data()
    assert calls == ["mnist", "speech_commands"]


def test_gtsrb_speech_commands_traffic_commands(tmp_path):
    from tests.fixtures.gtsrb import make_gtsrb

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


def test_mnist_tidigits_pairing(tmp_path):
    make_mnist(tmp_path, n_train=60, n_test=20)
    every_digit = tuple(f"{d}a" for d in "zo123456789")
    make_tidigits(tmp_path / "TIDIGITS", speakers_per_group=1, coding="pcm", utterances=every_digit)
    dm = PairedDataModule("mnist_tidigits", data_dir=str(tmp_path), batch_size=4,
                          image_options={"val_size": 10})  # fmt: skip
    dm.setup("fit")
    pairs = dm.paired["test"]
    assert set(pairs.anchor.labels.tolist()) == set(range(10))
    for i in range(len(pairs)):
        item = pairs[i]
        assert dm.unpaired["test"]["audio"].labels[item["audio_index"]] == item["label"]
    assert (tmp_path / "cache" / "tidigits").is_dir()


def test_multi_paired_cascade_datamodule(tmp_path):
    make_mnist(tmp_path, "MNIST", n_train=40, n_test=20)
    make_mnist(tmp_path, "FashionMNIST", n_train=40, n_test=20)
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    make_gsc(tmp_path, words + ("go", "stop", "left", "right"), samples=4000)
    dm = MultiPairedDataModule(
        "speech_commands_fashion_mnist_mnist", data_dir=str(tmp_path), batch_size=4,
        options={"mnist": {"val_size": 10}, "fashion_mnist": {"val_size": 10}},
    )  # fmt: skip
    dm.prepare_data()
    dm.setup()
    assert dm.modalities == ("speech_commands", "fashion_mnist", "mnist") and dm.num_classes == 14
    gsc = dm.unpaired["train"]["speech_commands"]
    assert sorted(set(gsc.labels.tolist())) == list(range(14))  # commands kept, unpaired
    item = dm.paired["test"][0]
    assert {"speech_commands", "fashion_mnist", "mnist", "label", "pair_id"} <= set(item)
    assert item["mnist"].shape == (1, 28, 28) and item["speech_commands"].shape == (16000,)
    pairs = dm.paired["test"]
    anchors = dm.unpaired["test"]["speech_commands"].labels
    assert len(pairs) == int((anchors < 10).sum()) == 10  # one test speaker, ten digit words
    for i in range(len(pairs)):
        lab = pairs[i]["label"]
        assert dm.unpaired["test"]["mnist"].labels[pairs[i]["mnist_index"]] == lab < 10
    image_only = MultiPairedDataModule("fashion_mnist_mnist", data_dir=str(tmp_path))
    assert image_only.modalities == ("fashion_mnist", "mnist") and image_only.num_classes == 10
