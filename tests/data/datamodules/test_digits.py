"""DigitsDataModule: speaker-disjoint splits, class pairs, paired fraction, unpaired streams."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from assoc_lightning.data import DigitsDataModule
from assoc_lightning.data.datasets import digits
from assoc_lightning.errors import ConfigError
from tests.conftest import TINY_SPEAKERS


def test_generated_layout_splits_disjoint_by_speaker(digits_dir):
    dm = DigitsDataModule(data_dir=str(digits_dir), num_speakers=TINY_SPEAKERS)
    dm.setup("fit")
    speakers = {s: set(dm.unpaired[s]["audio"].speakers) for s in ("train", "val", "test")}
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])  # fmt: skip
    assert [len(dm.unpaired[s]["audio"]) for s in ("train", "val", "test")] == [140, 30, 30]
    manifest = json.loads((dm.audio_root / "manifest.json").read_text())
    assert len(manifest["files"]) == 200 and manifest["speakers"] == digits.plan_speakers(
        TINY_SPEAKERS, 0
    )
    clip = dm.unpaired["train"]["audio"][0]["audio"]
    assert clip.shape == (16000,) and 0.5 < clip.abs().max() <= 0.91  # peak-normalized speech


def test_pairs_share_class_training_redraws_eval_fixed(digits_dir):
    dm = DigitsDataModule(data_dir=str(digits_dir), num_speakers=TINY_SPEAKERS, seed=1)
    dm.setup("fit")
    train, val = dm.paired["train"], dm.paired["val"]
    audio_labels = dm.unpaired["train"]["audio"].labels
    drawn = set()
    for _ in range(20):
        item = train[5]
        assert audio_labels[item["audio_index"]] == item["label"]
        drawn.add(item["audio_index"])
    assert len(drawn) > 1  # re-drawn, not fixed
    assert {val[3]["audio_index"] for _ in range(5)} == {val[3]["audio_index"]}
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (64, 1, 28, 28) and batch["audio"].shape == (64, 16000)
    assert set(batch) >= {"image", "audio", "label", "index", "pair_id"}


# ---------------------------------------------------------------------------- data additions
def test_digits_paired_fraction_and_unpaired_streams(digits_dir):
    dm = DigitsDataModule(
        data_dir=str(digits_dir), num_speakers=TINY_SPEAKERS, paired_fraction=0.05,
        unpaired_train=True, batch_size=16,
    )  # fmt: skip
    dm.setup()
    anchors = dm.paired["train"].anchor
    assert np.bincount(anchors.labels).tolist() == [round(0.05 * n) for n in np.bincount(
        dm.unpaired["train"]["image"].labels
    )]  # fmt: skip
    assert len(dm.paired["val"]) == len(dm.unpaired["val"]["image"])  # eval pairs untouched
    batch = next(iter(dm.train_dataloader()))[0]
    assert set(batch) == {"paired", "unpaired_image", "unpaired_audio"}
    assert batch["unpaired_audio"]["audio"].shape == (16, 16000)
    assert batch["paired"]["image"].shape[0] == 16
    with pytest.raises(ValueError, match="paired_fraction"):
        DigitsDataModule(paired_fraction=0.0)


def test_digits_localization_pairs_share_the_test_pairing(digits_dir):
    dm = DigitsDataModule(data_dir=str(digits_dir), canvas_grid=2, num_speakers=TINY_SPEAKERS)
    dm.prepare_data()
    dm.setup()
    pairs, scenes = dm.pair_dataset("test"), dm.localization_dataset("test")
    assert len(scenes) == len(pairs)
    for i in (0, 7):
        p, s = pairs[i], scenes[i]
        assert torch.equal(p["audio"], s["audio"]) and p["label"] == s["label"]
        assert p["image"].shape == (1, 28, 28) and s["image"].shape == (1, 56, 56)
        r, c = divmod(s["target_cell"], 2)
        assert torch.equal(s["image"][:, 28 * r : 28 * r + 28, 28 * c : 28 * c + 28], p["image"])
    assert dm.eval_dataset("test", "image")[0]["image"].shape == (1, 28, 28)
    assert dm.paired["train"][0]["image"].shape == (1, 28, 28)
    plain = DigitsDataModule(data_dir=str(digits_dir), num_speakers=TINY_SPEAKERS)
    plain.setup()
    assert plain.localization_dataset("test") is plain.pair_dataset("test")
    with pytest.raises(ConfigError, match="no split 'dev'"):
        dm.localization_dataset("dev")
