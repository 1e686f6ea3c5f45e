"""wandb composition (offline, config pushed), mixed precision, and the GPU config."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from assoc_lightning.cli import experiment_name, main
from tests.conftest import NO_FINAL_EVAL, ROOT, TINY_SPEAKERS
from tests.fixtures.wandb_offline import read_run


def base_args(digits_dir):
    return [
        "fit",
        "--config", str(ROOT / "experiments/ig_embedding.yaml"),
        "--data.init_args.data_dir", str(digits_dir),
        "--data.init_args.num_speakers", str(TINY_SPEAKERS),
        "--trainer.max_steps", "2",
        "--trainer.log_every_n_steps", "1",
        "--trainer.limit_val_batches", "0",
        "--trainer.enable_progress_bar", "false",
        *NO_FINAL_EVAL,
    ]  # fmt: skip


def test_wandb_offline_run_named_grouped_with_summary_and_panels(digits_dir, tmp_path, monkeypatch):
    """One offline wandb run per job, named and grouped from the config, the resolved config
    and the headline metrics in it, and the pictures as panels (t-SNE, the retrieval examples
    as a picture and a Table), read back from the run's own files; the same pictures in the
    run folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    final = ["--eval.knn.final_split", "null", "--eval.linear_probe.final_split", "null"]
    args = [a for a in base_args(digits_dir) if a not in NO_FINAL_EVAL] + final
    main(args + ["--eval.transfer", "null", "--config", str(ROOT / "experiments/base/wandb.yaml")])
    import wandb

    wandb.finish()  # flush the offline run (a CLI process does this at exit)
    runs = list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # one wandb run for the job
    run = read_run(runs[0])
    assert run["exited"]
    assert run["name"] == "ig_embedding-IGEmbedding-DigitsDataModule-seed0"
    assert run["group"] == "ig_embedding" and run["job_type"] == "fit"
    assert run["tags"] == ["IGEmbedding", "DigitsDataModule"]
    assert {"config_yaml", "log_dir"} <= run["config"]  # the resolved config, the run folder

    folder = tmp_path / "runs" / "ig_embedding" / "version_0"
    results = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    r1 = next(r["value"] for r in results if r["metric"] == "retrieval/a2i_class_r1")
    assert run["summary"]["test/retrieval/a2i_class_r1"] == pytest.approx(r1)

    media = run["media"]
    assert any(m.startswith("media/images/test/tsne_") for m in media)
    assert any(m.startswith("media/images/test/retrieval_examples_picture_") for m in media)
    table = [m for m in media if m.startswith("media/table/test/retrieval_examples_")]
    assert len(table) == 1
    rows = json.loads((runs[0] / "files" / table[0]).read_text())
    assert rows["columns"] == ["query", "class", "top1", "top2", "top3", "top4", "top5", "hits"]
    assert len(rows["data"]) == 10 and all(0 <= row[-1] <= 5 for row in rows["data"])
    # the same pictures in the run folder, wandb or not
    assert (folder / "tsne_test_step2.png").is_file()
    assert (folder / "retrieval_examples_test_step2.png").is_file()
    saved = yaml.safe_load((folder / "config.yaml").read_text())
    loggers = saved["trainer"]["logger"]
    assert [lg["class_path"].rsplit(".", 1)[1] for lg in loggers] == ["CSVLogger", "WandbLogger"]


def test_experiment_names_for_wandb():
    assert experiment_name(["experiments/cmcr.yaml", "experiments/base/wandb.yaml"]) == "cmcr"
    assert experiment_name([ROOT / "experiments/paper/dmc_esc50.yaml"]) == "paper/dmc_esc50"
    assert experiment_name(["/elsewhere/mine.yaml"]) == "mine"
    assert experiment_name([]) == "cli"


@pytest.mark.parametrize("precision", ["bf16-mixed"])
def test_mixed_precision_on_cpu_trains_finite(digits_dir, tmp_path, precision):
    main(base_args(digits_dir) + ["--trainer.precision", precision,
                                  "--trainer.logger.init_args.save_dir", str(tmp_path)])  # fmt: skip
    metrics = (next(tmp_path.rglob("metrics.csv"))).read_text()
    assert "train/loss" in metrics and "nan" not in metrics.lower()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_config_bf16_ddp(digits_dir, tmp_path):
    main(base_args(digits_dir) + ["--config", str(ROOT / "experiments/base/gpu.yaml"),
                                  "--trainer.devices", "1",
                                  "--trainer.logger.init_args.save_dir", str(tmp_path)])  # fmt: skip
    assert "train/loss" in next(tmp_path.rglob("metrics.csv")).read_text()
