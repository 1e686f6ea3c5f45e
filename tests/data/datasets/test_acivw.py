"""ACIVW from its raw layout: the official lists, seconds -> frames, 2-s samples, checks."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch

from assoc_lightning.data.datasets.acivw import (
    SPLIT_LISTS,
    SPLITS_DIR,
    ACIVWSamples,
    clip_id,
    read_split_list,
    recording_id,
    sample_starts,
)
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from tests.fixtures.acivw import (
    dc_frame,
    frame_color,
    list_lines,
    write_lists,
    write_recording,
)


def test_shipped_lists_are_the_official_split():
    recordings, samples = {}, {}
    for split, name in SPLIT_LISTS.items():
        by_recording = defaultdict(set)
        for c, n, s in read_split_list(SPLITS_DIR / name):
            by_recording[recording_id(c, n)].add(s)
        recordings[split] = set(by_recording)
        samples[split] = sum(len(sample_starts(secs)) for secs in by_recording.values())
        assert (
            sum(map(len, by_recording.values()))
            == {"train": 13256, "val": 2424, "test": 2798}[split]
        )
    assert {k: len(v) for k, v in recordings.items()} == {"train": 122, "val": 46, "test": 98}
    assert samples == {"train": 6628, "val": 1212, "test": 1399}
    assert not recordings["train"] & recordings["val"]
    assert not recordings["train"] & recordings["test"]
    assert not recordings["val"] & recordings["test"]
    header = (SPLITS_DIR / "training.txt").read_text().splitlines()[0]
    assert header.startswith("#") and "IIT-PAVIS/acoustic-images-self-supervision" in header


def test_sample_starts_pairs_seconds_one_two_three_four():
    assert sample_starts({1, 2, 3, 4, 5}) == [1, 3]  # the odd last second is dropped
    assert sample_starts({1, 2, 4, 5, 6}) == [1, 5]  # 4 has no partner 3
    assert sample_starts(set()) == []


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """class_2/data_007: 5 s listed 1..5 (two samples, 5 dropped); class_4/data_011: 3 s on
    disk, listed 1..4 (one sample, 3 dropped, 4 past video_time); class_5/data_001 absent."""
    root = tmp_path_factory.mktemp("acivw")
    base = root / "ACIVW"
    write_recording(base, 2, 7, frames=5 * 12 + 5)  # a trailing partial second
    write_recording(base, 4, 11, frames=3 * 12)
    lists = write_lists(
        root / "lists",
        {
            "train": list_lines(2, 7, range(1, 6)) + list_lines(4, 11, range(1, 5))
            + list_lines(5, 1, range(1, 3)),
            "val": ["# a header", *list_lines(4, 11, [1, 2], prefix="/dataset")],
        },
    )  # fmt: skip
    return root, lists


def open_train(tree, **kwargs):
    root, lists = tree
    with pytest.warns(
        UserWarning, match=r"ACIVW train: 3 of 11 listed seconds .*\(1 of 3 recordings"
    ):
        return ACIVWSamples(root, "train", lists_dir=lists, image_size=4, **kwargs)


def test_seconds_map_to_frames_and_pairs(tree):
    ds = open_train(tree, normalize="none")
    assert len(ds) == 3 and ds.labels.tolist() == [2, 2, 4]
    assert ds.starts.tolist() == [1, 25, 1]  # second m starts at frame 12(m-1)+1
    assert ds.num_missing == 3 and ds.num_missing_recordings == 1 and ds.num_dropped == 2
    assert ds.ids[1] == "class_2/data_007/Data_003-004"
    item = ds[1]
    assert set(item) == {"image", "audio", "label", "index", "pair_id", "clip_id", "recording"}
    assert item["recording"] == recording_id(2, 7) == 2007
    assert item["clip_id"] == clip_id(2007, 3) and item["index"] == item["pair_id"] == 1
    expected = np.concatenate([dc_frame(f)[0] for f in range(25, 49)]).astype(np.float32)
    assert item["audio"].dtype == torch.float32 and item["audio"].shape == (24 * 1024,)
    np.testing.assert_array_equal(item["audio"].numpy(), expected)
    image = item["image"]
    assert image.dtype == torch.uint8 and image.shape == (3, 4, 4)
    assert image[:, 0, 0].tolist() == list(frame_color(2, 7, 37))  # middle: 13th of 25..48


def test_frame_choice_resampling_and_views(tree):
    first = open_train(tree, frame="first", target_rate=8000)
    item = first[2]
    assert item["image"][:, 0, 0].tolist() == list(frame_color(4, 11, 1))
    assert item["audio"].shape == (16000,) and item["audio"].abs().max().item() == pytest.approx(
        1.0
    )
    torch.manual_seed(0)
    random = first.select(frame="random")
    frames = {int(random[0]["image"][0, 0, 0]) for _ in range(12)}
    assert frames <= set(range(1, 25)) and len(frames) > 1
    view = first.view("audio")
    assert len(view) == 3 and view.labels.tolist() == [2, 2, 4]
    assert set(view[2]) == {"audio", "label", "index"} and view[2]["index"] == 2
    sub = first.select([2, 0])
    assert sub.labels.tolist() == [4, 2] and sub[0]["clip_id"] == clip_id(4011, 1)
    assert sub[0]["index"] == 0


def test_val_split_without_warnings(tree, recwarn):
    root, lists = tree
    ds = ACIVWSamples(root / "ACIVW", "val", lists_dir=lists)
    assert len(ds) == 1 and ds.num_missing == 0 and not recwarn.list


def test_count_mismatch_and_short_recordings_name_the_recording(tmp_path):
    lists = write_lists(tmp_path / "lists", {"train": list_lines(0, 3, [1, 2])})
    write_recording(tmp_path / "ACIVW", 0, 3, frames=24, bmp_frames=23, real_audio=False)
    with pytest.raises(DatasetCorruptError, match=r"(?s)class_0/data_003.*24 \.dc and 23 \.bmp"):
        ACIVWSamples(tmp_path, lists_dir=lists)
    other = tmp_path / "other"
    write_recording(other / "ACIVW", 0, 3, frames=24, seconds=3, real_audio=False)
    with pytest.raises(
        DatasetCorruptError, match=r"(?s)data_003.*frames 1\.\.36.*no audio/A_000025"
    ):
        ACIVWSamples(other, lists_dir=lists)
    bad = tmp_path / "bad"
    folder = write_recording(bad, 0, 3, frames=24, real_audio=False)
    (folder / "video_time.txt").write_text("24 frames")
    with pytest.raises(DatasetCorruptError, match=r"(?s)video_time\.txt.*video seconds: N"):
        ACIVWSamples(bad, lists_dir=lists)


def test_wrong_size_frame_is_corrupt_and_skipped(tmp_path):
    lists = write_lists(tmp_path / "lists", {"train": list_lines(0, 3, range(1, 5))})
    folder = write_recording(tmp_path / "ACIVW", 0, 3, frames=48)
    (folder / "audio" / "A_000002.dc").write_bytes(b"\0" * 12)
    ds = ACIVWSamples(tmp_path, lists_dir=lists, skip_corrupt=False)
    with pytest.raises(DatasetCorruptError, match=r"(?s)A_000002\.dc.*524288 bytes.*12 bytes"):
        ds[0]
    skipping = ACIVWSamples(tmp_path, lists_dir=lists, image_size=4)
    with pytest.warns(UserWarning, match="skipping corrupt file"):
        assert skipping[0]["clip_id"] == clip_id(3, 3) and skipping.num_corrupt == 1


def test_nothing_on_disk_says_how_to_get_it(tmp_path):
    lists = write_lists(tmp_path / "lists", {"test": list_lines(1, 2, [1, 2])})
    with pytest.raises(DatasetNotFoundError, match=r"(?s)ACIVW.*class_K/data_NNN.*e-mailing"):
        ACIVWSamples(tmp_path, "test", lists_dir=lists)
    write_recording(tmp_path / "ACIVW", 1, 5, frames=24, real_audio=False)
    with pytest.raises(
        DatasetNotFoundError,
        match=r"(?s)missing: any recording of the test list, e.g. class_1/data_002",
    ):
        ACIVWSamples(tmp_path, "test", lists_dir=lists)
