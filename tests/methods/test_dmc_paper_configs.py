"""DMC's paper configs (experiments/paper/dmc_*.yaml) parse and stop with the project's
not-found message when the data are absent."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT, paper_config_error

PAPER = sorted((ROOT / "experiments/paper").glob("dmc_*.yaml"))


def test_paper_configs_exist():
    assert {p.stem for p in PAPER} == {
        "dmc_flickr_soundnet", "dmc_esc50", "dmc_dcase2013", "dmc_localization",
    }  # fmt: skip


@pytest.mark.parametrize("config", PAPER, ids=lambda p: p.stem)
def test_paper_configs_say_which_dataset_is_missing(config, tmp_path, capsys):
    err = paper_config_error(config, tmp_path, capsys)
    assert "dataset not found" in err and "expected layout" in err
    assert "Flickr-SoundNet" in err
    if config.stem != "dmc_localization":  # the training videos come first
        assert "Flickr-SoundNet training videos" in err and "soundnet.csail.mit.edu" in err
