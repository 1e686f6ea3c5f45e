"""AVE and Flickr-SoundNet as retrieval datamodules."""

from __future__ import annotations

import pytest

from assoc_lightning.data.datamodules.retrieval import (
    AVERetrievalDataModule,
    FlickrSoundNetDataModule,
)
from assoc_lightning.data.errors import DatasetNotFoundError
from tests.fixtures.av import (
    COLOURS,
    OUT_SR,
    SIZE,
    make_senocak,
    mean_rgb,
)


def test_ave_datamodule_splits_views_and_loaders(ave_root):
    dm = AVERetrievalDataModule(
        data_dir=str(ave_root), batch_size=2, image_size=SIZE, sample_rate=OUT_SR, clip_seconds=2.0
    )
    with pytest.warns(UserWarning, match="have no file"):
        dm.setup("test")
    assert set(dm.paired) == set(dm.unpaired) == {"train", "val", "test"}
    assert dm.num_classes == 3 and dm.class_names[2] == "Church bell"
    assert dm.pair_dataset("val").ids == ["vidB"]
    audio_view = dm.eval_dataset("val", "audio")
    item = audio_view[0]
    assert set(item) == {"audio", "label", "index"} and item["label"] == 1
    assert item["audio"].shape == (2 * OUT_SR,)
    image_item = dm.eval_dataset("val", "image")[0]
    assert mean_rgb(image_item["image"]) == pytest.approx(COLOURS[2], abs=12)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["audio"].shape == (2, 2 * OUT_SR)
    assert sorted(batch["label"].tolist()) == [0, 2]  # vidC (Acoustic guitar), vidA (Church bell)
    assert batch["pair_id"].tolist() == batch["index"].tolist()
    dm_all = AVERetrievalDataModule(data_dir=str(ave_root / "AVE_Dataset"), test_split="all")
    with pytest.warns(UserWarning):
        dm_all.setup()
    assert len(dm_all.pair_dataset("test")) == 5
    with pytest.raises(DatasetNotFoundError, match=r"(?s)expected layout.*AVE-ECCV18"):
        AVERetrievalDataModule(data_dir=str(ave_root / "nope")).setup()
    with pytest.raises(ValueError, match="test_split"):
        AVERetrievalDataModule(test_split="val")


def test_flickr_datamodule_is_test_only(tmp_path):
    make_senocak(tmp_path / "flickr_soundnet")
    dm = FlickrSoundNetDataModule(
        data_dir=str(tmp_path), batch_size=4, image_size=SIZE, sample_rate=OUT_SR, clip_seconds=1.0
    )
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        dm.setup("test")
    assert set(dm.paired) == set(dm.unpaired) == {"test"}
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["audio"].shape == (2, OUT_SR)
    assert batch["index"].tolist() == batch["pair_id"].tolist() == [0, 1]
    image = dm.eval_dataset("test", "image")[1]
    assert image["index"] == 1 and mean_rgb(image["image"]) == pytest.approx([254, 0, 0], abs=3)
    with pytest.raises(ValueError, match="only a test split"):
        dm.train_dataloader()
    with pytest.raises(ValueError, match="only a test split"):
        dm.val_dataloader()
    with pytest.raises(DatasetNotFoundError, match="dataset not found: Flickr-SoundNet"):
        FlickrSoundNetDataModule(data_dir=str(tmp_path / "nope")).setup()
