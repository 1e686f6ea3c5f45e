"""AVE pairs against tiny mp4 copies in the real layout."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch

from assoc_lightning.data.datasets.ave import AVEPairs, AVERow, read_ave_list
from assoc_lightning.data.errors import DatasetCorruptError
from tests.fixtures.av import (
    ANNOTATIONS,
    COLOURS,
    OUT_SR,
    SIZE,
    mean_rgb,
    rms,
)


def test_read_ave_list_header_and_errors(tmp_path):
    path = tmp_path / "Annotations.txt"
    path.write_text("\n".join(ANNOTATIONS))
    rows = read_ave_list(path)
    assert len(rows) == 6 and rows[0] == AVERow("Church bell", "vidA", "good", 1.0, 2.0)
    path.write_text("\n".join(ANNOTATIONS[1:]))  # no header (the repo's copy)
    assert read_ave_list(path) == rows
    path.write_text("\n".join([*ANNOTATIONS, "Bark&vidX&good&zero&1"]))
    with pytest.raises(DatasetCorruptError, match=r"(?s)Annotations.txt.*line 8"):
        read_ave_list(path)
    path.write_text("Bark&vidX&good&1\n")
    with pytest.raises(DatasetCorruptError, match="line 1"):
        read_ave_list(path)


def test_ave_pairs_frames_audio_labels_and_missing(ave_root):
    with pytest.warns(UserWarning, match=r"AVE all: 1 of 6 listed pairs have no file"):
        ds = AVEPairs(ave_root, "all", image_size=SIZE, sample_rate=OUT_SR, clip_seconds=6.0)
    assert ds.categories == ("Acoustic guitar", "Bark", "Church bell")
    assert ds.ids == ["vidA", "vidB", "vidC", "vidNoAudio", "vidBroken"] and ds.num_missing == 1
    assert ds.labels.tolist() == [2, 1, 0, 2, 0]
    assert [ds.frame_time(i) for i in range(3)] == [1.5, None, 3.5]
    expected = {0: 1, 1: 2, 2: 3}  # row -> colour index of the chosen frame
    for row, colour in expected.items():
        item = ds[row]
        assert set(item) == {"image", "audio", "label", "index", "pair_id"}
        assert item["index"] == item["pair_id"] == row and item["label"] == ds.labels[row]
        assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.uint8
        assert mean_rgb(item["image"]) == pytest.approx(COLOURS[colour], abs=12)
        audio = item["audio"]
        assert audio.shape == (6 * OUT_SR,) and audio.dtype == torch.float32
        seconds = 5 if row == 2 else 4
        assert (audio[int((seconds + 0.2) * OUT_SR) :] == 0).all()  # zero-padded to 6 s
    pcm = ds[1]["audio"]  # pcm_s16le track in a mov container: (0.5 + 0.1) / 2
    assert rms(pcm[OUT_SR : 3 * OUT_SR]) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def test_ave_missing_stream_and_truncated_video_are_skipped(ave_root):
    with pytest.warns(UserWarning, match="AVE test: 1 of 4 listed"):
        ds = AVEPairs(ave_root, "test", image_size=SIZE, sample_rate=OUT_SR, clip_seconds=1.0)
    assert ds.ids == ["vidC", "vidNoAudio", "vidBroken"]
    with pytest.warns(UserWarning) as caught:
        item = ds[1]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "vidNoAudio.mp4" in messages[0]
    assert "1 video and 0 audio streams" in messages[0]
    assert "vidBroken.mp4" in messages[1] and "InvalidDataError" in messages[1]
    # vidBroken is corrupt too, so the pair wraps round to row 0 (vidC), whole and labelled
    assert ds.num_corrupt == 2 and item["index"] == 1 and item["label"] == 0
    assert mean_rgb(item["image"]) == pytest.approx(COLOURS[3], abs=12)
    image_view = ds.view("image")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows already known corrupt: skipped silently
        assert image_view[2]["index"] == 2 and image_view.num_corrupt == 2
    with pytest.warns(UserWarning, match="have no file"):
        strict = AVEPairs(ave_root, "all", image_size=SIZE, sample_rate=OUT_SR, skip_corrupt=False)
    with pytest.raises(DatasetCorruptError, match=r"(?s)vidBroken.mp4.*decodable mp4"):
        strict.view("image")[4]


def test_missing_pyav_is_an_import_error_not_a_corrupt_file(ave_root, monkeypatch):
    ds = AVEPairs(ave_root, "val", image_size=SIZE, sample_rate=OUT_SR)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"assoc_lightning\[video\]"):
        ds[0]
    assert ds.num_corrupt == 0
