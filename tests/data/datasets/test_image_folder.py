"""ImageNet-style image folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from assoc_lightning.data.datasets.image_folder import ImageFolderImages
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from tests.fixtures.images import BLUE, RED, make_tree, solid


def test_image_folder_classes_files_and_decoding(tmp_path):
    make_tree(tmp_path)
    ds = ImageFolderImages(tmp_path, image_size=24)
    assert ds.class_names == ("n01_cat", "n02_dog", "n03_empty")  # ids stable in partial copies
    names = [Path(f).name for f in ds.files]
    assert names == ["a.jpg", "b.png", "c.JPEG", "d.bad.jpg", "e.ppm"]
    assert ds.labels.tolist() == [0, 0, 1, 1, 1]
    item = ds[0]
    assert set(item) == {"image", "label", "index"}
    assert item["image"].shape == (3, 24, 24) and item["image"].dtype == torch.uint8
    assert item["image"].float().mean(dim=(1, 2)).tolist() == pytest.approx([254, 0, 0], abs=3)
    assert ds[1]["image"].float().mean(dim=(1, 2)).tolist() == pytest.approx([0, 255, 0], abs=2)
    grey = ds[4]["image"]  # greyscale ppm -> 3 equal channels
    assert torch.equal(grey[0], grey[1]) and grey.float().mean().item() == pytest.approx(128, abs=1)
    only_png = ImageFolderImages(tmp_path, image_size=8, extensions=("PNG",))
    assert [Path(f).name for f in only_png.files] == ["b.png"]


def test_corrupt_image_is_skipped_counted_and_warned(tmp_path):
    make_tree(tmp_path)
    ds = ImageFolderImages(tmp_path, image_size=8)
    with pytest.warns(UserWarning, match=r"skipping corrupt file .*d\.bad\.jpg"):
        item = ds[3]
    assert ds.num_corrupt == 1 and item["index"] == 3
    assert item["image"].float().mean().item() == pytest.approx(128, abs=1)  # the next one (ppm)
    strict = ImageFolderImages(tmp_path, image_size=8, skip_corrupt=False)
    with pytest.raises(DatasetCorruptError, match=r"(?s)d\.bad\.jpg.*readable image"):
        strict[3]


def test_flat_folder_and_not_found(tmp_path):
    flat = tmp_path / "val"
    solid(flat / "ILSVRC2012_val_00000002.JPEG", BLUE)
    solid(flat / "ILSVRC2012_val_00000001.JPEG", RED)
    ds = ImageFolderImages(flat, image_size=8)
    assert ds.class_names == ("val",) and ds.labels.tolist() == [0, 0]
    assert Path(ds.files[0]).name == "ILSVRC2012_val_00000001.JPEG"
    with pytest.raises(DatasetNotFoundError, match=r"(?s)missing: .*nope.*expected layout"):
        ImageFolderImages(tmp_path / "nope")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match=r"missing: any \['.jpeg', '.jpg'"):
        ImageFolderImages(tmp_path / "empty")
