"""Shared fixtures. Nothing here touches the network; generated data goes to tmp dirs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
ROOT = Path(__file__).resolve().parents[1]
TINY_SPEAKERS = 20  # 14 / 3 / 3 speakers -> 140 / 30 / 30 clips
# CLI arguments that skip the shared evaluation (kNN, linear probe, retrieval) on the final split
NO_FINAL_EVAL = [
    arg for part in ("knn", "linear_probe", "retrieval")
    for arg in (f"--eval.{part}.final_split", "null")
]  # fmt: skip


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    """A data dir holding a small generated spoken-digits set (generated once per session)."""
    from assoc_lightning.data import DigitsDataModule

    root = tmp_path_factory.mktemp("assoc_data")
    DigitsDataModule(data_dir=str(root), num_speakers=TINY_SPEAKERS).prepare_data()
    return root
