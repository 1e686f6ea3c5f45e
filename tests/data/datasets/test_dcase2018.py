"""DCASE 2018 Task 1A: the real file format, segments and clip ids, downmix and resampling,
splits (location-disjoint val), missing and corrupt files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.dcase2018 import SCENES, DCASE2018Segments, location_of
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from tests.fixtures.dcase2018 import RATE, make_dcase2018, scene_wave

# 2-s clips cut into 0.4-s segments: five per clip, as the real 10-s clips in 2-s ones
SHORT = {"segment_seconds": 0.4, "sample_rate": 16000}


@pytest.mark.parametrize("header", [True, False])
def test_segments_labels_and_clip_ids(tmp_path, header):
    make_dcase2018(tmp_path, header=header)
    test = DCASE2018Segments(tmp_path, "test", **SHORT)
    # 3 scenes x 1 evaluate location x 2 clips, 5 segments each
    assert len(test) == 30 and len(test.clip_names) == 6 and test.num_skipped == 0
    assert test.clip_ids.tolist() == [c for c in range(6) for _ in range(5)]
    assert set(test.labels.tolist()) == {SCENES.index(s) for s in ("airport", "bus", "park")}
    for i in (0, 7, 29):
        item = test[i]
        assert set(item) == {"audio", "label", "index", "clip_id"}
        assert item["clip_id"] == i // 5 and item["index"] == i
        scene = test.clip_names[item["clip_id"]].split("/")[1].split("-")[0]
        assert item["label"] == SCENES.index(scene)
        assert item["audio"].shape == (6400,) and item["audio"].dtype == torch.float32
    # fold1_test (filenames only, labels from meta.csv) holds the same clips
    listed = DCASE2018Segments(tmp_path, "test", test_list="test", **SHORT)
    assert listed.clip_names == test.clip_names and (listed.labels == test.labels).all()


def test_downmix_channel_resample_and_segment_offsets(tmp_path):
    make_dcase2018(tmp_path, scenes=("tram",), train_locations=1, clips_per_location=1)
    mono = DCASE2018Segments(tmp_path, "test", **SHORT)
    left = DCASE2018Segments(tmp_path, "test", channel=0, **SHORT)
    t = np.arange(6400) / 16000
    for k in range(5):  # segment k: a 440 Hz sine at (k + 1) / 5 of each channel's peak
        sine = np.sin(2 * np.pi * 440 * (t + 0.4 * k)) * (k + 1) / 5
        for ds, peak in ((mono, 0.4), (left, 0.6)):  # channel mean (0.6 + 0.2) / 2, or left
            wave = ds[k]["audio"].numpy()
            assert np.abs(wave[100:-100] - peak * sine[100:-100]).max() < 0.01, (k, peak)


def test_default_is_five_2s_segments_at_22050_of_a_10s_48k_24bit_clip(tmp_path):
    make_dcase2018(tmp_path, scenes=("metro",), train_locations=1, clips_per_location=1,
                   seconds=10.0)  # fmt: skip
    info = sf.info(str(next((tmp_path).rglob("*.wav"))))
    assert (info.samplerate, info.channels, info.subtype) == (RATE, 2, "PCM_24")
    ds = registry.open_split("dcase2018", tmp_path, "test")
    assert len(ds) == 5 and ds[4]["audio"].shape == (44100,)
    assert ds.sample_rate == 22050 and ds.labels.tolist() == [SCENES.index("metro")] * 5


def test_val_is_a_seeded_location_disjoint_part_of_fold1_train(tmp_path):
    make_dcase2018(tmp_path, train_locations=5)
    args = {"val_fraction": 0.4, **SHORT}
    train = DCASE2018Segments(tmp_path, "train", **args)
    val = DCASE2018Segments(tmp_path, "val", **args)

    def places(ds):
        return {(SCENES[ds.labels[i]], location_of(ds.clip_names[c])) for i, c in
                enumerate(ds.clip_ids)}  # fmt: skip

    assert not places(train) & places(val)
    assert len(train.clip_names) + len(val.clip_names) == 3 * 5 * 2  # all of fold1_train
    assert len(places(val)) == 3 * 2  # 40% of each scene's 5 locations
    assert DCASE2018Segments(tmp_path, "val", **args).clip_names == val.clip_names
    other = DCASE2018Segments(tmp_path, "val", seed=1, **args)
    assert other.clip_names != val.clip_names


def test_missing_dataset_and_setup_file_say_the_layout_and_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        DCASE2018Segments(tmp_path, "train")
    msg = str(err.value)
    assert "expected layout" in msg and "fold1_train.txt" in msg and "zenodo" in msg.lower()
    base = make_dcase2018(tmp_path)
    (base / "evaluation_setup" / "fold1_evaluate.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="fold1_evaluate.txt"):
        DCASE2018Segments(tmp_path, "test")


def test_corrupt_and_missing_clips_are_skipped_and_counted(tmp_path):
    base = make_dcase2018(tmp_path)
    (base / "audio" / "bus-helsinki-3-0-a.wav").write_bytes(b"RIFF not a wav at all")
    (base / "audio" / "park-helsinki-3-1-a.wav").unlink()
    with pytest.warns(UserWarning, match="skipped 2 missing or unreadable"):
        ds = DCASE2018Segments(tmp_path, "test", **SHORT)
    assert ds.num_skipped == 2 and len(ds.clip_names) == 4 and len(ds) == 20
    with pytest.raises(DatasetCorruptError, match="bus-helsinki-3-0-a.wav"):
        DCASE2018Segments(tmp_path, "test", skip_corrupt=False, **SHORT)
    # a truncated file and one shorter than a segment give no segment: skipped too
    path = base / "audio" / "airport-helsinki-3-0-a.wav"
    path.write_bytes(path.read_bytes()[:200])
    sf.write(base / "audio" / "airport-helsinki-3-1-a.wav", scene_wave(0.1, 1), RATE)
    with pytest.warns(UserWarning, match="skipped 4"):
        short = DCASE2018Segments(tmp_path, "test", **SHORT)
    assert short.num_skipped == 4 and len(short) == 10


def test_an_unknown_scene_names_the_file_and_line(tmp_path):
    base = make_dcase2018(tmp_path)
    setup = base / "evaluation_setup" / "fold1_evaluate.txt"
    setup.write_text(setup.read_text() + "audio/x-helsinki-9-0-a.wav\tlibrary\n")
    with pytest.raises(DatasetCorruptError, match=r"(?s)fold1_evaluate.txt:8.*library"):
        DCASE2018Segments(tmp_path, "test")
