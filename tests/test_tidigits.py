"""TIDIGITS: LDC layout discovery, isolated digits only, z/o -> 0, shorten and PCM SPHERE,
decoded cache, speaker-disjoint validation, corrupt files, and MNIST pairing."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_lightning.data import PairedDataModule
from assoc_lightning.data.datasets.tidigits import TIDIGITSIsolated
from assoc_lightning.data.errors import DatasetNotFoundError
from tests.fixtures import make_mnist
from tests.shorten_writer import write_sphere

GROUPS = {"adults": ("man", "woman"), "children": ("boy", "girl")}


ISOLATED_AND_SEQUENCES = ("za", "oa", "1a", "9b", "12a", "o3zb")  # the last 2 must be skipped


def make_tidigits(root, speakers_per_group=2, coding="shorten", utterances=ISOLATED_AND_SEQUENCES):
    """LDC93S10/data/<age>/<split>/<group>/<SS>/<utt>.wav with isolated digits and sequences."""
    rng = np.random.default_rng(0)
    for age, groups in GROUPS.items():
        for split in ("train", "test"):
            for group in groups:
                for s in range(speakers_per_group):
                    folder = root / "LDC93S10" / "data" / age / split / group / f"{group[0]}{s}"
                    folder.mkdir(parents=True)
                    for utt in utterances:
                        n = 4000 + 10 * len(utt)
                        samples = (rng.normal(size=n) * 3000).astype(np.int16)
                        write_sphere(folder / f"{utt}.wav", samples, 20000, coding=coding)


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


def test_mnist_tidigits_pairing(tmp_path):
    make_mnist(tmp_path, n_train=60, n_test=20)
    every_digit = tuple(f"{d}a" for d in "zo123456789")
    make_tidigits(tmp_path / "TIDIGITS", speakers_per_group=1, coding="pcm", utterances=every_digit)
    dm = PairedDataModule("mnist_tidigits", data_dir=str(tmp_path), batch_size=4,
                          image_options={"val_size": 10})  # fmt: skip
    dm.setup("fit")
    pairs = dm.paired["test"]
    assert set(pairs.anchor.labels.tolist()) == set(range(10))
    for i in range(len(pairs)):
        item = pairs[i]
        assert dm.unpaired["test"]["audio"].labels[item["audio_index"]] == item["label"]
    assert (tmp_path / "cache" / "tidigits").is_dir()


def test_paper_config_runs_on_real_format_fixtures(tmp_path):
    """experiments/paper/ig_mnist_tidigits.yaml through the real CLI on MNIST IDX + shorten
    SPHERE fixtures (20 kHz audio, 1.5 s clips: the fbank front-end crops to 100 frames)."""
    from assoc_lightning.cli import main
    from tests.conftest import ROOT

    make_mnist(tmp_path, n_train=80, n_test=20)
    every_digit = tuple(f"{d}a" for d in "zo123456789")
    make_tidigits(tmp_path / "TIDIGITS", speakers_per_group=1, utterances=every_digit)
    main([
        "fit", "--config", str(ROOT / "experiments/paper/ig_mnist_tidigits.yaml"),
        "--data.init_args.data_dir", str(tmp_path),
        "--data.init_args.batch_size", "8",
        "--data.init_args.image_options", "{val_size: 20}",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
        "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    results = next((tmp_path / "runs").rglob("results.jsonl")).read_text()
    assert '"cluster_purity"' in results and '"knn_top1/audio"' in results
