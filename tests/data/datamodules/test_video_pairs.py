"""VideoPairsDataModule: video-level splits, the evaluation contract, loaders, the unlabelled
case, and the Flickr-SoundNet localization pairs (also as FlickrSoundNetDataModule(gt_map=True))."""

from __future__ import annotations

import warnings

import pytest

from assoc_lightning.data import DATAMODULES, FlickrSoundNetDataModule, VideoPairsDataModule
from assoc_lightning.data.errors import DatasetNotFoundError
from assoc_lightning.data.protocols import EvaluationData, require
from assoc_lightning.errors import ConfigError
from tests.fixtures.audioset import make_video_copy
from tests.fixtures.av import SOUNDNET_SR, make_senocak, make_soundnet
from tests.fixtures.senocak_xml import write_senocak_xml

SIZE = 16
FAST = {"image_size": SIZE, "sample_rate": SOUNDNET_SR}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """SoundNet-Flickr training videos and the Senocak annotated set (one pair with boxes)."""
    root = tmp_path_factory.mktemp("data")
    make_soundnet(root / "soundnet")
    make_senocak(root / "flickr_soundnet")
    write_senocak_xml(root / "flickr_soundnet" / "Dataset" / "Annotations" / "2002.xml",
                      [[(0, 0, 128, 256)], [(0, 0, 128, 128)]])  # fmt: skip
    return root


@pytest.fixture(scope="module")
def dm(data_dir):
    dm = VideoPairsDataModule(
        data_dir=str(data_dir), val_fraction=0.2, test_fraction=0.2, batch_size=4,
        localization=True, **FAST,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
    messages = " ".join(str(w.message) for w in caught)
    assert "have no audio file" in messages and "1 of 3 listed pairs" in messages  # Senocak's
    return dm


def test_registered_and_meets_the_evaluation_contract(dm):
    assert DATAMODULES["video_pairs"] is VideoPairsDataModule
    require(dm, EvaluationData, "test")
    assert dm.modalities == ("image", "audio") and dm.num_classes == 0 and dm.num_missing == 1


def test_splits_are_disjoint_by_video_train_has_every_frame(dm):
    train, val, test = (dm.pair_dataset(s) for s in ("train", "val", "test"))
    ids = {
        s: set(ds.pair_ids.tolist()) for s, ds in (("train", train), ("val", val), ("test", test))
    }
    assert len(ids["val"]) == len(ids["test"]) == 1 and len(ids["train"]) == 4
    assert not (ids["train"] & ids["val"] or ids["train"] & ids["test"] or ids["val"] & ids["test"])
    assert len(train) == sum(v.chunks for v in train.videos)  # every frame of every video
    assert len(val) == 1 and val.frames == "fixed" and val[0]["pair_id"] in ids["val"]
    # the evaluation sets: one fixed frame per video, the training videos' too
    bank = dm.eval_dataset("train", "image")
    assert len(bank) == 4 and set(bank[0]) == {"image", "label", "index"}
    assert dm.eval_dataset("test", "audio")[0]["audio"].shape == (5 * SOUNDNET_SR,)
    assert {dm.eval_dataset(s, "audio")[0]["label"] for s in ("train", "val", "test")} == {0}


@pytest.mark.filterwarnings("ignore:skipping corrupt file")  # the fixture's corrupt frame
def test_training_batches_carry_video_pair_ids(dm):
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == {"image", "audio", "label", "index", "pair_id"}
    assert batch["image"].shape == (4, 3, SIZE, SIZE) and batch["audio"].shape == (
        4,
        5 * SOUNDNET_SR,
    )
    train = dm.pair_dataset("train")
    for index, pair_id in zip(batch["index"].tolist(), batch["pair_id"].tolist(), strict=True):
        if index not in train.corrupt:  # (a corrupt row brings its replacement's pair_id)
            assert train.pair_ids[index] == pair_id


def test_localization_pairs_carry_the_senocak_boxes(dm):
    local = dm.localization_dataset("test")
    assert len(local) == 2 and local.ids == ["2002", "2001"]
    item = local[0]
    assert item["gt_map"].shape == (SIZE, SIZE) and item["gt_map"].max() == 1.0
    assert item["audio"].shape == (5 * SOUNDNET_SR,)
    assert dm.localization_dataset("val") is dm.pair_dataset("val")
    plain = VideoPairsDataModule(data_dir=dm.data_dir, val_fraction=0.2, test_fraction=0.2, **FAST)
    with pytest.warns(UserWarning):
        plain.setup()
    assert plain.localization_dataset("test") is plain.pair_dataset("test")


def test_flickr_localization_datamodule(data_dir):
    dm = FlickrSoundNetDataModule(
        data_dir=str(data_dir), sample_rate=SOUNDNET_SR, gt_map=True, image_size=256
    )
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        dm.setup("test")
    item = dm.pair_dataset("test")[0]
    assert item["image"].shape == (3, 256, 256) and item["gt_map"].shape == (256, 256)
    with pytest.raises(ConfigError, match="only a test split"):
        dm.val_dataloader()


def test_audioset_source_uses_the_official_eval_split(tmp_path):
    pytest.importorskip("av")
    make_video_copy(tmp_path / "audioset")
    dm = VideoPairsDataModule(source="audioset", data_dir=str(tmp_path), val_fraction=0.25, **FAST)
    with pytest.warns(UserWarning, match="listed segments have no video"):
        dm.setup()
    assert dm.num_classes == 4 and len(dm.class_names) == 4
    assert [v.name for v in dm.pair_dataset("test").videos] == ["vidEVAL0000"]
    assert len(dm.pair_dataset("val")) == 1 and len(dm.pair_dataset("train")) == 3 * 2


def test_missing_data_and_bad_arguments(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="dataset not found: Flickr-SoundNet training"):
        VideoPairsDataModule(data_dir=str(tmp_path)).setup()
    with pytest.raises(DatasetNotFoundError, match=r"(?s)Kinetics-400 shards.*assoc extract"):
        VideoPairsDataModule(source="kinetics", data_dir=str(tmp_path)).setup()
    with pytest.raises(ConfigError, match="source must be one of"):
        VideoPairsDataModule(source="vggsound")
    with pytest.raises(ConfigError, match="val_fraction must be in"):
        VideoPairsDataModule(val_fraction=1.0)
    with pytest.raises(ConfigError, match="clip_seconds must be positive"):
        VideoPairsDataModule(clip_seconds=-5.0)
