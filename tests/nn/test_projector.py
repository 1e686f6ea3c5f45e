"""The MLP projector."""

from __future__ import annotations

from torch import nn

from assoc_lightning.nn.projector import MLPProjector


def test_projector_matches_the_released_size():
    proj = MLPProjector(512, 1024, 512)
    assert sum(p.numel() for p in proj.parameters()) == 1_053_184  # "2.1M" for two
    assert not isinstance(proj[-1], nn.ReLU)
    assert isinstance(MLPProjector(8, 16, 8, final_relu=True)[-1], nn.ReLU)
