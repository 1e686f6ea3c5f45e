"""Same config, same seed: the same numbers, run after run (deterministic kernels are the
CLI's default; the IG embedding's impostor gathering differed in the 7th digit without)."""

from __future__ import annotations

from assoc_lightning.cli import main
from tests.conftest import NO_FINAL_EVAL, ROOT, TINY_SPEAKERS


def ig_run(digits_dir, save_dir, extra=()):
    main([
        "fit", "--config", str(ROOT / "experiments/ig_embedding.yaml"),
        "--data.init_args.data_dir", str(digits_dir),
        "--data.init_args.num_speakers", str(TINY_SPEAKERS),
        "--trainer.max_steps", "12", "--trainer.log_every_n_steps", "1",
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(save_dir), *NO_FINAL_EVAL, "--eval.extra", "[]",
        *extra,
    ])  # fmt: skip
    return (save_dir / "ig_embedding" / "version_0" / "metrics.csv").read_text()


def test_two_runs_with_one_seed_log_the_same_numbers(digits_dir, tmp_path):
    first = ig_run(digits_dir, tmp_path / "a")
    assert first.count("\n") > 12 and "train/sim" in first  # a loss row for every step
    assert ig_run(digits_dir, tmp_path / "b") == first
