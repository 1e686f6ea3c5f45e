"""GTSRB from its official layout: labels, ROI crops, track-held-out validation, the traffic-sign subset, clear errors."""

from __future__ import annotations

import re

import numpy as np
import pytest

from assoc_lightning.data.datasets.gtsrb import (
    TRAFFIC_CLASSES,
    TRAFFIC_COMMANDS,
    TRAFFIC_DISTRACTORS,
    GTSRBImages,
    traffic_subset_count,
)
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from tests.fixtures.gtsrb import make_gtsrb


def test_labels_and_counts_per_split(tmp_path):
    test_ids = make_gtsrb(tmp_path)
    train = GTSRBImages(tmp_path, "train")
    val = GTSRBImages(tmp_path, "val")
    test = GTSRBImages(tmp_path, "test")
    # 3 classes x 3 tracks x 3 images; one track per class held out (round(0.3) -> at least 1)
    assert len(train) == 18 and len(val) == 9
    assert np.bincount(train.labels, minlength=36)[[1, 15, 35]].tolist() == [6, 6, 6]
    assert np.bincount(val.labels, minlength=36)[[1, 15, 35]].tolist() == [3, 3, 3]
    assert test.labels.tolist() == test_ids  # csv order, labels are the GTSRB ClassIds
    assert np.bincount(test.labels, minlength=36)[[1, 15, 35]].tolist() == [2, 3, 4]
    assert test.files[0].name == "00000.ppm" and test.tracks[0] is None
    item = train[0]
    assert set(item) == {"image", "label", "index"}
    assert item["label"] == 1 and item["index"] == 0
    assert train.files[0].parent.name == "00001"
    # root may also be the gtsrb folder itself
    assert GTSRBImages(tmp_path / "gtsrb", "test").labels.tolist() == test_ids


def test_track_split_is_disjoint_and_seeded(tmp_path):
    make_gtsrb(tmp_path)
    train = GTSRBImages(tmp_path, "train", seed=3)
    val = GTSRBImages(tmp_path, "val", seed=3)
    assert not set(train.tracks) & set(val.tracks)
    assert set(train.tracks) | set(val.tracks) == {
        f"{c:05d}/{t:05d}" for c in (1, 15, 35) for t in range(3)
    }
    assert len(set(val.tracks)) == 3  # one whole track per class
    assert GTSRBImages(tmp_path, "val", seed=3).files == val.files
    others = {tuple(GTSRBImages(tmp_path, "val", seed=s).tracks) for s in range(8)}
    assert len(others) > 1  # the seed changes the choice
    # a class's choice does not depend on the other classes
    only15 = GTSRBImages(tmp_path, "val", seed=3, classes=[15])
    assert set(only15.tracks) == {t for t in val.tracks if t.startswith("00015/")}
    big = GTSRBImages(tmp_path, "val", val_fraction=0.5)
    assert len(set(big.tracks)) == 6  # round(1.5) = 2 of 3 tracks per class
    assert len(GTSRBImages(tmp_path, "val", val_fraction=0.0)) == 0
    assert len(GTSRBImages(tmp_path, "train", val_fraction=0.0)) == 27


def test_roi_crop_shape_and_range(tmp_path):
    make_gtsrb(tmp_path)
    cropped = GTSRBImages(tmp_path, "train")
    full = GTSRBImages(tmp_path, "train", crop_roi=False)
    for i in (0, 5, len(cropped) - 1):
        x = cropped[i]["image"]
        assert x.shape == (3, 52, 52) and x.dtype.is_floating_point
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert x[0].max() < 0.02  # no red border left
        assert x[1, 10:30, 10:30].min() > 0.98  # green inside
        assert x[2, :, -1].min() > 0.98 and x[2, -1, :].min() > 0.98  # x2, y2 inclusive
        y = full[i]["image"]
        assert y.shape == (3, 52, 52)
        assert y[0, 0, 0] > 0.98 and y[0, 0, :].min() > 0.98  # red border kept
    assert GTSRBImages(tmp_path, "test", image_size=20)[1]["image"].shape == (3, 20, 20)


def test_classes_relabel_and_filter(tmp_path):
    make_gtsrb(tmp_path)
    for split in ("train", "val", "test"):
        ds = GTSRBImages(tmp_path, split, classes=[35, 15])
        assert set(ds.labels.tolist()) == {0, 1}
        assert set(ds.class_ids.tolist()) == {35, 15}
        assert ((ds.labels == 0) == (ds.class_ids == 35)).all()
    assert len(GTSRBImages(tmp_path, "test", classes=[35, 15])) == 7
    assert GTSRBImages(tmp_path, "train", classes=[35, 15]).labels[:6].tolist() == [0] * 6
    with pytest.raises(ValueError, match="distinct"):
        GTSRBImages(tmp_path, "train", classes=[15, 15])
    with pytest.raises(DatasetNotFoundError, match="00009"):
        GTSRBImages(tmp_path, "train", classes=[9])


def test_traffic_subset_count(tmp_path):
    assert TRAFFIC_COMMANDS == {"go": 35, "stop": 15, "left": 37, "right": 36}
    assert TRAFFIC_DISTRACTORS == (9, 1, 16, 17, 40)
    assert len(set(TRAFFIC_CLASSES)) == 9
    classes = (*TRAFFIC_CLASSES, 2)  # class 2 (50 km/h) is not in the subset
    per_test = {c: 1 + (c % 3) for c in classes}
    make_gtsrb(tmp_path, classes=classes, tracks=1, per_track=2, test_per_class=per_test)
    expected = 9 * 2 + sum(per_test[c] for c in TRAFFIC_CLASSES)
    assert traffic_subset_count(tmp_path) == expected
    assert traffic_subset_count(tmp_path / "gtsrb", class_ids=[2, 35]) == 4 + per_test[2] + 3


def test_missing_root_csv_and_image(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="expected layout") as err:
        GTSRBImages(tmp_path / "nope", "train")
    assert "benchmark.ini.rub.de" in str(err.value) and "nope" in str(err.value)
    make_gtsrb(tmp_path)
    csv = tmp_path / "gtsrb" / "GTSRB" / "Training" / "00015" / "GT-00015.csv"
    csv.rename(csv.with_suffix(".bak"))
    with pytest.raises(DatasetNotFoundError, match=re.escape(f"missing: {csv}")):
        GTSRBImages(tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match="GT-00015.csv"):
        traffic_subset_count(tmp_path, class_ids=[15])
    csv.with_suffix(".bak").rename(csv)
    image = csv.parent / "00001_00002.ppm"
    image.unlink()
    with pytest.raises(DatasetNotFoundError, match=re.escape(f"missing: {image}")):
        GTSRBImages(tmp_path, "val", classes=[15])
    test_csv = tmp_path / "gtsrb" / "GT-final_test.csv"
    test_csv.unlink()
    with pytest.raises(DatasetNotFoundError, match="GT-final_test.csv"):
        GTSRBImages(tmp_path, "test")


def test_corrupt_csv_and_truncated_ppm(tmp_path):
    make_gtsrb(tmp_path)
    csv = tmp_path / "gtsrb" / "GT-final_test.csv"
    good = csv.read_text()
    csv.write_text(good.replace("ClassId", "Label"))
    with pytest.raises(DatasetCorruptError, match="header") as err:
        GTSRBImages(tmp_path, "test")
    assert str(csv) in str(err.value)
    csv.write_text(good + "broken;row\n")
    with pytest.raises(DatasetCorruptError, match="broken;row"):
        GTSRBImages(tmp_path, "test")
    csv.write_text(good)
    ds = GTSRBImages(tmp_path, "test")
    path = ds.files[0]
    path.write_bytes(path.read_bytes()[:40])  # header + a few pixels
    with pytest.raises(DatasetCorruptError, match=re.escape(str(path))):
        ds[0]
    path.write_bytes(b"not an image")
    with pytest.raises(DatasetCorruptError, match="readable PPM"):
        ds[0]
    ds[1]  # the other images still load
