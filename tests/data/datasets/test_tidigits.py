"""TIDIGITS: LDC layout discovery, isolated digits only, z/o -> 0, shorten and PCM SPHERE, decoded cache, speaker-disjoint validation, corrupt files."""

from __future__ import annotations

import pytest

from assoc_lightning.data.datasets.tidigits import TIDIGITSIsolated
from assoc_lightning.data.errors import DatasetNotFoundError
from tests.fixtures.tidigits import make_tidigits


@pytest.mark.parametrize("coding", ["shorten", "pcm"])
def test_isolated_digits_labels_and_decoding(tmp_path, coding):
    make_tidigits(tmp_path / "TIDIGITS", coding=coding)
    test = TIDIGITSIsolated(tmp_path / "TIDIGITS", "test", cache_dir=tmp_path / "cache")
    assert len(test) == 4 * 2 * 4  # 4 groups x 2 speakers x 4 isolated digits
    assert sorted(set(test.labels.tolist())) == [0, 1, 9]
    assert all(len(p.stem) == 2 for p in test.files)
    assert (test.labels[[p.stem[0] in "zo" for p in test.files]] == 0).all()
    wave = test[0]["audio"]
    assert wave.shape == (30000,) and wave[:4020].abs().max() > 0.01 and (wave[4020:] == 0).all()


def test_cache_is_used_and_validation_is_speaker_disjoint(tmp_path):
    make_tidigits(tmp_path / "TIDIGITS", speakers_per_group=5)
    root, cache = tmp_path / "TIDIGITS", tmp_path / "cache"
    train = TIDIGITSIsolated(root, "train", cache_dir=cache, val_fraction=0.25)
    val = TIDIGITSIsolated(root, "val", cache_dir=cache, val_fraction=0.25)
    spk = lambda ds: {f"{p.parent.parent.name}/{p.parent.name}" for p in ds.files}  # noqa: E731
    assert not spk(train) & spk(val) and len(spk(val)) == 5 and len(spk(train)) == 15
    first = train[0]["audio"]
    cached = list(cache.rglob("*.npz"))
    assert len(cached) == 1
    train.files[0].write_bytes(b"gone")  # the cached copy is read, not the source
    assert torch_equal(train[0]["audio"], first)


def torch_equal(a, b):
    return bool((a == b).all())


def test_resampling_and_corrupt_files(tmp_path):
    make_tidigits(tmp_path / "TIDIGITS", speakers_per_group=1)
    ds = TIDIGITSIsolated(tmp_path / "TIDIGITS", "test", sample_rate=16000, clip_seconds=1.0)
    assert ds[0]["audio"].shape == (16000,)
    ds.files[0].write_bytes(b"NIST_1A\n   1024\ngarbage")
    with pytest.warns(UserWarning, match=f"skipping corrupt file .*{ds.files[0].name}"):
        ds[0]
    assert ds.num_corrupt == 1


def test_missing_tidigits_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="catalog.ldc.upenn.edu/LDC93S10"):
        TIDIGITSIsolated(tmp_path, "train")


def test_a_damaged_decoded_cache_file_is_decoded_again(tmp_path):
    make_tidigits(tmp_path / "TIDIGITS", speakers_per_group=1)
    root, cache = tmp_path / "TIDIGITS", tmp_path / "cache"
    test = TIDIGITSIsolated(root, "test", cache_dir=cache)
    first = test[0]["audio"]
    (cached,) = cache.rglob("*.npz")
    cached.write_bytes(cached.read_bytes()[:40])  # a truncated cache file
    assert torch_equal(test[0]["audio"], first)
    assert len(cached.read_bytes()) > 40  # replaced by a complete one
    assert not [p for p in cache.rglob("*") if ".tmp-" in p.name]
