"""Shared fixtures. Nothing here touches the network; generated data goes to tmp dirs. The
writers behind them live in ``tests/fixtures/``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
ROOT = Path(__file__).resolve().parents[1]
TINY_SPEAKERS = 20  # 14 / 3 / 3 speakers -> 140 / 30 / 30 clips
# CLI arguments that skip the shared evaluation (kNN, linear probe, retrieval, the two pictures) on
# the final split and the transfer evaluation (which runs on the final split only)
NO_FINAL_EVAL = [
    arg for part in ("knn", "linear_probe", "retrieval", "tsne", "retrieval_examples")
    for arg in (f"--eval.{part}.final_split", "null")
] + ["--eval.transfer", "null"]  # fmt: skip


def paper_config_error(config: Path, tmp_path: Path, capsys) -> str:
    """What ``assoc fit --config <config>`` prints when its data dir is empty, checked to stop
    with the CLI's clean exit code 2 (for the paper configs' not-found messages)."""
    from assoc_lightning.cli import main

    with pytest.raises(SystemExit) as exc:
        main(
            ["fit", "--config", str(config), "--data.init_args.data_dir", str(tmp_path),
             "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")]
        )  # fmt: skip
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """A data dir holding a small generated spoken-digits set (generated once per session)."""
    from assoc_lightning.data import DigitsDataModule

    root = tmp_path_factory.mktemp("assoc_data")
    DigitsDataModule(data_dir=str(root), num_speakers=TINY_SPEAKERS).prepare_data()
    return root


@pytest.fixture(scope="session")
def ave_root(tmp_path_factory) -> Path:
    """A tiny AVE copy (``tests/fixtures/av.py: make_ave``)."""
    pytest.importorskip("av")
    from tests.fixtures.av import make_ave

    return make_ave(tmp_path_factory.mktemp("ave"))


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    """A saved tiny random-weight CLIP (``tests/fixtures/towers.py``)."""
    pytest.importorskip("transformers")
    from tests.fixtures.towers import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def clap_dir(tmp_path_factory) -> Path:
    """A saved tiny random-weight fused CLAP (``tests/fixtures/towers.py``)."""
    pytest.importorskip("transformers")
    from tests.fixtures.towers import make_tiny_clap

    return make_tiny_clap(tmp_path_factory.mktemp("tiny_clap"))


@pytest.fixture(scope="session")
def clip(clip_dir):
    from assoc_lightning.nn.towers import CLIPTower

    return CLIPTower(str(clip_dir))


@pytest.fixture(scope="session")
def clap(clap_dir):
    from assoc_lightning.nn.towers import CLAPTower

    return CLAPTower(str(clap_dir))
