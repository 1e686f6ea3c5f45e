"""Transfer evaluation: kNN (k chosen on val) and the linear probe on another data set, checked
against scikit-learn; clip-level accuracy by hand; a registry set through TransferDataModule;
and an experiment config through the CLI logging the transfer metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from assoc_lightning.cli import main
from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.datamodules.transfer import TransferDataModule
from assoc_lightning.data.datasets.base import TensorLabeledDataset
from assoc_lightning.eval.callbacks import EvaluationSuite, TransferEvalCallback
from tests.conftest import ROOT
from tests.eval.test_suite import Blobs, Counting
from tests.fixtures.dcase2018 import make_dcase2018
from tests.test_cli import TINY_EXTRA, tiny_args

K_GRID, C_GRID = (1, 3, 5, 7), (0.01, 0.1, 1.0, 10.0)


class Segments(AssocDataModule):
    """Audio-only eval set: 8-d segments, 5 per clip around a clip offset around its class
    centre, noisy enough that segment and clip accuracies differ."""

    modalities = ("audio",)
    num_classes = 4

    def __init__(self) -> None:
        super().__init__(eval_batch_size=16)  # several batches per split
        rng = np.random.default_rng(0)
        centres = rng.normal(size=(4, 8))
        for split, clips in (("train", 24), ("val", 8), ("test", 12)):
            labels = np.repeat(np.arange(clips) % 4, 5)
            clip_ids = np.repeat(np.arange(clips), 5)
            offsets = rng.normal(scale=0.6, size=(clips, 8))[clip_ids]
            x = centres[labels] + offsets + rng.normal(scale=0.9, size=(clips * 5, 8))
            ds = TensorLabeledDataset("audio", torch.tensor(x, dtype=torch.float32), labels)
            ds.clip_ids = clip_ids
            self.unpaired[split] = {"audio": ds}

    def split(self, name):
        ds = self.unpaired[name]["audio"]
        return ds.data.double().numpy(), ds.labels, ds.clip_ids


def run(callback, tmp_path):
    trainer = Trainer(
        callbacks=[EvaluationSuite(None, None, None, transfer=[callback])],
        default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.test(Counting(), datamodule=Blobs(), verbose=False)
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"test"}
    return {r["metric"]: r["value"] for r in rows}


def clip_top1(scores, labels, clips):
    """By hand: sum each clip's segment scores, argmax (lowest class on ties)."""
    ids = np.unique(clips)
    pred = [np.argmax(scores[clips == c].sum(0)) for c in ids]
    return float(np.mean([p == labels[clips == c][0] for p, c in zip(pred, ids, strict=True)]))


def reference(data, select: bool):
    (xtr, ytr, _), (xva, yva, _), (xte, yte, cte) = (
        data.split(s) for s in ("train", "val", "test")
    )
    knn = {
        k: KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(xtr, ytr) for k in K_GRID
    }
    k = max(K_GRID, key=lambda k: (knn[k].score(xva, yva), -k)) if select else K_GRID[2]
    neighbours = ytr[knn[k].kneighbors(xte, k, return_distance=False)]
    votes = np.stack([(neighbours == c).sum(1) for c in range(4)], 1)
    probes = {
        c: make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(xtr, ytr)
        for c in C_GRID
    }
    c = max(C_GRID, key=lambda c: (probes[c].score(xva, yva), -C_GRID.index(c))) if select else 1.0
    return {
        "knn_top1": knn[k].score(xte, yte), "knn_k": k, "knn_clip_top1": clip_top1(votes, yte, cte),
        "linear_top1": probes[c].score(xte, yte),
        "linear_clip_top1": clip_top1(probes[c].predict_proba(xte), yte, cte),
    }  # fmt: skip


@pytest.mark.parametrize("select", [True, False], ids=["k_and_C_on_val", "grid_middle"])
def test_knn_linear_and_clip_level_match_scikit_learn(tmp_path, select):
    data = Segments()
    cb = TransferEvalCallback(
        data, name="blobs", k_grid=K_GRID, c_grid=C_GRID, select_split="val" if select else None
    )
    got = run(cb, tmp_path)
    want = reference(data, select)
    assert got == pytest.approx({f"transfer/blobs/{k}": v for k, v in want.items()}, abs=1e-6)
    # the fixture is not trivial: clip-level averaging changes the numbers
    assert want["knn_clip_top1"] != want["knn_top1"] and 0.3 < want["knn_top1"] < 0.95


def test_a_registry_set_through_transfer_datamodule_with_clip_ids(tmp_path):
    make_dcase2018(tmp_path / "data", seconds=2.0)  # 3 scenes, 5 segments of 0.4 s per clip
    data = TransferDataModule(
        "dcase2018", options={"segment_seconds": 0.4, "sample_rate": 2000},
        data_dir=str(tmp_path / "data"),
    )  # fmt: skip
    assert data.modalities == ("audio",) and data.name == "dcase2018"
    # raw waveforms as embeddings: each scene is one sine, so every number is exact
    got = run(TransferEvalCallback(data, k_grid=(1, 3)), tmp_path / "run")
    assert data.num_classes == 10 and len(data.eval_dataset("test", "audio")) == 30
    keys = ("knn_top1", "knn_k", "knn_clip_top1", "linear_top1", "linear_clip_top1")
    assert set(got) == {f"transfer/dcase2018/{k}" for k in keys}
    assert got["transfer/dcase2018/knn_clip_top1"] == 1.0 == got["transfer/dcase2018/knn_top1"]
    with pytest.raises(ValueError, match="no pairs"):
        data.pair_dataset("test")


def test_an_experiment_config_with_a_transfer_set_logs_its_metrics(digits_dir, tmp_path):
    # the shipped C-MCR config, its transfer set made small (6 talkers) and the rest switched off
    small = tmp_path / "small.yaml"
    small.write_text(
        "eval:\n  knn: null\n  linear_probe: null\n  retrieval: null\n  transfer:\n"
        "    - data:\n        class_path: assoc_lightning.data.datamodules.transfer.TransferDataModule\n"
        "        init_args: {dataset: spoken_commands, options: {num_speakers: 6}}\n"
    )
    args = tiny_args(ROOT / "experiments/cmcr.yaml", digits_dir, tmp_path) + TINY_EXTRA["cmcr"]
    main(args + ["--config", str(small), "--trainer.max_epochs", "1"])
    run_dir = next(tmp_path.glob("cmcr/version_0"))
    rows = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    final = {r["metric"]: r["value"] for r in rows if r["split"] == "test"}
    names = ("knn_top1", "knn_k", "linear_top1")
    assert set(final) == {f"transfer/spoken_commands/{k}" for k in names}
    assert all(0.0 <= final[f"transfer/spoken_commands/{k}"] <= 1.0 for k in names[::2])
    assert {r["split"] for r in rows} == {"test"}  # never during fit by default
    assert "test/transfer/spoken_commands/linear_top1" in (run_dir / "metrics.csv").read_text()
    # generated next to the run's data (the digits' data dir): 6 talkers x 10 words
    manifest = json.loads((digits_dir / "spoken_commands_s1_n6" / "manifest.json").read_text())
    assert len(manifest["files"]) == 60
