"""DCASE 2013 scenes: the committed fold spec (seeded, 2 recordings per class per fold), the
real file format, subclip counts and offsets, clip ids, folds and val, missing / corrupt /
unlisted files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.dcase2013 import (
    DEFAULT_NAMES,
    SCENES,
    SPEC,
    DCASE2013Subclips,
    label_of,
    make_fold_spec,
    read_fold_spec,
    subclip_offsets,
    write_fold_spec,
)
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from tests.fixtures.dcase2013 import RATE, freq_of, make_dcase2013, scene_wave

# 0.5-s recordings cut into 0.1-s subclips at 11,025 Hz: the real 30-s / 5-s shape, scaled down
SHORT = {"subclip_seconds": 0.1, "sample_rate": 11025, "num_subclips": 6}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """All 100 recordings of the committed spec, 0.5 s each."""
    return make_dcase2013(tmp_path_factory.mktemp("dcase2013"))


def test_the_committed_fold_spec_is_seeded_and_stratified(tmp_path):
    folds = read_fold_spec()
    assert sorted(folds) == sorted(DEFAULT_NAMES) and len(folds) == 100
    for fold in range(1, 6):
        mine = [n for n, f in folds.items() if f == fold]
        assert sorted(label_of(n) for n in mine) == sorted(SCENES * 2)  # 2 per class
    spec = json.loads(SPEC.read_text())
    assert spec["folds"] == make_fold_spec(DEFAULT_NAMES, 5, spec["seed"])  # regenerable
    assert make_fold_spec(seed=1) != spec["folds"]
    other = write_fold_spec(tmp_path / "mine.json", [f"park{n}.wav" for n in range(10, 20)])
    assert set(read_fold_spec(other).values()) == {1, 2, 3, 4, 5}
    other.write_text('{"folds": {"1": ["library01.wav"]}}')
    with pytest.raises(DatasetCorruptError, match="library01"):
        read_fold_spec(other)


def test_subclip_offsets():
    even = subclip_offsets(30.0, 5.0, 60, None)  # the paper's 60 subclips of 5 s
    assert len(even) == 60 and even[0] == 0.0 and even[-1] == pytest.approx(25.0)
    assert np.diff(even) == pytest.approx(np.full(59, 25 / 59))
    assert subclip_offsets(30.0, 5.0, 60, 0.5) == [0.5 * k for k in range(51)]
    assert (
        subclip_offsets(5.0, 5.0, 60, None) == [0.0] and subclip_offsets(4.0, 5.0, 60, None) == []
    )


def test_items_labels_clip_ids_offsets_and_downmix(scenes):
    test = DCASE2013Subclips(scenes, "test", fold=3, **SHORT)
    folds = read_fold_spec()
    assert test.clip_names == sorted(n for n, f in folds.items() if f == 3)
    assert len(test) == 20 * 6 and test.num_skipped == 0
    assert test.clip_ids.tolist() == [c for c in range(20) for _ in range(6)]
    assert test.offsets[:6] == pytest.approx(np.linspace(0, 0.4, 6))
    left = DCASE2013Subclips(scenes, "test", fold=3, channel=0, **SHORT)
    t = np.arange(1102) / 11025
    for i in (0, 7, 119):
        item = test[i]
        assert set(item) == {"audio", "label", "index", "clip_id"}
        scene = label_of(test.clip_names[item["clip_id"]])
        assert item["label"] == SCENES.index(scene) and item["clip_id"] == i // 6
        assert item["audio"].shape == (1102,) and item["audio"].dtype == torch.float32
        sine = np.sin(2 * np.pi * freq_of(scene) * (t + test.offsets[i]))
        for ds, peak in ((test, 0.4), (left, 0.6)):  # channel mean (0.6 + 0.2) / 2, or left
            wave = ds[i]["audio"].numpy()
            assert np.abs(wave[40:-40] - peak * sine[40:-40]).max() < 0.02, (i, peak)
    hop = DCASE2013Subclips(scenes, "test", fold=3, hop_seconds=0.15, **SHORT)
    assert len(hop) == 20 * 3 and hop.offsets[:3] == pytest.approx([0.0, 0.15, 0.3])


def test_folds_are_disjoint_cover_everything_and_val_is_one_recording_per_class(scenes):
    tested = set()
    for fold in range(1, 6):
        parts = {
            s: set(DCASE2013Subclips(scenes, s, fold=fold, **SHORT).clip_names)
            for s in ("train", "val", "test")
        }
        assert not (parts["train"] & parts["val"]) | (parts["train"] & parts["test"])
        assert len(parts["train"] | parts["val"] | parts["test"]) == 100
        assert sorted(label_of(n) for n in parts["val"]) == sorted(SCENES)  # 10% of 8, >= 1
        tested |= parts["test"]
    assert len(tested) == 100
    val = DCASE2013Subclips(scenes, "val", fold=1, seed=3, **SHORT).clip_names
    assert val != DCASE2013Subclips(scenes, "val", fold=1, **SHORT).clip_names


def test_default_is_60_subclips_of_5s_at_16k_from_a_30s_44k_stereo_file(tmp_path):
    folds = read_fold_spec()
    make_dcase2013(
        tmp_path, ["bus01.wav"], seconds=30.0, folder="DCASE2013-acoustic-scenes-development"
    )
    info = sf.info(str(next(tmp_path.rglob("*.wav"))))
    assert (info.samplerate, info.channels, info.duration) == (RATE, 2, 30.0)
    with pytest.warns(UserWarning, match="skipped 19 missing"):  # the other 19 of its fold
        ds = registry.open_split(
            "dcase2013", tmp_path, "test", options={"fold": folds["bus01.wav"]}
        )
    assert len(ds) == 60 and ds.clip_names == ["bus01.wav"] and ds.num_skipped == 19
    assert ds[59]["audio"].shape == (80000,) and ds.offsets[59] == pytest.approx(25.0)
    assert ds.labels.tolist() == [0] * 60


def test_missing_unlisted_corrupt_and_short_recordings(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        DCASE2013Subclips(tmp_path, "test")
    assert "scenes_stereo" in str(err.value) and "expected layout" in str(err.value)
    base = make_dcase2013(tmp_path)
    test = sorted(n for n, f in read_fold_spec().items() if f == 1)
    (base / "scenes_stereo" / test[0]).write_bytes(b"RIFF not a wav at all")
    (base / "scenes_stereo" / test[1]).unlink()
    sf.write(base / "scenes_stereo" / test[2], scene_wave("bus", 0.05), RATE)  # < a subclip
    with pytest.warns(UserWarning, match="skipped 3 missing or unreadable"):
        ds = DCASE2013Subclips(tmp_path, "test", **SHORT)
    assert ds.num_skipped == 3 and len(ds.clip_names) == 17 and len(ds) == 17 * 6
    with pytest.raises(DatasetCorruptError, match=test[0]):
        DCASE2013Subclips(tmp_path, "test", skip_corrupt=False, **SHORT)
    sf.write(base / "scenes_stereo" / "bus11.wav", scene_wave("bus", 0.5), RATE)
    with pytest.raises(DatasetCorruptError, match=r"(?s)1 not listed.*bus11.*folds_file"):
        DCASE2013Subclips(tmp_path, "test", **SHORT)
    spec = write_fold_spec(tmp_path / "mine.json", DEFAULT_NAMES + ("bus11.wav",))
    with pytest.warns(UserWarning, match="skipped"):
        assert DCASE2013Subclips(tmp_path, "train", folds_file=str(spec), **SHORT)
