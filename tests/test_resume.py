"""A killed run resumes in place: a real subprocess, a SIGKILL after a checkpoint, one
documented command (``--ckpt_path last``), the same folder, appended metrics, a fresh
last.ckpt, and the same final numbers as a run that was never interrupted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT, TINY_SPEAKERS


def cli(args, cwd, check=True):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    env.pop("ASSOC_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "assoc_lightning.cli", *args], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def results(run):
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    return {(r["split"], r["metric"], r["epoch"]): r["value"] for r in rows}


def test_a_killed_run_resumes_in_place_with_the_uninterrupted_numbers(digits_dir, tmp_path):
    # C-MCR on tiny limits: 4 caption batches an epoch, a checkpoint at every epoch end
    common = [
        "fit", "--config", str(ROOT / "experiments/cmcr.yaml"),
        "--data.init_args.data_dir", str(digits_dir),
        "--data.init_args.num_speakers", str(TINY_SPEAKERS),
        "--model.init_args.image_space.init_args.steps", "10",
        "--model.init_args.audio_space.init_args.steps", "10",
        "--trainer.max_steps", "24", "--trainer.check_val_every_n_epoch", "3",
        "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    cli([*common, "--trainer.logger.init_args.save_dir", "whole"], tmp_path)
    killed = [*common, "--trainer.logger.init_args.save_dir", "killed"]
    proc = cli(
        [*killed, "--trainer.callbacks+=tests.fixtures.callbacks.KillAtStep",
         "--trainer.callbacks.step", "14"], tmp_path, check=False,
    )  # fmt: skip
    assert proc.returncode == -9  # SIGKILL: no cleanup, mid-epoch, after the step-12 checkpoint
    run = tmp_path / "killed" / "cmcr" / "version_0"
    assert (run / "checkpoints" / "epoch=2-step=12.ckpt").is_file()
    cli([*killed, "--ckpt_path", "last"], tmp_path)
    assert [p.name for p in (tmp_path / "killed" / "cmcr").iterdir()] == ["version_0"]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "epoch=5-step=24.ckpt",
        "last.ckpt",
    ]  # fmt: skip  (last.ckpt replaced, no last-v1.ckpt)
    whole = tmp_path / "whole" / "cmcr" / "version_0"
    assert (run / "metrics.csv").read_text() == (whole / "metrics.csv").read_text()
    assert results(run) == results(whole)


def test_nothing_to_resume_and_a_missing_checkpoint_are_clear_errors(tmp_path):
    base = ["fit", "--config", str(ROOT / "experiments/cmcr.yaml"),
            "--trainer.logger.init_args.save_dir", "runs"]  # fmt: skip
    proc = cli([*base, "--ckpt_path", "last"], tmp_path, check=False)
    assert proc.returncode == 2 and "no run to resume under runs/cmcr" in proc.stderr
    proc = cli([*base, "--ckpt_path", "nope.ckpt"], tmp_path, check=False)
    assert proc.returncode == 2 and "checkpoint not found: nope.ckpt" in proc.stderr
    assert "Traceback" not in proc.stderr
