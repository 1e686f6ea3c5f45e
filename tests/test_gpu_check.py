"""scripts/gpu_check.py and the ThroughputMonitor it reads: the whole pipeline on CPU (both
precisions, through the real CLI), the monitor's numbers on a tiny fit, the checks on made-up
runs, and the real GPU check where there is a CUDA device."""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys
import time

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader, Dataset

from assoc_lightning.utils.throughput import ThroughputMonitor, batch_items
from tests.conftest import ROOT, TINY_SPEAKERS

SCRIPT = ROOT / "scripts" / "gpu_check.py"


def load_script():
    """scripts/gpu_check.py as a module (scripts/ is not a package; registered, as its
    dataclasses need)."""
    if "gpu_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


# ---------------------------------------------------------------- the pipeline, on CPU


def test_cpu_pipeline_runs_both_precisions_and_writes_the_summary(digits_dir, tmp_path):
    """ig_embedding in bf16-mixed and 32-true through `assoc fit`, 6 steps on 2 batches of the
    tiny digits: both runs finish, every loss read is finite, samples/s and the wait share are
    measured, the metrics are compared, and gpu_check.{md,json} are written. The tolerance is
    wide: 30 test items after 6 steps say nothing about bf16 (the GPU run's job)."""
    out = tmp_path / "check"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--accelerator", "cpu", "--methods", "ig_embedding",
         "--steps", "6", "--warmup", "2", "--tolerance", "1.0", "--max-delta", "1.0", "--out", str(out), "--",
         "--data.init_args.data_dir", str(digits_dir),
         "--data.init_args.num_speakers", str(TINY_SPEAKERS),
         "--trainer.limit_train_batches", "2"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DDP skipped on CPU" in proc.stdout
    summary = json.loads((out / "gpu_check.json").read_text())
    runs = {r["precision"]: r for r in summary["runs"]}
    assert set(runs) == {"bf16-mixed", "32-true"}
    for run in runs.values():
        assert run["status"] == "ok" and run["verdict"] == "PASS", run["notes"]
        assert run["finite"] and run["losses_checked"] > 0 and math.isfinite(run["final_loss"])
        assert run["steps"] == 6 and run["samples_per_s"] > 0
        assert 0.0 <= run["wait_fraction"] < 1.0
        assert run["busy_mean"] is None  # no nvidia-smi sampling on CPU
        assert "knn_top1/image" in run["metrics"] and "cluster_purity" in run["metrics"]
    assert set(runs["bf16-mixed"]["deltas"]) == set(runs["32-true"]["metrics"])
    table = (out / "gpu_check.md").read_text()
    assert "| ig_embedding | bf16-mixed | 1 | 6 |" in table and "(reference)" in table
    assert table.count("PASS") == 2 and "| method | precision |" in proc.stdout


def test_no_cuda_skips_cleanly(monkeypatch, capsys, tmp_path):
    gpu_check = load_script()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    assert "no CUDA device: skipped" in capsys.readouterr().out
    assert not (tmp_path / "gpu_check.md").exists()


# ---------------------------------------------------------------- the checks, on made-up runs


def write_metrics(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "train/loss", "train/ig", "test/knn"])
        writer.writeheader()
        writer.writerows(rows)


def test_losses_read_from_metrics_csv_catch_a_nan(tmp_path):
    gpu_check = load_script()
    good = tmp_path / "good" / "metrics.csv"
    write_metrics(good, [{"step": 9, "train/loss": 2.5, "train/ig": 0.1},
                         {"step": 19, "train/loss": 1.5, "train/ig": 0.2},
                         {"step": 19, "test/knn": 0.9}])  # fmt: skip
    assert gpu_check.read_losses(good) == (1.5, 4, True)  # the eval metric is not a loss
    bad = tmp_path / "bad" / "metrics.csv"
    write_metrics(bad, [{"step": 9, "train/loss": 2.5, "train/ig": float("nan")}])
    assert gpu_check.read_losses(bad)[2] is False
    assert gpu_check.read_losses(tmp_path / "missing.csv") == (None, 0, False)


def judged(metrics: dict, reference: dict, gpu_check, args):
    """A checked run with ``metrics`` judged against a reference run with ``reference``."""
    ref = gpu_check.Run("m", "32-true", 1, "m_32-true", "reference")
    run = gpu_check.Run("m", "bf16-mixed", 1, "m_bf16-mixed", "checked")
    for r, values in ((ref, reference), (run, metrics)):
        r.status, r.finite, r.metrics = "ok", True, values
    gpu_check.compare_all([ref, run], "bf16-mixed", "32-true")
    gpu_check.judge(run, args)
    gpu_check.judge(ref, args)
    assert ref.verdict == "PASS"
    return run


def test_metric_deltas_are_held_to_the_mean_and_the_max_tolerance(tmp_path):
    gpu_check = load_script()
    args = gpu_check.parse_args(
        ["--tolerance", "0.05", "--max-delta", "0.15", "--out", str(tmp_path)]
    )
    ref = {"knn": 0.90, "r1": 0.80, "map": 0.70, "purity": 0.60}
    # one metric 0.07 off, the mean 0.02: trajectory noise, passes
    ok = judged(
        {"knn": 0.89, "r1": 0.73, "map": 0.70, "purity": 0.60, "extra": 0.1}, ref, gpu_check, args
    )
    assert ok.deltas == pytest.approx({"knn": -0.01, "r1": -0.07, "map": 0.0, "purity": 0.0})
    assert ok.verdict == "PASS" and ok.notes == []  # shared keys only ("extra" is not)
    # every metric 0.06 off: fails on the mean
    drift = judged({k: v - 0.06 for k, v in ref.items()}, ref, gpu_check, args)
    assert drift.verdict == "FAIL"
    assert drift.notes == ["metrics differ by 0.060 on average from m_32-true"]
    # one metric 0.18 off, the mean 0.045: fails on that metric
    one = judged({**ref, "r1": 0.62}, ref, gpu_check, args)
    assert one.verdict == "FAIL" and one.notes == ["r1 differs by -0.180 from m_32-true"]
    assert "0.045 / -0.180 r1 (of 4)" in gpu_check.table([one])


def test_ddp_runs_show_deltas_and_speedup_without_judging_them(tmp_path):
    gpu_check = load_script()
    args = gpu_check.parse_args(["--out", str(tmp_path)])
    one = gpu_check.Run("m", "bf16-mixed", 1, "m_bf16-mixed", "checked")
    ddp = gpu_check.Run("m", "bf16-mixed", 2, "m_bf16-mixed_ddp", "ddp")
    for r, knn, speed in ((one, 0.9, 100.0), (ddp, 0.5, 180.0)):
        r.status, r.finite, r.metrics, r.samples_per_s = "ok", True, {"knn": knn}, speed
    messages = gpu_check.compare_all([one, ddp], "bf16-mixed", "32-true")
    gpu_check.judge(ddp, args)
    assert ddp.deltas == pytest.approx({"knn": -0.4}) and ddp.verdict == "PASS"  # larger batch
    assert messages == ["m_bf16-mixed_ddp: 1.80x the samples/s of 1 device (90% scaling "
                        "efficiency on 2)"]  # fmt: skip
    assert "not judged" in gpu_check.table([ddp])


def test_gpu_busy_is_averaged_over_the_training_window():
    gpu_check = load_script()
    sampler = gpu_check.GpuSampler([], enabled=False)
    sampler.samples = [(1.0, 0.0, 500.0), (2.0, 80.0, 900.0), (3.0, 100.0, 1000.0),
                       (4.0, 5.0, 2000.0)]  # fmt: skip
    assert sampler.stats([1.5, 3.5]) == (90.0, 100.0, 1000.0)
    assert sampler.stats(None)[0] == pytest.approx(46.25)
    assert sampler.stats([10.0, 11.0])[1] == 100.0  # a window with no sample: the whole run
    assert gpu_check.GpuSampler([], enabled=False).stats(None) == (None, None, None)


# ---------------------------------------------------------------- ThroughputMonitor


class Items(Dataset):
    """``n`` random vectors; each item takes ``delay`` s to load (a slow data pipeline)."""

    def __init__(self, n: int, delay: float = 0.0) -> None:
        self.x = torch.randn(n, 8, generator=torch.Generator().manual_seed(0))
        self.delay = delay

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        if self.delay:
            time.sleep(self.delay)
        return {"x": self.x[i], "index": i}


class Tiny(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(8, 1)

    @staticmethod
    def batch_size_of(batch: dict) -> int:
        return int(batch["index"].shape[0])

    def training_step(self, batch, batch_idx):
        return self.layer(batch["x"]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit_with_monitor(tmp_path, delay: float) -> dict:
    monitor = ThroughputMonitor(warmup_steps=3)
    trainer = Trainer(
        max_steps=12, accelerator="cpu", devices=1, default_root_dir=tmp_path, logger=False,
        callbacks=[monitor], enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Tiny(), DataLoader(Items(200, delay), batch_size=4))
    written = json.loads((tmp_path / "throughput.json").read_text())
    assert written == json.loads(json.dumps(monitor.summary))
    return written


def test_throughput_monitor_measures_steady_state_and_data_waiting(tmp_path):
    slow = fit_with_monitor(tmp_path / "slow", delay=0.01)  # 40 ms to load a batch of 4
    assert slow["steps"] == 12 and slow["warmup_steps"] == 3 and slow["measured_steps"] == 9
    assert slow["samples_per_step"] == 4 and slow["world_size"] == 1
    assert slow["wait_ms"] >= 35 and slow["wait_fraction"] > 0.5  # the data are the bottleneck
    assert slow["samples_per_s"] < 4 / 0.035  # bounded by the loading time
    elapsed = slow["measured_steps"] * (slow["step_ms"] + slow["wait_ms"]) / 1000
    assert slow["samples_per_s"] == pytest.approx(9 * 4 / elapsed)
    start, end = slow["window_unix"]
    assert 0 < end - start < 60 and abs(end - time.time()) < 60
    fast = fit_with_monitor(tmp_path / "fast", delay=0.0)
    assert fast["wait_fraction"] < slow["wait_fraction"]
    assert fast["samples_per_s"] > slow["samples_per_s"]


def test_batch_items_counts_as_the_method_does():
    class Pairs:
        @staticmethod
        def batch_size_of(batch):
            return int(batch["paired"]["index"].shape[0])

    batch = {"paired": {"index": torch.arange(3)}, "unpaired_audio": {"index": torch.arange(7)}}
    assert batch_items(Pairs(), batch) == 3
    assert batch_items(object(), {"x": [torch.zeros(5, 2)]}) == 5


# ---------------------------------------------------------------- the real thing


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_check_passes(tmp_path):
    """`make gpu-check`: every method, bf16-mixed against fp32, DDP when several GPUs are
    visible (about 5-7 min on one H200)."""
    out = tmp_path / "gpu_check"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True,
        cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-3000:]
    summary = json.loads((out / "gpu_check.json").read_text())
    assert summary["runs"] and all(r["verdict"] == "PASS" for r in summary["runs"])
    assert all(r["busy_mean"] is not None for r in summary["runs"])
