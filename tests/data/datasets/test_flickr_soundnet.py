"""Flickr-SoundNet pairs in the LVS and Senocak layouts."""

from __future__ import annotations

import pytest
import torch

from assoc_lightning.data.datasets.flickr_soundnet import FlickrSoundNetPairs
from assoc_lightning.data.errors import DatasetNotFoundError
from tests.fixtures.av import (
    OUT_SR,
    SIZE,
    make_lvs,
    make_senocak,
    mean_rgb,
)


def test_flickr_lvs_pairs_tiling_and_skips(tmp_path):
    make_lvs(tmp_path / "flickr_soundnet")
    with pytest.warns(UserWarning, match=r"Flickr-SoundNet \(lvs\): 1 of 4 listed"):
        ds = FlickrSoundNetPairs(tmp_path, image_size=SIZE, sample_rate=OUT_SR, clip_seconds=2.0)
    assert ds.layout == "lvs" and ds.ids == ["1001", "1002", "1004"] and ds.num_missing == 1
    assert ds.labels.tolist() == [0, 0, 0]
    item = ds[0]
    assert item["pair_id"] == item["index"] == 0 and item["label"] == 0
    assert mean_rgb(item["image"]) == pytest.approx([254, 0, 0], abs=3)
    audio = item["audio"]  # 0.5 s ramp looped to 2 s
    assert audio.shape == (2 * OUT_SR,)
    n = OUT_SR // 2
    assert torch.allclose(audio[:n], audio[n : 2 * n]) and torch.allclose(audio[:n], audio[3 * n :])
    assert audio[n // 2].item() == pytest.approx(0.25, abs=0.01)  # the ramp, resampled
    long = ds[1]["audio"]  # 3 s at 22.05 kHz -> cropped to 2 s at 8 kHz
    assert long.shape == (2 * OUT_SR,) and long[-1].item() == pytest.approx(0.8 * 2 / 3, abs=0.02)
    with pytest.warns(UserWarning, match=r"skipping corrupt file .*1004.wav"):
        assert ds.view("audio")[2]["audio"].shape == (2 * OUT_SR,)
    assert ds.num_corrupt == 1


def test_flickr_senocak_list_and_all(tmp_path):
    make_senocak(tmp_path)
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        listed = FlickrSoundNetPairs(
            tmp_path, layout="senocak", image_size=SIZE, sample_rate=OUT_SR
        )
    assert listed.layout == "senocak" and listed.ids == ["2002", "2001"]
    assert mean_rgb(listed[0]["image"]) == pytest.approx([0, 255, 0], abs=3)
    assert listed[0]["audio"].shape == (10 * OUT_SR,)  # default 10 s
    every = FlickrSoundNetPairs(tmp_path, subset="all", image_size=SIZE, sample_rate=OUT_SR)
    assert every.ids == ["2001", "2002", "2003"] and every.num_missing == 0
    with pytest.raises(
        DatasetNotFoundError, match=r"(?s)expected layout.*Localizing-Visual-Sounds"
    ):
        FlickrSoundNetPairs(tmp_path, layout="lvs")


def test_flickr_senocak_boxes_and_gt_map_items(tmp_path):
    from assoc_lightning.data.io.boxes import Box
    from tests.fixtures.senocak_xml import write_senocak_xml

    make_senocak(tmp_path)
    annotations = tmp_path / "Dataset" / "Annotations"
    write_senocak_xml(annotations / "2002.xml", [[(0, 0, 128, 256)], [(0, 0, 128, 128)]])
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        ds = FlickrSoundNetPairs(tmp_path, image_size=SIZE, sample_rate=OUT_SR, gt_map=True)
    assert ds.annotations == annotations and ds.ids == ["2002", "2001"]
    assert ds.boxes(0) == [[Box(0, 0, 128, 256, "object")], [Box(0, 0, 128, 128, "object")]]
    assert ds.boxes(1) == []  # 2001 has no XML
    g = ds[0]["gt_map"]  # 256 -> SIZE: left half 0.5, its top half 1
    assert g.shape == (SIZE, SIZE) and g[0, 0] == 1.0 and g[-1, 0] == 0.5 and g[0, -1] == 0.0
    assert torch.equal(ds[1]["gt_map"], torch.zeros(SIZE, SIZE))
    assert "gt_map" not in ds.view("image")[0]
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        plain = FlickrSoundNetPairs(tmp_path, image_size=SIZE, sample_rate=OUT_SR)
    assert "gt_map" not in plain[0] and plain.boxes(0) == ds.boxes(0)
    make_lvs(tmp_path / "lvs")
    with pytest.raises(DatasetNotFoundError, match="Annotations"), pytest.warns(UserWarning):
        FlickrSoundNetPairs(tmp_path / "lvs", gt_map=True)
