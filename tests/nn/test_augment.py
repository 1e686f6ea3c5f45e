"""Batched on-device augmentation: per-sample draws, seeded, shapes and ranges kept."""

from __future__ import annotations

import torch

from assoc_lightning.nn.augment import SimCLRAugment, SpecAugment


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
