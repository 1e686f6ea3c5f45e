"""The dataset registry: every name in one place, its modality, opener and downloader."""

from __future__ import annotations

import pytest

from assoc_lightning.data.datasets import registry
from tests.fixtures.idx import make_mnist


def test_every_dataset_is_named_once_with_its_modality():
    assert {n: i.modality for n, i in registry.DATASETS.items()} == {
        "mnist": "image",
        "fashion_mnist": "image",
        "gtsrb": "image",
        "speech_commands": "audio",
        "tidigits": "audio",
        "audioset": "audio",
        "dcase2018": "audio",
        "esc50": "audio",
        "dcase2013": "audio",
        "spoken_commands": "audio",
        "kinetics_audio": "audio",
        "kinetics_image": "image",
    }
    by_name = [n for n, i in registry.DATASETS.items() if i.classes_by_name]
    assert by_name == ["speech_commands", "spoken_commands"]
    assert registry.DATASETS["dcase2018"].download is None  # from Zenodo, by the user
    assert registry.DATASETS["tidigits"].download is None  # licensed: never fetched


def test_open_split_and_unknown_names(tmp_path):
    make_mnist(tmp_path, n_train=30, n_test=10)
    test = registry.open_split("mnist", tmp_path, "test")
    assert len(test) == 10 and test.modality == "image"
    train = registry.open_split("mnist", tmp_path, "train", options={"val_size": 5})
    assert len(train) == 25
    with pytest.raises(ValueError, match=r"unknown dataset 'mnsit'; known datasets: \["):
        registry.open_split("mnsit", tmp_path, "test")
    registry.download("tidigits", tmp_path / "nothing")  # a no-op: the reader says how
    assert not (tmp_path / "nothing").exists()
