"""Every experiments/*.yaml through the real CLI on tiny limits, and the CLI's error paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from assoc_lightning.cli import main
from tests.conftest import ROOT, TINY_SPEAKERS

EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
# Per-experiment extras that keep the tiny run tiny (e.g. locally trained towers).
TINY_EXTRA = {
    "cmcr": [
        "--model.init_args.image_space.init_args.steps", "10",
        "--model.init_args.audio_space.init_args.steps", "10",
    ],
    "bma_memory": [
        "--data.init_args.batch_size", "16", "--model.init_args.num_slots", "50",
        "--eval.linear_probe.max_iter", "50",
    ],
    "dmc": ["--data.init_args.batch_size", "16"],
}  # fmt: skip


def tiny_args(config, data_dir, save_dir):
    return [
        "fit",
        "--config", str(config),
        "--data.init_args.data_dir", str(data_dir),
        "--data.init_args.num_speakers", str(TINY_SPEAKERS),
        "--trainer.max_epochs", "2",
        "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1",
        "--trainer.check_val_every_n_epoch", "1",
        "--trainer.log_every_n_steps", "1",
        "--trainer.logger.init_args.save_dir", str(save_dir),
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_runs_end_to_end(config, digits_dir, tmp_path):
    main(tiny_args(config, digits_dir, tmp_path) + TINY_EXTRA.get(config.stem, []))
    run_dirs = list(tmp_path.glob("*/version_0"))
    assert len(run_dirs) == 1
    run = run_dirs[0]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["seed_everything"] == 0 and saved["trainer"]["max_epochs"] == 2
    assert (run / "checkpoints" / "last.ckpt").is_file()
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert lines, "evaluation wrote no results"
    for rec in lines:
        assert {"method", "datamodule", "metric", "value", "epoch", "seed", "config", "git"} <= set(
            rec
        )
        assert rec["config"] == [str(config)] and rec["seed"] == 0
    final = {r["metric"]: r["value"] for r in lines if r["split"] == "test"}
    if "cluster_purity" in final:
        assert 0.1 <= final["cluster_purity"] <= 1.0
    if "modality_acc" in final:
        assert 0.0 <= final["modality_acc"] <= 1.0
    if config.stem == "dmc":  # the canvas localization check and its picture
        assert 0.0 <= final["localization/peak_acc"] <= 1.0
        assert list(run.glob("localization_test_step*.png"))


def test_ig_embedding_reports_val_and_test_and_saves_tsne(digits_dir, tmp_path):
    args = tiny_args(ROOT / "experiments/ig_embedding.yaml", digits_dir, tmp_path)
    # 2 epochs of 1 batch, validation after the second: every callback evaluates val, then test
    main(args + ["--trainer.limit_train_batches", "1", "--trainer.check_val_every_n_epoch", "2"])
    run = next(tmp_path.glob("ig_embedding/version_0"))
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    seen = {(r["split"], r["metric"], r["epoch"]) for r in lines}
    for split, epoch in (("val", 1), ("test", 2)):
        for metric in (
            "cluster_purity", "modality_acc",  # the IG paper's own evaluation
            "knn_top1/image", "knn_top1/audio", "knn_top1_k20/audio", "knn_majority_top1/image",
            "linear_top1/image", "linear_top1/audio",
            "retrieval/a2i_r1", "retrieval/i2a_r10", "retrieval/a2i_map", "retrieval/i2a_medr",
            "retrieval/a2i_class_r5",
        ):  # fmt: skip
            assert (split, metric, epoch) in seen, (split, metric, epoch)
    assert {s for s, _, _ in seen} == {"val", "test"}
    assert all(
        r["method"] == "ig_embedding" and r["datamodule"] == "DigitsDataModule" for r in lines
    )
    assert list(run.glob("tsne_test_step*.png"))
    metrics_csv = (run / "metrics.csv").read_text()
    assert "val/cluster_purity" in metrics_csv and "test/cluster_purity" in metrics_csv
    assert "train/loss" in metrics_csv


def test_print_config_shows_every_default(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", str(ROOT / "experiments/ig_embedding.yaml"), "--print_config"])
    assert exc.value.code == 0
    out = yaml.safe_load(capsys.readouterr().out)
    model = out["model"]["init_args"]
    assert model["num_samples"] == 16 and model["margin"] == 1.0 and model["lambda_wd"] == 1e-6
    assert out["data"]["init_args"]["num_speakers"] == 240
    assert out["seed_everything"] == 0


def test_bad_config_key_is_a_clear_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "fit",
                "--config",
                str(ROOT / "experiments/ig_embedding.yaml"),
                "--model.init_args.lambda_igg",
                "0.1",
            ]
        )
    assert exc.value.code != 0
    assert "lambda_igg" in capsys.readouterr().err


def test_missing_dataset_is_a_clear_message_not_a_traceback(tmp_path):
    env = {**os.environ, "ASSOC_DATA_DIR": str(tmp_path)}
    env.pop("ASSOC_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "assoc_lightning.cli", "fit",
         "--config", str(ROOT / "experiments/paper/ig_mnist_tidigits.yaml"),
         "--trainer.logger.init_args.save_dir", str(tmp_path / "runs")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "dataset not found: MNIST" in proc.stderr
    assert "expected layout" in proc.stderr and "MNIST/raw/train-images-idx3-ubyte" in proc.stderr
    assert "Traceback" not in proc.stderr
