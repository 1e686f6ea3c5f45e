"""Bad input a user can reach through the CLI: one clear message (exit 2, no traceback) naming
the thing and what was expected, and nothing on disk lost. Readers and caches have their own
bad cases beside their tests (tests/data/, tests/features/, tests/nn/, tests/eval/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from assoc_lightning.cli import main
from tests.conftest import ROOT, TINY_SPEAKERS
from tests.fixtures.idx import make_mnist
from tests.fixtures.speech_commands import make_gsc

CMCR = str(ROOT / "experiments/cmcr.yaml")
VAE = str(ROOT / "experiments/vae_associator.yaml")


def paired_data(root: Path) -> list[str]:
    """MNIST (60 training images) and a Speech Commands tree whose "seven" folder is empty."""
    make_mnist(root, n_train=60, n_test=20)
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    gsc = root / "SpeechCommands" / "speech_commands_v0.02"
    make_gsc(gsc, words=words + ("go", "stop", "left", "right"))
    for wav in (gsc / "seven").iterdir():
        wav.unlink()
    return ["--data.class_path", "PairedDataModule", "--data.init_args.data_dir", str(root),
            "--data.init_args.image_options", "{val_size: 10}"]  # fmt: skip


# (case, config, extra arguments (a callable of the tmp dir gives them), message expected)
CASES = [
    ("paired fraction 0", VAE, ["--data.init_args.paired_fraction", "0"],
     r"paired_fraction must be in \(0, 1\], got 0"),
    ("too few talkers", CMCR, ["--data.init_args.num_speakers", "4"],
     "num_speakers must be at least 6"),
    ("batch size 0", VAE, ["--data.init_args.batch_size", "0"],
     "batch_size must be an integer >= 1, got 0"),
    ("unknown scenario", VAE, ["--data.class_path", "PairedDataModule",
                               "--data.init_args.scenario", "klingon"], "unknown scenario 'klingon'"),
    ("unknown dataset", VAE, ["--data.class_path", "MultiPairedDataModule",
                              "--data.init_args.scenario", "null",
                              "--data.init_args.datasets", "[mnsit, mnist]"],
     "unknown dataset 'mnsit'; known datasets"),
    ("unknown consistency mode", CMCR, ["--model.init_args.consistency", "maximum"],
     "consistency must be one of"),
    ("unknown VAE input kind", VAE, ["--model.init_args.modalities", "{image: image99, audio: mfcc}"],
     "unknown input kinds"),
    ("missing checkpoint", CMCR, ["--ckpt_path", "nope.ckpt"], "checkpoint not found: nope.ckpt"),
    ("nothing to resume", VAE, ["--ckpt_path", "last"], "no run to resume under"),
    ("data dir under a file", CMCR, lambda tmp: ["--data.init_args.data_dir", str(tmp / "f" / "d")],
     "cannot write the cache"),
    ("val_size past the MNIST file", VAE,
     lambda tmp: [*paired_data(tmp / "data"), "--data.init_args.image_options", "{val_size: 60}"],
     "val_size=60 must leave training images: .* holds 60"),
    ("an empty word folder", VAE, lambda tmp: paired_data(tmp / "data"),
     r"(?s)dataset not found: speech_commands.*missing: any <speaker>_nohash_<n>.wav in .*seven"),
    ("a Lightning misconfiguration", VAE, ["--trainer.limit_train_batches", "-1"],
     "limit_train_batches"),
]  # fmt: skip


@pytest.mark.parametrize("case, config, extra, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_message_and_nothing_is_lost(
    case, config, extra, message, digits_dir, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_text("a file where a folder is expected")
    earlier = tmp_path / "runs" / "earlier" / "version_0"  # a finished run of another config
    (earlier / "checkpoints").mkdir(parents=True)
    (earlier / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (earlier / "metrics.csv").write_text("epoch,step,train/loss\n0,9,1.5\n")
    args = extra(tmp_path) if callable(extra) else extra
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--config", config, "--data.init_args.data_dir", str(digits_dir),
              "--data.init_args.num_speakers", str(TINY_SPEAKERS),
              "--trainer.logger.init_args.save_dir", "runs", *args])  # fmt: skip
    err = capsys.readouterr().err
    assert exc.value.code == 2, err[-2000:]
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
    assert re.search(message, err), err[-2000:]
    assert (earlier / "checkpoints" / "last.ckpt").read_bytes() == b"weights"
    assert (earlier / "metrics.csv").read_text() == "epoch,step,train/loss\n0,9,1.5\n"
