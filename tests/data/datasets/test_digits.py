"""The embedded digits: committed image split, speaker plan, generation cache."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from assoc_lightning.data.datamodules.digits import DigitsDataModule
from assoc_lightning.data.datasets import digits
from assoc_lightning.errors import ConfigError
from tests.conftest import TINY_SPEAKERS


def test_image_split_is_committed_disjoint_stratified_and_reproducible():
    split = digits.image_split()
    sets = {k: set(v) for k, v in split.items()}
    assert not (
        sets["train"] & sets["val"] or sets["train"] & sets["test"] or sets["val"] & sets["test"]
    )
    assert sum(map(len, sets.values())) == 1797
    _, labels = digits.digit_images()
    for part in ("val", "test"):
        counts = np.bincount(labels[split[part]], minlength=10)
        assert counts.min() >= 25 and counts.max() <= 29  # 15% of ~180 per class
    assert digits.stratified_split(labels, seed=0) == split


def test_images_look_like_mnist():
    images, labels = digits.digit_images()
    assert images.shape == (1797, 1, 28, 28) and images.dtype == torch.uint8
    assert images[:, :, :4].max() == 0 and images[:, :, :, -4:].max() == 0  # black border
    assert images.max() == 255 and sorted(set(labels.tolist())) == list(range(10))


def test_speaker_plan_is_deterministic_and_split_by_speaker():
    a, b = digits.plan_speakers(60, seed=3), digits.plan_speakers(60, seed=3)
    assert a == b
    assert digits.plan_speakers(60, seed=4) != a
    assert len({s["id"] for s in a}) == 60
    counts = {k: sum(s["split"] == k for s in a) for k in ("train", "val", "test")}
    assert counts == {"train": 42, "val": 9, "test": 9}


def test_cache_is_reused_and_damage_regenerates(tmp_path):
    root = tmp_path / "sd"
    digits.ensure_spoken_digits(root, 3, seed=0)
    wav = root / "one" / f"{digits.speaker_id(0, 0)}_nohash_0.wav"
    stamp = wav.stat().st_mtime_ns
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an intact cache must not warn
        digits.ensure_spoken_digits(root, 3, seed=0)
    assert wav.stat().st_mtime_ns == stamp
    wav.write_bytes(wav.read_bytes()[:100])  # truncate one clip
    with pytest.warns(UserWarning, match="checksum mismatch"):
        digits.ensure_spoken_digits(root, 3, seed=0)
    assert len(wav.read_bytes()) > 100
    (root / "manifest.json").write_text("{not json")
    with pytest.warns(UserWarning, match="not valid JSON"):
        digits.ensure_spoken_digits(root, 3, seed=0)


def test_two_processes_generating_at_once_leave_one_complete_cache(tmp_path):
    """A sweep's first two jobs on a fresh data dir: both succeed, one cache, every clip."""
    import subprocess
    import sys

    root = tmp_path / "sd"
    code = (
        "import sys; from assoc_lightning.data.datasets.digits import ensure_spoken_digits; "
        "ensure_spoken_digits(sys.argv[1], 4, 0)"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(root)], stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read().decode()[-2000:]
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["files"]) == 40 and digits._cache_problem(root, 4, 0) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sd", "sd.lock"]  # no temporaries


@pytest.mark.parametrize(
    "damage, problem",
    [
        ({"files": None}, "no file list"),
        ({"files": {}}, "lists 0 of 30 clips"),
        ({"seed": 5}, "manifest was made for"),
    ],
)
def test_damaged_manifests_are_regenerated_not_tracebacks(tmp_path, damage, problem):
    root = tmp_path / "sd"
    digits.ensure_spoken_digits(root, 3, seed=0)
    manifest = json.loads((root / "manifest.json").read_text())
    (root / "manifest.json").write_text(json.dumps({**manifest, **damage}))
    with pytest.warns(UserWarning, match=problem):
        digits.ensure_spoken_digits(root, 3, seed=0)
    assert digits._cache_problem(root, 3, seed=0) is None


def test_an_unwritable_data_dir_is_a_clear_error(tmp_path):
    from assoc_lightning.utils.files import CacheWriteError

    (tmp_path / "file").write_text("a file where the data dir's parent should be")
    with pytest.raises(CacheWriteError, match=r"(?s)cannot write the cache .*data_dir"):
        digits.ensure_spoken_digits(tmp_path / "file" / "sd", 3, seed=0)


def test_unseen_family_talkers_share_no_voice_family_with_training():
    plan = digits.plan_speakers(TINY_SPEAKERS, 0)
    family = digits.variant_family
    train = {family(s["variant"]) for s in plan if s["split"] == "train"}
    unseen = digits.plan_unseen_speakers(TINY_SPEAKERS, 0, 12)
    assert len(unseen) == 12 and all(s["split"] == "test" for s in unseen)
    assert not {family(s["variant"]) for s in unseen} & train
    assert len({s["id"] for s in unseen}) == 12
    assert not {s["id"] for s in unseen} & {s["id"] for s in plan}
    assert unseen == digits.plan_unseen_speakers(TINY_SPEAKERS, 0, 12)  # same on every machine
    assert family("klatt6") == family("klatt") == "klatt" and family("Mike") == family("mike2")


def test_datamodule_tests_on_unseen_families_beside_the_seen_split(digits_dir):
    seen = DigitsDataModule(data_dir=str(digits_dir), num_speakers=TINY_SPEAKERS)
    unseen = DigitsDataModule(
        data_dir=str(digits_dir), num_speakers=TINY_SPEAKERS, test_voices="unseen",
        unseen_speakers=3,
    )  # fmt: skip
    unseen.prepare_data()
    seen.setup("test")
    unseen.setup("test")
    a, b = seen.eval_dataset("test", "audio"), unseen.eval_dataset("test", "audio")
    assert len(b) == 30 and sorted(set(b.labels.tolist())) == list(range(10))
    assert not torch.equal(a[0]["audio"], b[0]["audio"])
    # validation keeps the speaker-disjoint talkers, and the images are the same
    assert torch.equal(seen.eval_dataset("val", "audio")[0]["audio"],
                       unseen.eval_dataset("val", "audio")[0]["audio"])  # fmt: skip
    assert torch.equal(seen.eval_dataset("test", "image")[0]["image"],
                       unseen.eval_dataset("test", "image")[0]["image"])  # fmt: skip
    with pytest.raises(ConfigError, match="test_voices"):
        DigitsDataModule(test_voices="new")
