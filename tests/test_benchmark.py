"""scripts/benchmark.py (the weakly-paired benchmark) and scripts/study_runs.py (the run loop it
shares with the study scripts): the commands it would run, and a tiny benchmark through the
real CLI (2 methods x 2 fractions x 1 seed) that writes the table and the picture, then skips
every finished run when invoked again."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TINY_SPEAKERS

SCRIPTS = ROOT / "scripts"


@pytest.fixture
def benchmark(monkeypatch):
    """scripts/benchmark.py as a module (scripts/ is not a package; study_runs sits beside it)."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPTS / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "benchmark", module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def tiny_data(digits_dir) -> list[str]:
    return ["--data.init_args.data_dir", str(digits_dir),
            "--data.init_args.num_speakers", str(TINY_SPEAKERS)]  # fmt: skip


def test_emit_commands_lists_unfinished_runs_and_resumes_killed_ones(
    benchmark, digits_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(ROOT)  # the experiments' paths are relative to the repository
    save = tmp_path / "runs"
    done = save / "digits" / "vae_associator_f1_seed0" / "version_0"
    done.mkdir(parents=True)
    (done / "results.jsonl").write_text(
        json.dumps({"split": "test", "metric": "knn_top1/image", "value": 0.5}) + "\n"
    )
    killed = save / "digits" / "vae_associator_f0.05_seed0" / "version_0" / "checkpoints"
    killed.mkdir(parents=True)
    (killed / "last.ckpt").write_bytes(b"")
    argv = ["--emit-commands", "--methods", "cmcr", "vae_associator", "ig_embedding",
            "--fractions", "1.0", "0.05", "--seeds", "0", "--save", str(save), "--",
            *tiny_data(digits_dir)]  # fmt: skip
    assert benchmark.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    runs = {}
    for line in lines:
        cd, _, command = line.partition(" && ")
        assert shlex.split(cd) == ["cd", str(ROOT)]
        cmd = shlex.split(command)
        assert cmd[1:4] == ["fit", "--config", cmd[3]] and cmd[0].endswith("assoc")
        runs[cmd[cmd.index("--trainer.logger.init_args.name") + 1]] = cmd
    # the finished run is left out; C-MCR (no pairs) once, without a fraction
    assert sorted(runs) == [
        "cmcr_seed0", "ig_embedding_f0.05_seed0", "ig_embedding_f1_seed0",
        "vae_associator_f0.05_seed0",
    ]  # fmt: skip
    assert "--data.init_args.paired_fraction" not in runs["cmcr_seed0"]
    assert runs["vae_associator_f0.05_seed0"][-2:] == ["--ckpt_path", "last"]  # killed: resume
    assert "--ckpt_path" not in runs["ig_embedding_f1_seed0"]
    # IG trains on the pairs only: 60 pairs at 5 % (< one batch of 64), so one batch of all of
    # them, the full-pairing budget of 40 epochs x 19 batches in steps, intervals x 19
    ig = " ".join(runs["ig_embedding_f0.05_seed0"])
    for part in ("--data.init_args.paired_fraction 0.05", "--trainer.max_steps 760",
                 "--trainer.max_epochs -1", "--data.init_args.batch_size 60",
                 "--trainer.check_val_every_n_epoch 190",
                 "--model.init_args.lr_decay_every_epochs 190"):  # fmt: skip
        assert part in ig, part
    assert ig.endswith(f"--trainer.logger.init_args.save_dir {save / 'digits'} "
                       "--trainer.logger.init_args.name ig_embedding_f0.05_seed0")  # fmt: skip
    assert "--trainer.max_steps" not in runs["ig_embedding_f1_seed0"]  # its own schedule


def test_submitit_without_the_package_is_a_clear_error(benchmark, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setitem(sys.modules, "submitit", None)  # import fails as if not installed
    with pytest.raises(SystemExit, match=r"needs the submitit package.*\.\[slurm\]"):
        benchmark.main(["--submitit", "timeout_min=5", "--methods", "cmcr", "--seeds", "0",
                        "--save", str(tmp_path)])  # fmt: skip


def test_missing_mnist_speech_commands_is_a_clear_error(benchmark, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit, match="needs MNIST and Speech Commands") as exc:
        benchmark.main(["--dataset", "mnist_speech_commands", "--emit-commands", "--",
                        "--data.init_args.data_dir", str(tmp_path)])  # fmt: skip
    assert "not found" in str(exc.value).lower()


def run_benchmark(args, cwd):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "WANDB_MODE": "offline"}
    env.pop("ASSOC_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / "benchmark.py"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow  # 4 tiny `assoc fit` processes and a second pass: ~70 s on 2 cores
def test_tiny_benchmark_writes_table_and_picture_and_skips_finished_runs(digits_dir, tmp_path):
    save, out = tmp_path / "runs", tmp_path / "results" / "benchmark"
    args = [
        "--methods", "ig_embedding", "vae_associator", "--fractions", "1.0", "0.05",
        "--seeds", "0", "--save", str(save), "--out", str(out), "--",
        *tiny_data(digits_dir),
        "--trainer.max_steps", "2", "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "0", "--eval.linear_probe.max_iter", "50",
        "--eval.extra", "[]",  # speed: no IG purity / modality SVM, no VAE recognition
    ]  # fmt: skip
    stdout = run_benchmark(args, ROOT)
    assert "ran 4 runs" in stdout
    table = out.with_suffix(".md").read_text()
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] in ("ig_embedding", "vae_associator"):
            rows[(cells[0], cells[1])] = cells
    assert sorted(rows) == [("ig_embedding", "0.05"), ("ig_embedding", "1"),
                            ("vae_associator", "0.05"), ("vae_associator", "1")]  # fmt: skip
    header = [c.strip() for c in table.split("\n| method")[1].split("\n")[0].split("|")][1:-1]
    for (method, _), cells in rows.items():
        values = dict(zip(["method", *header], cells, strict=True))
        assert values["n"] == "1"
        expected = ["image kNN", "audio kNN", "image linear", "audio linear"]
        if method == "ig_embedding":
            expected += ["a2i class R@1", "i2a class R@1"]
        else:  # separate latent spaces: no retrieval
            assert values["a2i class R@1"] == values["i2a class R@1"] == "-"
        for name in expected:
            mean, sd = re.fullmatch(r"(\d\.\d{3}) ± (\d\.\d{3})", values[name]).groups()
            assert 0.0 <= float(mean) <= 1.0 and float(sd) == 0.0
    assert rows[("vae_associator", "1")][2] == "yes"
    assert rows[("ig_embedding", "1")][2] == "no (pairs only)"
    assert re.search(r"Total wall time of the 4 runs in this table: \d", table)
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(str(out.with_suffix(".png"))).shape
    assert width > 800 and height > 300
    # invoked again: every run has finished, none starts, no new version folder
    versions = sorted(p.relative_to(save) for p in save.rglob("version_*"))
    assert len(versions) == 4
    stdout = run_benchmark(args, ROOT)
    assert "ran 0 runs" in stdout and "skipped 4 finished" in stdout
    assert sorted(p.relative_to(save) for p in save.rglob("version_*")) == versions
