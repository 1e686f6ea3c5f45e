"""Batched on-device augmentation: per-sample draws, seeded, shapes and ranges kept."""

from __future__ import annotations

import pytest
import torch

from assoc_lightning.nn.augment import SimCLRAugment, SpecAugment, WaveAugment


def test_specaugment_masks_each_sample_on_its_own_and_repeats_with_the_seed():
    spec = torch.ones(6, 1, 40, 101)
    aug = SpecAugment(freq_masks=2, freq_width=8, time_masks=2, time_width=15)
    torch.manual_seed(0)
    a = aug(spec)
    torch.manual_seed(0)
    b = aug(spec)
    assert torch.equal(a, b) and a.shape == spec.shape
    masked = (a == 0).flatten(1).sum(1)
    assert (masked > 0).all() and len(set(masked.tolist())) > 1  # different masks per sample
    # whole frequency rows / time columns are masked, nothing else
    for sample in a[:, 0]:
        zero = sample == 0
        rows, cols = zero.all(1), zero.all(0)
        assert torch.equal(zero, rows[:, None] | cols[None, :])


def test_simclr_augment_draws_per_sample_and_keeps_the_range():
    img = torch.rand(1, 3, 32, 32).expand(8, -1, -1, -1).contiguous()  # one image, 8 times
    aug = SimCLRAugment(size=24)
    torch.manual_seed(1)
    out = aug(img)
    assert out.shape == (8, 3, 24, 24) and out.min() >= 0 and out.max() <= 1
    flat = out.flatten(1)
    assert not torch.allclose(flat[0], flat[1])  # copies of one image get different views
    torch.manual_seed(1)
    assert torch.equal(aug(img), out)
    gray = SimCLRAugment(size=28, channels=1, flip_p=0.0)(torch.rand(4, 1, 28, 28))
    assert gray.shape == (4, 1, 28, 28)


# ------------------------------------------------------------------------- WaveAugment
OFF = dict(speed_p=0, pitch_p=0, shift_p=0, reverb_p=0, noise_p=0, gain_p=0)
RATE = 16000


def sine(freq: float, n: int = 4, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(RATE * seconds)) / RATE
    return torch.sin(2 * torch.pi * freq * t)[None].repeat(n, 1)


def peak_hz(x: torch.Tensor) -> float:
    """The strongest frequency of the middle of each clip (Hz, 4/3-Hz bins)."""
    mid = x[:, 2000:14000]
    return (torch.fft.rfft(mid).abs().argmax(-1).float() * RATE / mid.size(-1)).tolist()


def test_wave_augment_off_is_identity_and_draws_repeat_with_the_generator():
    x = torch.randn(8, RATE) * 0.1
    assert torch.equal(WaveAugment(**OFF)(x, torch.Generator().manual_seed(0)), x)
    aug = WaveAugment(pitch_p=0.5)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert a.isfinite().all()
    # per sample: some clips changed, and not all in the same way
    changed = (a - x).abs().amax(-1) > 1e-6
    assert 0 < int(changed.sum()) <= 8


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_frequency_by_the_factor_and_keeps_the_length(factor):
    aug = WaveAugment(**{**OFF, "speed_p": 1.0, "speeds": (factor,)})
    out = aug(sine(440.0), torch.Generator().manual_seed(0))
    assert out.shape == (4, RATE)
    assert peak_hz(out) == pytest.approx([440.0 * factor] * 4, abs=2.0)


@pytest.mark.parametrize("semitones", [-3, 3])
def test_pitch_shift_moves_the_pitch_by_semitones_at_the_same_length(semitones):
    aug = WaveAugment(**{**OFF, "pitch_p": 1.0, "pitch_semitones": (semitones, semitones)})
    out = aug(sine(440.0), torch.Generator().manual_seed(0))
    assert out.shape == (4, RATE)
    assert peak_hz(out) == pytest.approx([440.0 * 2 ** (semitones / 12)] * 4, abs=2.0)


def test_shift_moves_a_click_by_at_most_max_shift():
    x = torch.zeros(16, RATE)
    x[:, 8000] = 1.0
    aug = WaveAugment(**{**OFF, "shift_p": 1.0, "max_shift_s": 0.05})
    out = aug(x, torch.Generator().manual_seed(0))
    where = out.argmax(-1) - 8000
    assert (out.sum(-1) == 1).all() and (where.abs() <= 800).all() and where.unique().numel() > 4


def test_noise_snr_and_gain_fall_in_their_ranges():
    x = sine(300.0, n=32)
    aug = WaveAugment(**{**OFF, "noise_p": 1.0, "snr_db": (10.0, 20.0)})
    noisy = aug(x, torch.Generator().manual_seed(0))
    snr = 10 * torch.log10(x.pow(2).mean(-1) / (noisy - x).pow(2).mean(-1))
    assert (snr > 10 - 1e-3).all() and (snr < 20 + 1e-3).all() and snr.std() > 1
    aug = WaveAugment(**{**OFF, "gain_p": 1.0, "gain_db": (-6.0, 6.0)})
    gain = 20 * torch.log10(aug(x, torch.Generator().manual_seed(0)).abs().amax(-1))
    assert (gain.abs() <= 6 + 1e-3).all() and gain.std() > 1


def test_reverb_keeps_the_level_and_adds_a_decaying_tail():
    x = torch.zeros(4, RATE)
    x[:, 2000:4000] = torch.randn(4, 2000)
    aug = WaveAugment(**{**OFF, "reverb_p": 1.0, "rt60_s": (0.3, 0.3)})
    wet = aug(x, torch.Generator().manual_seed(0))
    rms = lambda v: v.pow(2).mean(-1).sqrt()  # noqa: E731
    assert rms(wet) == pytest.approx(rms(x), rel=1e-4)
    tail = lambda v, a, b: v[:, a:b].pow(2).mean(-1)  # noqa: E731
    assert (tail(x, 4500, 6000) == 0).all() and (tail(wet, 4500, 6000) > 0).all()
    assert (tail(wet, 4500, 5500) > tail(wet, 7000, 8000)).all()  # it decays
