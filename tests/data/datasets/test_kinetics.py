"""Kinetics-400: both layouts, middle frame and audio, skipped clips, shard extraction (resumed
after a kill), the shard readers' split over ranks and workers, and ``assoc extract``."""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from assoc_lightning.cli import main
from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.extraction import SkipItem, SourceItem, build_shards
from assoc_lightning.data.datasets.kinetics import (
    KineticsIndex,
    decode_clip,
    extract_kinetics,
    read_annotations,
)
from assoc_lightning.data.datasets.shards import (
    ShardIndex,
    ShardItems,
    ShardStream,
    epoch_order,
    worker_part,
)
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.video import read_audio_segment
from assoc_lightning.errors import ConfigError
from tests.fixtures.av import COLOURS, rms
from tests.fixtures.kinetics import AMPLITUDES, CLASSES, SHIFTS, make_class_folders, make_cvdf

pytest.importorskip("av")
pytest.importorskip("webdataset")
SR, SIZE = 8000, 32
FAST = {"sample_rate": SR, "image_size": SIZE}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Both layouts side by side (``k400/`` and ``kinetics400/``)."""
    base = tmp_path_factory.mktemp("kinetics")
    make_class_folders(make_cvdf(base))
    return base


def middle_colour(shift: int) -> tuple[int, int, int]:
    return COLOURS[(2 + shift) % len(COLOURS)]  # the middle (2.5 s) lies in second 2


def assert_middle(image: torch.Tensor, wave: torch.Tensor, shift: int) -> None:
    """The frame of second 2; the window [1.5, 3.5): seconds 1, 2, 3 in its quarters."""
    assert image.shape == (3, SIZE, SIZE) and image.dtype == torch.uint8
    assert image.float().mean(dim=(1, 2)).tolist() == pytest.approx(middle_colour(shift), abs=14)
    assert wave.shape == (2 * SR,) and wave.dtype == torch.float32
    for (a, b), amp in zip(((0.1, 0.4), (0.6, 1.4), (1.6, 1.9)), AMPLITUDES[1:4], strict=True):
        assert rms(wave[int(a * SR) : int(b * SR)]) == pytest.approx(amp / np.sqrt(2), rel=0.1)


def extract(root, out, split="train", **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = extract_kinetics(root, out, split, **{"workers": 0, **FAST, **kw})
    return manifest, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- index, decode
def test_both_layouts_are_indexed_with_sorted_classes(root):
    cvdf = KineticsIndex(root, "train")
    assert (cvdf.layout, cvdf.base.name, cvdf.classes) == ("cvdf", "k400", CLASSES)
    assert [c.id for c in cvdf.clips] == [
        "aaaaaaaaaaa", "bb-bbbbbbbb", "ccccccccccc", "dd_dddddddd", "fffffffffff"
    ]  # fmt: skip
    assert "replacement_for_corrupted_k400" in cvdf.clips[1].path  # the fixed copy wins
    assert [m["id"] for m in cvdf.missing] == ["eeeeeeeeeee"]  # a csv row without a video
    assert [c.label for c in cvdf.clips] == [0, 1, 0, 2, 2]

    folders = KineticsIndex(root / "kinetics400", "train")
    assert (folders.layout, folders.classes) == ("folders", CLASSES)  # an empty class counts
    assert sorted((c.id, c.label) for c in folders.clips) == [
        ("silent", 2), ("x1", 0), ("yyyyyyyyyyy", 2)  # a CVDF name gives its YouTube id
    ]  # fmt: skip
    assert KineticsIndex(root, "train", layout="folders").layout == "folders"


def test_annotation_csvs_without_labels_or_with_bad_times(tmp_path):
    path = tmp_path / "test.csv"  # the first releases' test csv had no label column
    path.write_text("youtube_id,time_start,time_end,split\nabcdefghijk,3,13,test\n")
    assert read_annotations(path) == [("", "abcdefghijk", 3, 13)]
    path.write_text("label,youtube_id,time_start,time_end\nzumba,abcdefghijk,x,13\n")
    with pytest.raises(DatasetCorruptError, match="line 2"):
        read_annotations(path)
    path.write_text("label,id\nzumba,abcdefghijk\n")
    with pytest.raises(DatasetCorruptError, match="csv columns label,youtube_id"):
        read_annotations(path)


def test_middle_frame_and_audio_of_a_clip(root):
    clip = root / "k400" / "train" / "aaaaaaaaaaa_000000_000010.mp4"
    image, wave = decode_clip(clip, SIZE, SR, 2.0)
    assert_middle(image, wave, SHIFTS["aaaaaaaaaaa"])
    late = read_audio_segment(clip, SR, 4.5, 1.0)  # half past the end: zero-padded
    assert rms(late[: SR // 2 - 400]) == pytest.approx(AMPLITUDES[4] / np.sqrt(2), rel=0.1)
    assert late[SR // 2 + 400 :].abs().max() == 0


def test_nothing_found_says_what_to_do(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"(?s)annotations/.*not downloaded.*CVDF"):
        KineticsIndex(tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)shards.*assoc extract kinetics"):
        registry.open_split("kinetics_audio", tmp_path, "train")
    with pytest.raises(ConfigError, match="split must be one of"):
        KineticsIndex(tmp_path, "validation")


# -------------------------------------------------------------------------------- extraction
def test_extraction_skips_and_counts_with_one_warning_and_reads_back(root, tmp_path):
    out = tmp_path / "shards"
    manifest, caught = extract(root, out, workers=2, shard_size=2)  # 3 shards, 2 processes
    assert manifest["skipped"] == {"missing": 1, "no_audio": 1, "corrupt": 1}
    assert len(caught) == 1 and "skipped 3 of 6 clips" in caught[0], caught
    assert {s["id"] for s in manifest["skipped_items"]} == {
        "eeeeeeeeeee", "ccccccccccc", "dd_dddddddd"
    }  # fmt: skip
    assert manifest["num_samples"] == 3 and manifest["classes"] == CLASSES

    opts = {"shards_dir": str(out)}
    images = registry.open_split("kinetics_image", tmp_path, "train", None, opts)
    assert isinstance(images, ShardItems) and len(images) == 3  # map-style, by index
    sounds = registry.open_split(
        "kinetics_audio", tmp_path, "train", None, {**opts, "access": "stream", "shuffle": False}
    )
    assert isinstance(sounds, ShardStream) and len(sounds) == 3
    ids = ShardIndex(out / "train").arrays["id"]
    for sound in sounds:
        image = images[sound["index"]]
        assert image["label"] == sound["label"] == images.labels[sound["index"]]
        ytid = str(ids[sound["index"]])
        assert image["label"] == {"a": 0, "b": 1, "f": 2}[ytid[0]]
        assert_middle(image["image"], sound["audio"], SHIFTS[ytid])

    import webdataset as wds  # the shards are plain WebDataset tars

    urls = sorted(str(p) for p in (out / "train").glob("shard-*.tar"))
    keys = [s["__key__"] for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False)]
    assert len(keys) == 3 and all(
        set(s) >= {"jpg", "audio.npy"}
        for s in wds.WebDataset(urls, shardshuffle=False, empty_check=False)
    )


def test_class_folder_extraction_skips_a_silent_clip(root, tmp_path):
    manifest, caught = extract(root / "kinetics400", tmp_path, max_items=None)
    assert manifest["layout"] == "folders" and manifest["skipped"] == {"no_audio": 1}
    assert len(caught) == 1
    opts = {"shards_dir": str(tmp_path / "train")}  # the split's own folder works too
    images = registry.open_split("kinetics_image", tmp_path, "train", None, opts)
    items = [images[i] for i in range(len(images))]
    colours = {it["label"]: it["image"].float().mean(dim=(1, 2)).tolist() for it in items}
    assert colours[0] == pytest.approx(middle_colour(2), abs=14)  # abseiling/x1, shift 2
    assert colours[2] == pytest.approx(middle_colour(5), abs=14)  # zumba, shift 5


def test_a_killed_extraction_resumes_without_writing_anything_twice(root, tmp_path):
    out = tmp_path / "shards"
    extract(root, out, shard_size=2)
    split = out / "train"
    before = {p.name: p.read_bytes() for p in split.glob("shard-*")}
    stamps = {p.name: os.stat(p).st_mtime_ns for p in split.glob("shard-*")}
    # the kill: shard 1's tar was renamed but its record never written, shard 2 half-written
    (split / "shard-000001.json").unlink()
    (split / "shard-000002.tar").rename(split / ".shard-000002.tmp-999-dead.tar")
    (split / "shard-000002.json").unlink()
    (split / "manifest.json").unlink()
    messages = []
    manifest, _ = extract(root, out, shard_size=2, progress=messages.append)
    assert messages[0] == f"1 of 3 shards already done in {split}"
    assert sorted(m.split(":")[0] for m in messages[1:]) == ["shard-000001.tar", "shard-000002.tar"]
    assert os.stat(split / "shard-000000.tar").st_mtime_ns == stamps["shard-000000.tar"]
    assert os.stat(split / "shard-000000.json").st_mtime_ns == stamps["shard-000000.json"]
    assert not list(split.glob(".*tmp*"))  # the dead temporary is gone
    assert {p.name: p.read_bytes() for p in split.glob("shard-*")} == before  # same bytes
    assert manifest["num_samples"] == 3
    again = []
    extract(root, out, shard_size=2, progress=again.append)  # finished: nothing to do
    assert again == [f"3 of 3 shards already done in {split}"]
    with pytest.raises(ConfigError, match="other settings"):
        extract(root, out, shard_size=2, sample_rate=16000)


# ------------------------------------------------------------------ splitting over DDP ranks
def tiny_sample(item: SourceItem) -> dict[str, bytes]:
    if item.id == "bad":
        raise SkipItem("corrupt", "a test item")
    buf = io.BytesIO()
    np.save(buf, np.full(4, item.label, np.int16))
    return {"audio.npy": buf.getvalue()}


@pytest.fixture(scope="module")
def uneven_shards(tmp_path_factory):
    """23 samples in 6 shards of unequal size (shard 2 lost one item)."""
    items = [SourceItem("bad" if i == 9 else f"v{i}", i, "") for i in range(24)]
    folder = tmp_path_factory.mktemp("uneven")
    manifest = build_shards(
        folder, items, tiny_sample, {"t": 1}, {"classes": []}, shard_size=4, workers=0
    )
    assert manifest["num_samples"] == 23 and manifest["skipped"] == {"corrupt": 1}
    return ShardIndex(folder)


@pytest.mark.parametrize("remainder", ["pad", "drop"])
def test_two_ranks_two_workers_see_every_sample_once(uneven_shards, remainder):
    assert len(list(ShardStream(uneven_shards, "audio", "audio.npy"))) == 23  # files now open
    seen = []  # (forked workers then share this process's descriptors: reads must not mix)
    for rank in range(2):
        stream = ShardStream(
            uneven_shards,
            "audio",
            "audio.npy",
            seed=3,
            remainder=remainder,
            rank=rank,
            world_size=2,
        )
        stream.set_epoch(5)
        items = list(DataLoader(stream, batch_size=None, num_workers=2))
        assert len(items) == len(stream) == {"pad": 12, "drop": 11}[remainder]  # equal per rank
        for item in items:
            assert item["audio"][0] * 32767 == pytest.approx(item["label"])  # labels travel
        seen += [int(it["index"]) for it in items]
    if remainder == "pad":  # every sample, and one repeated to even the ranks
        assert sorted(set(seen)) == list(range(23)) and len(seen) == 24
    else:  # one left out (another one next epoch), none twice
        assert len(set(seen)) == len(seen) == 22


def test_epoch_orders_are_seeded_shared_by_ranks_and_change_per_epoch():
    counts = [4, 4, 3, 4, 4, 4]
    first = epoch_order(counts, seed=0, epoch=0, shuffle=True, window=5)
    assert sorted(first) == list(range(23))
    assert np.array_equal(first, epoch_order(counts, 0, 0, True, 5))  # same seed, same order
    assert not np.array_equal(first, epoch_order(counts, 0, 1, True, 5))
    assert not np.array_equal(first, epoch_order(counts, 1, 0, True, 5))
    parts = [worker_part(first, r, 2, w, 2) for r in range(2) for w in range(2)]
    assert [len(p) for p in parts] == [6, 6, 6, 6]
    merged = np.concatenate(parts)  # 24 = 23 + the first of the order, repeated
    assert sorted(merged.tolist()) == sorted([*first.tolist(), int(first[0])])


# ---------------------------------------------------------------------------------------- CLI
def test_assoc_extract_kinetics_through_the_cli(root, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["extract", "kinetics", "--root", str(root), "--out", str(out), "--split", "val"]
    main(
        [
            *args,
            "--workers",
            "0",
            "--max_items",
            "1",
            "--sample_rate",
            str(SR),
            "--image_size",
            str(SIZE),
        ]
    )
    assert (
        capsys.readouterr()
        .out.strip()
        .endswith(f"1 samples in 1 shards, 0 clips skipped: {out / 'val'}")
    )
    manifest = json.loads((out / "val" / "manifest.json").read_text())
    assert manifest["split"] == "val" and manifest["settings"]["sample_rate"] == SR
    item = registry.open_split("kinetics_image", tmp_path, "val", None, {"shards_dir": str(out)})[0]
    assert item["image"].float().mean(dim=(1, 2)).tolist() == pytest.approx(
        middle_colour(SHIFTS["ggggggggggg"]), abs=14
    )
    shutil.rmtree(out)
    with pytest.raises(SystemExit) as stop:
        main(["extract", "kinetics", "--root", str(tmp_path / "none"), "--out", str(out)])
    assert stop.value.code == 2 and "dataset not found: Kinetics-400" in capsys.readouterr().err
