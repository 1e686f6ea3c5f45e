"""ESC-50: the real file format, labels, the 5 official folds (disjoint, covering, val by
source), ESC-10, resampling, missing and corrupt files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.esc50 import ESC50Clips
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from tests.fixtures.esc50 import RATE, freq_of, make_esc50

# 0.5-s clips read at 11,025 Hz: the format of the real 5-s ones, a tenth of the bytes
SHORT = {"seconds": 0.5, "sample_rate": 11025}


@pytest.fixture(scope="module")
def esc(tmp_path_factory):
    """4 classes x 5 folds x 2 sources x 2 takes = 80 clips of 0.5 s."""
    root = tmp_path_factory.mktemp("esc50")
    make_esc50(root, seconds=0.5)
    return root


def open_all(root, fold, **kw):
    return {s: ESC50Clips(root, s, fold=fold, **SHORT, **kw) for s in ("train", "val", "test")}


def test_items_labels_clip_ids_and_the_waveform(esc):
    test = ESC50Clips(esc, "test", fold=2, **SHORT)
    assert len(test) == 16 and test.num_skipped == 0  # 4 classes x 2 sources x 2 takes
    assert all(name.startswith("2-") for name in test.clip_names)
    assert test.clip_ids.tolist() == list(range(16))
    assert len(test.class_names) == 50 and test.class_names[:3] == ("dog", "rooster", "pig")
    t = np.arange(5512) / 11025
    for i in (0, 9, 15):
        item = test[i]
        assert set(item) == {"audio", "label", "index", "clip_id"} and item["clip_id"] == i
        target = int(test.clip_names[i][:-4].split("-")[3])
        assert item["label"] == target and item["index"] == i
        assert item["audio"].shape == (5512,) and item["audio"].dtype == torch.float32
        sine = 0.5 * np.sin(2 * np.pi * freq_of(target) * t)  # resampled 44.1 -> 11.025 kHz
        assert np.abs(item["audio"].numpy()[50:-50] - sine[50:-50]).max() < 0.01


def test_folds_are_disjoint_cover_everything_and_val_keeps_sources_whole(esc):
    every = set()
    for fold in range(1, 6):
        parts = {s: set(ds.clip_names) for s, ds in open_all(esc, fold).items()}
        assert {n.split("-")[0] for n in parts["test"]} == {str(fold)}
        assert not (parts["train"] & parts["val"]) | (parts["train"] & parts["test"])
        assert len(parts["train"] | parts["val"] | parts["test"]) == 80
        sources = {s: {n.split("-")[1] for n in names} for s, names in parts.items()}
        assert not sources["train"] & sources["val"]  # both takes of a source go together
        # 10% of each class's 16 training clips: one source (2 clips) per class
        assert len(parts["val"]) == 8 and len(sources["val"]) == 4
        every |= parts["test"]
    assert len(every) == 80  # the five test folds partition the set
    again = ESC50Clips(esc, "val", fold=3, **SHORT).clip_names
    assert again == open_all(esc, 3)["val"].clip_names
    assert ESC50Clips(esc, "val", fold=3, seed=5, **SHORT).clip_names != again


def test_esc10_relabels_its_classes_by_target(esc):
    ds = ESC50Clips(esc, "train", fold=1, esc10=True, **SHORT)
    # of the fixture's targets 0, 1, 2, 10, pig (2) is not in ESC-10
    assert ds.class_names == ("dog", "rooster", "rain") and ds.targets == (0, 1, 10)
    assert set(ds.labels.tolist()) == {0, 1, 2}
    assert not any(name.endswith("-2.wav") for name in ds.clip_names)
    rain = [i for i, n in enumerate(ds.clip_names) if n.endswith("-10.wav")]
    assert rain and all(ds.labels[i] == 2 for i in rain)


def test_default_is_a_5s_clip_at_16k_of_a_44k_mono_file(tmp_path):
    make_esc50(tmp_path, targets=(41,), sources_per_fold=1, takes=1)
    info = sf.info(str(next(tmp_path.rglob("*.wav"))))
    assert (info.samplerate, info.channels, info.duration) == (RATE, 1, 5.0)
    ds = registry.open_split("esc50", tmp_path, "test", options={"fold": 4})
    assert len(ds) == 1 and ds[0]["audio"].shape == (80000,) and ds.labels.tolist() == [41]


def test_missing_dataset_bad_csv_and_bad_arguments(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        ESC50Clips(tmp_path, "test")
    msg = str(err.value)
    assert "esc50.csv" in msg and "karolpiczak/ESC-50" in msg and "expected layout" in msg
    base = make_esc50(tmp_path, targets=(0,), sources_per_fold=1, takes=1, seconds=0.5)
    with pytest.raises(ValueError, match="fold must be one of 1..5"):
        ESC50Clips(tmp_path, "test", fold=6)
    csv = base / "meta" / "esc50.csv"
    csv.write_text(csv.read_text().replace("3,0,dog", "2,0,dog"))  # fold column != file name
    with pytest.raises(DatasetCorruptError, match=r"esc50.csv:4"):
        ESC50Clips(tmp_path, "test", **SHORT)


def test_corrupt_missing_and_short_clips_are_skipped_and_counted(tmp_path):
    base = make_esc50(tmp_path, targets=(0, 1), seconds=0.5)
    test = sorted((base / "audio").glob("1-*.wav"))
    test[0].write_bytes(b"RIFF not a wav at all")
    test[1].unlink()
    sf.write(test[2], np.zeros(RATE // 10, np.float32), RATE)  # 0.1 s of a 0.5-s clip
    with pytest.warns(UserWarning, match="skipped 3 missing or unreadable"):
        ds = ESC50Clips(tmp_path, "test", **SHORT)
    assert ds.num_skipped == 3 and len(ds) == 8 - 3
    with pytest.raises(DatasetCorruptError, match=test[0].name):
        ESC50Clips(tmp_path, "test", skip_corrupt=False, **SHORT)
