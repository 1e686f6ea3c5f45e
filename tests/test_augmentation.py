"""AudioAugmentation: every method's training waveforms augmented on the device, seeded by
(seed, step), nested batches included, other entries left alone; wired by the CLI."""

from __future__ import annotations

import torch

from assoc_lightning.augmentation import AudioAugmentation
from assoc_lightning.cli import AssocCLI
from assoc_lightning.nn.augment import WaveAugment
from tests.conftest import ROOT


def batch() -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "audio": torch.randn(4, 16000, generator=g) * 0.1,
        "image": torch.rand(4, 1, 28, 28, generator=g),
        "index": torch.arange(4),
        "unpaired": {"audio": torch.randn(3, 16000, generator=g) * 0.1},
        "features": {"audio": torch.randn(3, 40, 101, generator=g)},  # not waveforms
    }


def test_augments_every_waveform_entry_and_nothing_else():
    aug = AudioAugmentation(WaveAugment(noise_p=1.0), seed=0)
    before, after = batch(), batch()
    assert aug.apply(after, aug.generator(torch.device("cpu"), 0)) == 2
    assert not torch.equal(after["audio"], before["audio"])
    assert not torch.equal(after["unpaired"]["audio"], before["unpaired"]["audio"])
    for key in ("image", "index"):
        assert torch.equal(after[key], before[key])
    assert torch.equal(after["features"]["audio"], before["features"]["audio"])


def test_draws_are_a_function_of_seed_and_step():
    aug = AudioAugmentation(WaveAugment(noise_p=1.0), seed=5)
    cpu = torch.device("cpu")
    runs = []
    for step in (3, 3, 4):
        b = batch()
        aug.apply(b, aug.generator(cpu, step))
        runs.append(b["audio"])
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_cli_adds_it_from_the_config_and_null_switches_it_off(tmp_path):
    args = ["--config", str(ROOT / "experiments/ig_embedding.yaml"),
            "--trainer.logger.init_args.save_dir", str(tmp_path)]  # fmt: skip
    on = AssocCLI(
        args=[*args, "--augment", "assoc_lightning.augmentation.AudioAugmentation"], run=False
    )
    found = [c for c in on.trainer.callbacks if isinstance(c, AudioAugmentation)]
    assert len(found) == 1 and isinstance(found[0].augment, WaveAugment)
    off = AssocCLI(args=[*args, "--augment", "null"], run=False)
    assert not any(isinstance(c, AudioAugmentation) for c in off.trainer.callbacks)
