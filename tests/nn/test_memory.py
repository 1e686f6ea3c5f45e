"""BMA-Memory's key-value memory: addressing, switching, the cyclic read's gradients."""

from __future__ import annotations

import math

import pytest
import torch

from assoc_lightning.nn.memory import BimodalMemory, addressing_stats


def small_memory(**kwargs):
    mem = BimodalMemory(num_slots=2, dim=2, temperature=0.5, **kwargs)
    with torch.no_grad():
        mem.slots["image"].copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        mem.slots["audio"].copy_(torch.tensor([[3.0, 0.0], [0.0, -1.0]]))
    return mem


def test_address_and_read_hand_computed():
    mem = small_memory()
    q = torch.tensor([[2.0, 0.0]])  # cos 1 with image slot 0, cos 0 with slot 1
    w = mem.address(q, "image")
    e = math.exp(1 / 0.5)
    assert w[0].tolist() == pytest.approx([e / (e + 1), 1 / (e + 1)], abs=1e-6)
    # key-value switching: an image query reads the *audio* memory's raw rows
    read, weights = mem.recall(q, "image")
    assert torch.equal(weights, w)
    expected = w[0, 0] * torch.tensor([3.0, 0.0]) + w[0, 1] * torch.tensor([0.0, -1.0])
    assert torch.allclose(read[0], expected, atol=1e-6)
    assert mem.other("audio") == "image"
    normed = small_memory(normalize_read=True).recall(q, "image")[0]
    assert torch.allclose(
        normed[0], w[0, 0] * torch.tensor([1.0, 0]) + w[0, 1] * torch.tensor([0, -1.0])
    )


def test_a_sound_only_cyclic_read_trains_the_image_memory():
    # the mechanism behind unpaired learning: sound -> M_s key -> M_v value -> M_v key -> M_s
    mem = BimodalMemory(num_slots=5, dim=4)
    f = torch.randn(3, 4)
    pseudo_image, _ = mem.recall(f, "audio")
    back, _ = mem.recall(pseudo_image, "image")
    back.sum().backward()
    assert mem.slots["image"].grad.abs().sum() > 0 and mem.slots["audio"].grad.abs().sum() > 0


def test_addressing_stats():
    uniform = torch.full((4, 8), 1 / 8)
    stats = addressing_stats(uniform)
    assert stats["address_entropy"].item() == pytest.approx(math.log(8), abs=1e-5)
    onehot = torch.eye(8)[[0, 0, 3, 5]]
    stats = addressing_stats(onehot)
    assert stats["address_entropy"].item() == pytest.approx(0.0, abs=1e-5)
    assert stats["slot_usage"].item() == pytest.approx(3 / 8)


def test_bad_arguments():
    with pytest.raises(ValueError, match="temperature"):
        BimodalMemory(temperature=0.0)
