"""Speech Commands: split lists, labels by word, padding, corrupt clips skipped and counted."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from assoc_lightning.data.datasets.speech_commands import SpeechCommandsClips, find_speech_commands
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from tests.fixtures.speech_commands import make_gsc


def test_splits_labels_and_padding(tmp_path):
    make_gsc(tmp_path)
    train = SpeechCommandsClips(tmp_path, "train", ["yes", "no"])
    val = SpeechCommandsClips(tmp_path, "val", ["yes", "no"])
    test = SpeechCommandsClips(tmp_path, "test", ["no"])
    assert train.files == ["no/aaaa1111_nohash_0.wav", "yes/aaaa1111_nohash_0.wav"]
    assert train.labels.tolist() == [1, 0]
    assert val.speakers == ["bbbb2222", "bbbb2222"]
    assert test.files == ["no/cccc3333_nohash_0.wav"] and test.labels.tolist() == [0]
    item = train[0]
    assert item["audio"].shape == (16000,)
    assert item["audio"][:8000].allclose(item["audio"].new_full((8000,), 0.25), atol=1e-4)
    assert (item["audio"][8000:] == 0).all()  # short clip zero-padded at the end
    assert item["label"] == 1 and item["index"] == 0


def test_missing_root_list_and_word(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="expected layout"):
        SpeechCommandsClips(tmp_path / "nope", "train", ["yes"])
    make_gsc(tmp_path)
    (tmp_path / "testing_list.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="testing_list.txt"):
        SpeechCommandsClips(tmp_path, "train", ["yes"])


def test_missing_word_folder(tmp_path):
    make_gsc(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="missing: .*maybe"):
        SpeechCommandsClips(tmp_path, "train", ["yes", "maybe"])


def test_corrupt_clips_raise_when_not_skipping(tmp_path):
    make_gsc(tmp_path)
    (tmp_path / "yes" / "aaaa1111_nohash_0.wav").write_bytes(b"RIFF\x00\x00garbage")
    ds = SpeechCommandsClips(tmp_path, "train", ["yes", "no"], skip_corrupt=False)
    with pytest.raises(DatasetCorruptError, match="aaaa1111_nohash_0.wav"):
        ds[1]
    sf.write(tmp_path / "no" / "aaaa1111_nohash_0.wav", np.zeros(800, np.float32), 8000)
    with pytest.raises(DatasetCorruptError, match="16000 Hz"):
        ds[0]


def test_corrupt_clip_is_skipped_counted_and_warned(tmp_path):
    make_gsc(tmp_path, speakers=("aaaa1111", "bbbb2222", "cccc3333", "dddd4444"))
    (tmp_path / "no" / "aaaa1111_nohash_0.wav").write_bytes(b"RIFF\x00\x00garbage")
    ds = SpeechCommandsClips(tmp_path, "train", ["yes", "no"])
    assert ds.files[0] == "no/aaaa1111_nohash_0.wav"
    with pytest.warns(UserWarning, match="skipping corrupt file .*aaaa1111_nohash_0.wav"):
        item = ds[0]
    assert item["audio"].shape == (16000,) and ds.num_corrupt == 1
    ds[0]  # known corrupt: skipped again without another read
    assert ds.num_corrupt == 1


def test_replacement_of_a_corrupt_clip_carries_its_own_label(tmp_path):
    make_gsc(tmp_path, speakers=("aaaa1111", "bbbb2222", "cccc3333", "dddd4444"))
    ds = SpeechCommandsClips(tmp_path, "train", ["yes", "no"])
    last_no = max(i for i, f in enumerate(ds.files) if f.startswith("no/"))
    assert ds.labels[last_no] != ds.labels[last_no + 1]  # the next row is a "yes"
    (tmp_path / ds.files[last_no]).write_bytes(b"RIFF\x00\x00garbage")
    with pytest.warns(UserWarning, match="skipping corrupt file"):
        item = ds[last_no]
    assert item["index"] == last_no and item["label"] == ds.labels[last_no + 1]


def test_find_speech_commands_layouts(tmp_path):
    nested = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    make_gsc(nested)
    assert find_speech_commands(tmp_path) == nested
    assert find_speech_commands(nested) == nested
    with pytest.raises(DatasetNotFoundError, match="speech_commands_v0.02.tar.gz"):
        find_speech_commands(tmp_path / "empty")
