"""AudioSet readers against tiny copies of the real formats (official CSVs, PANNs wav / hdf5)."""

from __future__ import annotations

import pickle
import sys
import warnings

import pytest
import torch
from torch.utils.data import DataLoader

from assoc_lightning.data.datasets.audioset import (
    AudioSetClips,
    Segment,
    read_class_index,
    read_segments_csv,
)
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import fit_length
from tests.fixtures.audioset import (
    BALANCED,
    CLASSES,
    HEADER,
    SR,
    make_hdf5_copy,
    make_wav_copy,
    write_class_index,
    write_pack,
    write_segments,
)


def test_read_segments_csv_official_format(tmp_path):
    path = tmp_path / "balanced_train_segments.csv"
    write_segments(path, BALANCED)
    rows = read_segments_csv(path)
    assert len(rows) == 5
    assert rows[0] == Segment("--4gqARaEJE", 30.0, 40.0, ("/m/068hy", "/m/0jbk"))
    assert rows[1].mids == ("/m/0ytgt",)
    with open(path, "a") as f:
        f.write('badline, 0.000, "/m/09x0r"\n')
    with pytest.raises(DatasetCorruptError, match=r"(?s)balanced_train_segments.csv.*line 9"):
        read_segments_csv(path)
    path.write_text(HEADER.format(n=1, p=1) + 'abc, zero, 10.000, "/m/09x0r"\n')
    with pytest.raises(DatasetCorruptError, match="line 4"):
        read_segments_csv(path)
    path.write_text(HEADER.format(n=1, p=1) + 'abc, 0.000, 10.000, "/m/09x0r\n')
    with pytest.raises(DatasetCorruptError, match="quotes"):
        read_segments_csv(path)
    with pytest.raises(DatasetNotFoundError, match="missing: .*eval_segments.csv"):
        read_segments_csv(tmp_path / "eval_segments.csv")


def test_read_class_index(tmp_path):
    path = tmp_path / "class_labels_indices.csv"
    write_class_index(path)
    mids, names = read_class_index(path)
    assert mids == [m for m, _ in CLASSES]
    assert names[1] == "Child speech, kid speaking" and names[3] == 'Animal "noises"'
    path.write_text("index,mid,display_name\n0,/m/a,A\n2,/m/b,B\n")
    with pytest.raises(DatasetCorruptError, match="line 3"):
        read_class_index(path)
    path.write_text("id,mid,name\n")
    with pytest.raises(DatasetCorruptError, match="index,mid,display_name"):
        read_class_index(path)


def test_wav_folders_missing_short_resampled_and_multilabel(tmp_path):
    make_wav_copy(tmp_path)
    with pytest.warns(UserWarning, match=r"1 of 5 listed clips are not on disk"):
        ds = AudioSetClips(tmp_path, "balanced_train", sample_rate=SR, clip_seconds=1.0)
    assert ds.storage == {"balanced_train": "wav"} and ds.num_missing == 1
    assert [y.decode() for y in ds.ytids] == [
        "--4gqARaEJE",
        "-0RWZT-miFs",
        "BADBADBAD00",
        "rate16k0000",
    ]
    assert ds.labels.tolist() == [2, 1, 0, 0]  # first positive = lowest class index
    assert ds.class_names[1] == "Child speech, kid speaking" and ds.num_classes == 4
    item = ds[0]
    assert set(item) == {"audio", "label", "labels", "index"}
    assert item["audio"].dtype == torch.float32 and item["audio"].shape == (SR,)
    assert torch.allclose(item["audio"], torch.full((SR,), 0.25), atol=1e-4)
    assert item["labels"].tolist() == [0.0, 0.0, 1.0, 1.0] and item["label"] == 2
    short = ds[1]["audio"]
    assert torch.allclose(short[: SR // 2], torch.full((SR // 2,), 0.5), atol=1e-4)
    assert (short[SR // 2 :] == 0).all()  # zero-padded at the end
    resampled = ds[3]["audio"]  # 1.5 s at 16 kHz -> cropped to 1 s at 8 kHz
    assert resampled.shape == (SR,)
    assert torch.allclose(resampled[100:-100], torch.full((SR - 200,), -0.5), atol=1e-2)
    assert ds[3]["labels"].tolist() == [1.0, 0.0, 0.0, 1.0]


def test_corrupt_wav_is_skipped_counted_and_warned(tmp_path):
    make_wav_copy(tmp_path)
    with pytest.warns(UserWarning, match="not on disk"):
        ds = AudioSetClips(tmp_path, "balanced_train", sample_rate=SR, clip_seconds=1.0)
    with pytest.warns(UserWarning, match=r"skipping corrupt file .*YBADBADBAD00.wav"):
        item = ds[2]
    assert ds.num_corrupt == 1
    # replaced by the next readable clip; its labels travel with it, the index stays
    assert item["index"] == 2 and item["labels"].tolist() == [1.0, 0.0, 0.0, 1.0]
    assert torch.allclose(item["audio"][100:-100], torch.full((SR - 200,), -0.5), atol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[2]  # known corrupt: skipped without a second warning
    with pytest.warns(UserWarning, match="not on disk"):
        strict = AudioSetClips(
            tmp_path, "balanced_train", sample_rate=SR, clip_seconds=1.0, skip_corrupt=False
        )
    with pytest.raises(DatasetCorruptError, match="YBADBADBAD00.wav"):
        strict[2]


def test_wav_unbalanced_parts_eval_and_train_union(tmp_path):
    make_wav_copy(tmp_path)
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        unbal = AudioSetClips(tmp_path, "unbalanced_train", sample_rate=SR, clip_seconds=1.0)
    assert [y.decode() for y in unbal.ytids] == ["unbal000001", "unbal000003"]
    assert unbal.path_of(1).parent.name == "unbalanced_train_segments_part01"
    assert torch.allclose(unbal[1]["audio"], torch.full((SR,), 0.3), atol=1e-4)
    ev = AudioSetClips(tmp_path, "eval", sample_rate=SR, clip_seconds=2.0)
    assert len(ev) == 1 and ev.num_missing == 0 and ev[0]["audio"].shape == (2 * SR,)
    with pytest.warns(UserWarning, match="2 of 8 listed"):
        train = AudioSetClips(tmp_path, "train", sample_rate=SR, clip_seconds=1.0)
    assert len(train) == 4 + 2 and train.labels.tolist()[-2:] == [0, 3]


def test_hdf5_packs_read_lazily(tmp_path):
    make_hdf5_copy(tmp_path)
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        ds = AudioSetClips(tmp_path, "balanced_train", sample_rate=SR, clip_seconds=1.5)
    assert ds.storage == {"balanced_train": "hdf5"} and ds.num_missing == 1
    assert [y.decode() for y in ds.ytids] == ["aaaaaaaaaaa", "bbbbbbbbbbb"]
    assert ds.labels.tolist() == [2, 1] and ds._handles == {}  # nothing left open by __init__
    item = ds[1]
    assert item["audio"].shape == (int(1.5 * SR),)
    assert torch.allclose(item["audio"][:SR], torch.full((SR,), -0.5), atol=1e-4)
    assert (item["audio"][SR:] == 0).all()
    assert item["labels"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert len(ds._handles) == 1
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned worker receives
    assert clone._handles == {} and torch.equal(clone[0]["audio"], ds[0]["audio"])
    batch = next(iter(DataLoader(ds, batch_size=2, num_workers=1)))
    assert batch["labels"].shape == (2, 4) and batch["label"].tolist() == [2, 1]
    assert torch.allclose(batch["audio"][0, :SR], torch.full((SR,), 0.25), atol=1e-4)


def test_hdf5_resampling_unbalanced_parts_and_train(tmp_path):
    make_hdf5_copy(tmp_path)
    ev = AudioSetClips(tmp_path, "eval", sample_rate=2 * SR, clip_seconds=1.0)
    audio = ev[0]["audio"]  # 1 s at 8 kHz resampled to 16 kHz
    assert audio.shape == (2 * SR,)
    assert torch.allclose(audio[200:-200], torch.full((2 * SR - 400,), 0.75), atol=1e-2)
    with pytest.warns(UserWarning, match="2 of 6 listed"):
        train = AudioSetClips(tmp_path, "train", sample_rate=SR, clip_seconds=1.0)
    assert [y.decode() for y in train.ytids] == [
        "aaaaaaaaaaa",
        "bbbbbbbbbbb",
        "ddddddddddd",
        "eeeeeeeeeee",
    ]
    assert train.labels.tolist() == [2, 1, 3, 0]
    assert torch.allclose(train[3]["audio"], torch.full((SR,), 0.2), atol=1e-4)


def test_auto_prefers_hdf5_and_mixes_storages(tmp_path):
    make_wav_copy(tmp_path)
    write_pack(
        tmp_path / "hdf5s" / "waveforms" / "balanced_train.h5", ["Yzzzzzzzzzzz.wav"], [0.5], [[0]]
    )
    bal = AudioSetClips(tmp_path, "balanced_train", sample_rate=SR, clip_seconds=1.0)
    assert bal.storage == {"balanced_train": "hdf5"} and len(bal) == 1
    with pytest.warns(UserWarning, match="not on disk"):
        wav = AudioSetClips(
            tmp_path, "balanced_train", sample_rate=SR, clip_seconds=1.0, storage="wav"
        )
    assert len(wav) == 4
    with pytest.warns(UserWarning, match="1 of 4 listed"):
        train = AudioSetClips(tmp_path, "train", sample_rate=SR, clip_seconds=1.0)
    assert train.storage == {"balanced_train": "hdf5", "unbalanced_train": "wav"}
    assert len(train) == 3 and train[0]["audio"][0].item() == pytest.approx(0.5, abs=1e-4)


def test_data_dir_form_and_not_found_errors(tmp_path):
    make_wav_copy(tmp_path / "audioset")
    with pytest.warns(UserWarning, match="not on disk"):
        assert len(AudioSetClips(tmp_path, sample_rate=SR, clip_seconds=1.0)) == 4
    with pytest.raises(DatasetNotFoundError, match=r"(?s)expected layout.*Y<YTID>.wav"):
        AudioSetClips(tmp_path / "nothing")
    empty = tmp_path / "empty"
    write_class_index(empty / "metadata" / "class_labels_indices.csv")
    write_segments(empty / "metadata" / "eval_segments.csv", [("evalclip001", ["/m/0jbk"])])
    with pytest.raises(
        DatasetNotFoundError, match=r"any clip of split 'eval' \(1 listed, none on disk"
    ):
        AudioSetClips(empty, "eval")
    with pytest.raises(DatasetNotFoundError, match="hdf5s"):
        AudioSetClips(empty, "eval", storage="hdf5")
    (empty / "metadata" / "class_labels_indices.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match="missing: .*class_labels_indices.csv"):
        AudioSetClips(empty, "eval")
    with pytest.raises(ValueError, match="split must be one of"):
        AudioSetClips(tmp_path, "validation")


def test_unknown_mid_and_class_count_mismatch(tmp_path):
    make_wav_copy(tmp_path)
    write_segments(tmp_path / "metadata" / "eval_segments.csv", [("evalclip001", ["/m/nope"])])
    with pytest.raises(DatasetCorruptError, match=r"(?s)eval_segments.csv.*/m/nope"):
        AudioSetClips(tmp_path, "eval", sample_rate=SR)
    hdf = tmp_path / "h"
    make_hdf5_copy(hdf)
    (hdf / "metadata" / "class_labels_indices.csv").write_text("index,mid,display_name\n0,/m/a,A\n")
    with pytest.raises(DatasetCorruptError, match="4 target columns"):
        AudioSetClips(hdf, "eval", sample_rate=SR)


def test_h5py_missing_gives_install_hint(tmp_path, monkeypatch):
    make_hdf5_copy(tmp_path)
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"assoc_lightning\[hdf5\]"):
        AudioSetClips(tmp_path, "eval", sample_rate=SR)


def test_fit_length_pad_tile_crop():
    wave = torch.arange(1.0, 4.0)
    assert fit_length(wave, 5).tolist() == [1, 2, 3, 0, 0]
    assert fit_length(wave, 7, "tile").tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert fit_length(wave, 2, "tile").tolist() == [1, 2]
