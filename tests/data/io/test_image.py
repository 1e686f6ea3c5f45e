"""Image decoding helpers."""

from __future__ import annotations

import pytest
import torch

from assoc_lightning.data.io.image import resize_center_crop
from tests.fixtures.images import bands


def test_resize_center_crop_keeps_the_middle():
    out = resize_center_crop(bands(), 16)  # 60x20 -> 48x16 -> centre 16x16 = the green band
    assert out.dtype == torch.uint8 and out.shape == (3, 16, 16)
    assert out[:, :, 4:12].float().mean(dim=(1, 2)).tolist() == pytest.approx([0, 255, 0], abs=3)
    tall = resize_center_crop(bands().rotate(90, expand=True), 16)  # 20x60: shorter side 20
    assert tall.shape == (3, 16, 16)
