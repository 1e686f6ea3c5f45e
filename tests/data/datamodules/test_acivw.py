"""ACIVWDataModule: the paired fraction, unpaired streams, one combined training loader."""

from __future__ import annotations

import inspect

import pytest
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader

from assoc_lightning.data import DATAMODULES, ACIVWDataModule
from assoc_lightning.data.datamodules.acivw import UnpairedSource
from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.base import TensorLabeledDataset
from assoc_lightning.errors import ConfigError
from tests.fixtures.acivw import list_lines, write_lists, write_recording
from tests.fixtures.idx import make_mnist

AUDIO = 24 * 1024


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Train: classes 0 and 1, one 4-s recording each (two samples each); val / test: one
    2-s recording each; split lists in ``lists/``; MNIST beside it for an image source."""
    root = tmp_path_factory.mktemp("acivw_dm")
    for c, n, seconds in ((0, 1, 4), (1, 1, 4), (0, 2, 2), (1, 2, 2)):
        write_recording(root / "ACIVW", c, n, frames=12 * seconds)
    write_lists(
        root / "lists",
        {
            "train": list_lines(0, 1, range(1, 5)) + list_lines(1, 1, range(1, 5)),
            "val": list_lines(0, 2, [1, 2]),
            "test": list_lines(1, 2, [1, 2], prefix="/dataset"),
        },
    )
    make_mnist(root, n_train=30, n_test=10)
    return root


@pytest.fixture
def stub_audio(monkeypatch):
    """A registry audio dataset of seven clips whose samples all equal their row."""

    def opener(root, split, classes, options):
        data = torch.arange(7, dtype=torch.float32)[:, None].expand(7, AUDIO)
        return TensorLabeledDataset("audio", data, [r % 3 for r in range(7)])

    info = registry.DatasetInfo("stub_audio", "audio", opener)
    monkeypatch.setitem(registry.DATASETS, "stub_audio", info)


def make(data_dir, **kwargs) -> ACIVWDataModule:
    kwargs = {"batch_size": 2, "image_size": 8, "lists_dir": str(data_dir / "lists"), **kwargs}
    dm = ACIVWDataModule(data_dir=str(data_dir), **kwargs)
    dm.setup("fit")
    return dm


def first_batch(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(loader, CombinedLoader) else batch


def test_registered_with_the_paper_defaults():
    assert DATAMODULES["acivw"] is ACIVWDataModule
    params = inspect.signature(ACIVWDataModule.__init__).parameters
    defaults = {k: params[k].default for k in ("batch_size", "sample_rate", "image_size", "frame")}
    assert defaults == {
        "batch_size": 256,
        "sample_rate": 12288,
        "image_size": 224,
        "frame": "middle",
    }
    assert params["paired_fraction"].default == 1.0 and not params["unpaired_from_acivw"].default
    assert ACIVWDataModule.num_classes == 10 and ACIVWDataModule.modalities == ("image", "audio")
    assert ACIVWDataModule.class_names[7] == "vacuum_cleaner"


def test_pairs_and_eval_sets_without_streams(data_dir):
    dm = make(data_dir)
    assert isinstance(dm.train_dataloader(), DataLoader) and not dm.streams
    assert len(dm.paired["train"]) == 4 and len(dm.pair_dataset("test")) == 1
    assert dm.eval_dataset("val", "image").labels.tolist() == [0]
    batch = first_batch(dm.val_dataloader())
    assert batch["audio"].shape == (1, AUDIO) and batch["image"].shape == (1, 3, 8, 8)
    assert batch["recording"].tolist() == [2] and batch["clip_id"].tolist() == [20001]


def test_paired_fraction_and_every_stream_in_one_loader(data_dir, stub_audio):
    dm = make(
        data_dir,
        paired_fraction=0.5,
        unpaired_from_acivw=True,
        unpaired_audio={"name": "stub_audio", "max_items": 3},
        frame="random",
    )
    pairs, everything = dm.paired["train"], dm.eval_dataset("train", "audio")
    assert len(everything) == 4 and sorted(pairs.labels.tolist()) == [0, 1]  # one per class
    rest = dm.streams["image"].pairs
    assert sorted(rest.labels.tolist()) == [0, 1]
    train_clips = {10001, 10003, 10010001, 10010003}  # 10_000 * recording + first second
    assert set(pairs.clip_ids) | set(rest.clip_ids) == set(everything.pairs.clip_ids) == train_clips
    assert not set(pairs.clip_ids) & set(rest.clip_ids)
    assert len(dm.streams["audio"]) == 2 + 3  # the leftover samples and three stub clips
    assert pairs.frame == "random" and dm.paired["train"].frame == "random"
    assert dm.paired["val"].frame == "middle" and everything.pairs.frame == "middle"
    loader = dm.train_dataloader()
    assert isinstance(loader, CombinedLoader) and loader._mode == "max_size_cycle"
    batch = first_batch(loader)
    assert set(batch) == {"paired", "unpaired_audio", "unpaired_image"}
    assert batch["paired"]["image"].shape == (2, 3, 8, 8)
    assert set(batch["paired"]) >= {"clip_id", "recording", "pair_id", "label"}
    assert batch["unpaired_audio"]["audio"].shape == (2, AUDIO)
    assert set(batch["unpaired_image"]) == {"image", "label", "index"}
    source = UnpairedSource("stub_audio", max_items=3)
    again, twice = (make(data_dir, paired_fraction=0.5, unpaired_audio=source) for _ in "ab")
    rows = [[int(d.streams["audio"][i]["audio"][0]) for i in range(3)] for d in (again, twice)]
    assert rows[0] == rows[1] and len(set(rows[0])) == 3  # a seeded subset of distinct clips
    assert len(again.streams["audio"]) == 3 and "image" not in again.streams


def test_a_registry_image_source_streams_alone(data_dir):
    dm = make(data_dir, unpaired_image=UnpairedSource("mnist", {"val_size": 10}))
    batch = first_batch(dm.train_dataloader())
    assert set(batch) == {"paired", "unpaired_image"}
    assert (
        batch["unpaired_image"]["image"].shape[-2:] == (28, 28) and len(dm.streams["image"]) == 20
    )


def test_bad_configs_are_config_errors(data_dir):
    with pytest.raises(ConfigError, match="unpaired_from_acivw needs paired_fraction < 1"):
        ACIVWDataModule(data_dir=str(data_dir), unpaired_from_acivw=True)
    with pytest.raises(ConfigError, match="'mnist' is not an audio dataset"):
        ACIVWDataModule(unpaired_audio=UnpairedSource("mnist"))
    with pytest.raises(ConfigError, match="unknown dataset 'kinetics_nope'"):
        ACIVWDataModule(unpaired_image={"name": "kinetics_nope"})
    with pytest.raises(ConfigError, match="frame must be one of"):
        ACIVWDataModule(frame="last")
    with pytest.raises(ConfigError, match="paired_fraction must be in"):
        ACIVWDataModule(paired_fraction=0.0)
