"""ImageNet-style image folders and caption files in their released formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from assoc_lightning.data.datasets.image_folder import ImageFolderImages
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.captions import read_captions
from assoc_lightning.data.io.image import resize_center_crop

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def solid(path: Path, color, size=(40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def bands(width: int = 60, height: int = 20) -> Image.Image:
    """Three vertical bands red | green | blue."""
    arr = np.zeros((height, width, 3), np.uint8)
    arr[:, : width // 3] = RED
    arr[:, width // 3 : 2 * width // 3] = GREEN
    arr[:, 2 * width // 3 :] = BLUE
    return Image.fromarray(arr)


def make_tree(root: Path) -> None:
    """Two classes with jpg/JPEG/png/ppm files, a nested folder, a non-image, an empty class."""
    solid(root / "n01_cat" / "a.jpg", RED)
    solid(root / "n01_cat" / "nested" / "b.png", GREEN)
    solid(root / "n02_dog" / "c.JPEG", BLUE)
    (root / "n02_dog" / "d.bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.new("L", (30, 40), 128).save(root / "n02_dog" / "e.ppm")
    (root / "n02_dog" / "readme.txt").write_text("not an image")
    (root / "n03_empty").mkdir()
    (root / ".cache").mkdir()


def test_resize_center_crop_keeps_the_middle():
    out = resize_center_crop(bands(), 16)  # 60x20 -> 48x16 -> centre 16x16 = the green band
    assert out.dtype == torch.uint8 and out.shape == (3, 16, 16)
    assert out[:, :, 4:12].float().mean(dim=(1, 2)).tolist() == pytest.approx([0, 255, 0], abs=3)
    tall = resize_center_crop(bands().rotate(90, expand=True), 16)  # 20x60: shorter side 20
    assert tall.shape == (3, 16, 16)


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


# ------------------------------------------------------------------------------------ captions
def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def make_caption_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "txt": root / "extra.txt",
        "coco": root / "captions_train2017.json",
        "audiocaps": root / "train.csv",
        "clotho": root / "clotho_captions_development.csv",
        "msrvtt": root / "train_val_videodatainfo.json",
        "cc3m": root / "Train_GCC-training.tsv",
    }
    files["txt"].write_text("  A dog   barks.\n\n\tA cat meows \nA dog barks.\n")
    coco = {
        "info": {},
        "images": [{"id": 1}],
        "annotations": [
            {"image_id": 1, "id": 10, "caption": "A man riding a horse.\n"},
            {"image_id": 1, "id": 11, "caption": "A cat meows"},
        ],
    }
    files["coco"].write_text(json.dumps(coco))
    write_csv(
        files["audiocaps"],
        ["audiocap_id", "youtube_id", "start_time", "caption"],
        [
            ["91139", "r1nicOVtvkQ", "130", "A woman talks, then a dog barks"],
            ["58146", "UDGBjjwyaqE", "20", "   "],
        ],
    )
    write_csv(
        files["clotho"],
        ["file_name", *(f"caption_{i}" for i in range(1, 6))],
        [
            [
                "Distorted AM Radio noise.wav",
                "Static, then a voice",
                "b",
                "A man riding a horse.",
                "d",
                "e",
            ]
        ],
    )
    files["msrvtt"].write_text(
        json.dumps({"videos": [], "sentences": [{"caption": "a video", "video_id": "video0"}]})
    )
    files["cc3m"].write_text("a photo of a tree\thttp://example.com/1.jpg\n")
    return files


def test_each_format_normalized_in_order(tmp_path):
    f = make_caption_files(tmp_path)
    assert read_captions(f["txt"]) == ["A dog barks.", "A cat meows"]
    assert read_captions(f["coco"]) == ["A man riding a horse.", "A cat meows"]
    assert read_captions(f["audiocaps"]) == ["A woman talks, then a dog barks"]
    assert read_captions(str(f["clotho"])) == [
        "Static, then a voice",
        "b",
        "A man riding a horse.",
        "d",
        "e",
    ]
    assert read_captions(f["msrvtt"]) == ["a video"]
    assert read_captions(f["cc3m"]) == ["a photo of a tree"]


def test_duplicates_removed_across_files_keeping_first(tmp_path):
    f = make_caption_files(tmp_path)
    texts = read_captions([f["txt"], f["coco"], f["clotho"]])
    assert texts == [
        "A dog barks.",
        "A cat meows",
        "A man riding a horse.",
        "Static, then a voice",
        "b",
        "d",
        "e",
    ]
    kept = read_captions([f["txt"], f["coco"]], deduplicate=False)
    assert kept == [
        "A dog barks.",
        "A cat meows",
        "A dog barks.",
        "A man riding a horse.",
        "A cat meows",
    ]


def test_glob_patterns_sorted(tmp_path):
    f = make_caption_files(tmp_path)
    texts = read_captions(str(tmp_path / "*.csv"))  # clotho_... sorts before train.csv
    assert texts[0] == "Static, then a voice" and texts[-1] == "A woman talks, then a dog barks"
    texts = read_captions([str(tmp_path / "**" / "*.json"), f["txt"]])
    assert texts == ["A man riding a horse.", "A cat meows", "a video", "A dog barks."]


def test_caption_errors(tmp_path):
    make_caption_files(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)missing: .*nope.txt.*expected layout"):
        read_captions([tmp_path / "extra.txt", tmp_path / "nope.txt"])
    with pytest.raises(DatasetNotFoundError, match=r"any file matching .*\*\.jsonl"):
        read_captions(str(tmp_path / "*.jsonl"))
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetCorruptError, match=r"(?s)bad.json.*'annotations'.*images"):
        read_captions(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DatasetCorruptError, match="JSONDecodeError"):
        read_captions(tmp_path / "broken.json")
    write_csv(tmp_path / "meta.csv", ["filename", "fold"], [["a.wav", "1"]])
    with pytest.raises(DatasetCorruptError, match="caption_1..5"):
        read_captions(tmp_path / "meta.csv")
    (tmp_path / "short.csv").write_text("audiocap_id,youtube_id,start_time,caption\n1,abc\n")
    with pytest.raises(DatasetCorruptError, match="line 2"):
        read_captions(tmp_path / "short.csv")
    (tmp_path / "caps.xml").write_text("<x/>")
    with pytest.raises(DatasetCorruptError, match=r"\.txt, \.json, \.csv or \.tsv"):
        read_captions(tmp_path / "caps.xml")
