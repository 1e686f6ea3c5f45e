"""Plain VGG conv trunks (3x3 conv + ReLU, 'same' padding, 2x2 max-pools, no BN) for DMC.

``vgg16_conv``: torchvision VGG16's ``features`` without pool5 (so a torchvision VGG16 state
dict loads into it at ``width`` 1); ``vggish_dmc``: DMC's VGGish-like audio subnet. ``width``
divides every channel count (512 -> 512 / width) to keep CPU runs small.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
VGGISH_DMC = (64, "M", 128, "M", 256, 256, "M", 512, 512)


def conv_stack(
    config: tuple, in_channels: int, width: int = 1, batch_norm: bool = False
) -> nn.Sequential:
    """torchvision's ``make_layers`` layout: Conv2d(3, pad 1) (+ BatchNorm, the ``vgg16_bn``
    layout) + ReLU per number, pool per M."""
    layers: list[nn.Module] = []
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
            continue
        out = max(1, item // width)
        layers.append(nn.Conv2d(in_channels, out, 3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(nn.ReLU(inplace=True))
        in_channels = out
    stack = nn.Sequential(*layers)
    init_vgg(stack)
    return stack


def init_vgg(stack: nn.Module) -> None:
    """torchvision VGG's initialisation: Kaiming-normal (fan out, ReLU) convs, zero biases,
    unit BatchNorm. PyTorch's default conv init (small weights, uniform biases) shrinks the
    signal through 13 plain convs until the bias terms dominate and the last map no longer
    depends on the input; Keras' (the official code's) Glorot weights with zero biases keep
    it input-dependent but scaled down by ~100x."""
    for m in stack.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def vgg16_conv(
    in_channels: int = 3, width: int = 1, weights: str | None = None, batch_norm: bool = False
) -> nn.Sequential:
    """VGG16 blocks 1-5 without pool5 (stride 16, 512 / width channels), random init or the
    ``features`` of a local torchvision VGG16 (``vgg16_bn`` with ``batch_norm``) state dict
    (never downloaded)."""
    trunk = conv_stack(VGG16, in_channels, width, batch_norm)
    if weights is not None:
        if width != 1 or in_channels != 3:
            raise ValueError("visual_weights need width 1 and 3 input channels (VGG16 itself)")
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if "classifier" not in k}
        trunk.load_state_dict(state)
    return trunk


def vggish_dmc(width: int = 1, batch_norm: bool = False) -> nn.Sequential:
    """DMC's audio subnet on ``[B, 1, frames, mels]``: stride 8, 512 / width channels."""
    return conv_stack(VGGISH_DMC, 1, width, batch_norm)


def channels_of(trunk: nn.Sequential) -> int:
    """Output channels of a conv stack."""
    return [m for m in trunk if isinstance(m, nn.Conv2d)][-1].out_channels
