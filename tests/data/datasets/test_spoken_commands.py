"""The embedded transfer set: "yes".."go" by synthetic talkers, through the digits' machinery."""

from __future__ import annotations

import json

import pytest

from assoc_lightning.data.datasets import digits, registry


@pytest.fixture(scope="module")
def commands(digits_dir):
    """6 talkers (4 / 1 / 1) in the session's data dir, shared with the CLI transfer check."""
    return {
        s: registry.open_split("spoken_commands", digits_dir, s, options={"num_speakers": 6})
        for s in ("train", "val", "test")
    }


def test_ten_words_speaker_disjoint_splits(commands, digits_dir):
    assert {s: len(d) for s, d in commands.items()} == {"train": 40, "val": 10, "test": 10}
    for ds in commands.values():
        assert sorted(set(ds.labels.tolist())) == list(range(10))
        first = ds.files[ds.labels.tolist().index(digits.COMMAND_WORDS.index("stop"))]
        assert first.startswith("stop/")
        assert ds[0]["audio"].shape == (16000,)
    speakers = {s: set(d.speakers) for s, d in commands.items()}
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"])
    root = digits_dir / "spoken_commands_s1_n6"
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["words"] == list(digits.COMMAND_WORDS) and manifest["seed"] == 1
    # their own talkers' ids, never the digits' ones
    assert {s["id"] for s in manifest["speakers"]} == {
        digits.speaker_id(1, k, "commands") for k in range(6)
    }
    # a cache made for other words is not taken for this one
    assert "words" in digits._cache_problem(root, 6, 1, digits.WORDS)


def test_a_subset_of_words_is_labelled_by_its_position(commands, digits_dir):
    ds = registry.open_split(
        "spoken_commands", digits_dir, "val", ["stop", "go"], {"num_speakers": 6}
    )
    assert len(ds) == 2 and ds.labels.tolist() == [1, 0]  # files sorted: go/..., stop/...
    with pytest.raises(ValueError, match="among"):
        registry.open_split("spoken_commands", digits_dir, "val", ["maybe"], {"num_speakers": 6})
