"""Image and audio trunks. Paper-specific conv nets live here; named timm/torchvision
trunks join as the methods that need them land."""

from __future__ import annotations

import torch
from torch import nn


def _act_norm(channels: int, batch_norm: bool, dims: int = 2) -> list[nn.Module]:
    norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d}[dims]
    return ([norm(channels)] if batch_norm else []) + [nn.ReLU(inplace=True)]


class LeidalImageEncoder(nn.Module):
    """The IG-embedding paper's image trunk for 1x28x28 digits -> a 512-d hidden vector.

    Conv3x3/64 s1 -> Conv3x3/128 s2 -> Conv3x3/256 s2 (7x7) -> FC 512, ReLU after each.
    ``batch_norm`` adds BN after every layer (off by default: the paper describes none).
    """

    out_features = 512

    def __init__(
        self, in_channels: int = 1, image_size: int = 28, batch_norm: bool = False
    ) -> None:
        super().__init__()
        side = (image_size + 3) // 4
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 64, 3, 1, 1), *_act_norm(64, batch_norm),
            nn.Conv2d(64, 128, 3, 2, 1), *_act_norm(128, batch_norm),
            nn.Conv2d(128, 256, 3, 2, 1), *_act_norm(256, batch_norm),
            nn.Flatten(),
            nn.Linear(256 * side * side, 512), *_act_norm(512, batch_norm, dims=1),
        )  # fmt: skip

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image)


class HsuAudioEncoder(nn.Module):
    """Hsu et al.'s (Interspeech 2017) fbank encoder: ``[B, T, F]`` features -> 512-d hidden.

    Conv 64 with a 1xF kernel (one frame, all bins, 'valid') -> Conv 128 (3x1, stride 2x1,
    'same') -> Conv 256 (3x1, stride 2x1, 'same') -> FC 512, ReLU after each. With the
    frequency axis collapsed by the first layer these are 1-D convolutions over time.
    ``batch_norm`` adds Hsu's BN after every layer (off by default: the IG paper describes none;
    docs/methods.md).
    """

    out_features = 512

    def __init__(
        self, num_mel_bins: int = 80, num_frames: int = 100, batch_norm: bool = False
    ) -> None:
        super().__init__()
        t = (((num_frames + 1) // 2) + 1) // 2
        self.net = nn.Sequential(
            nn.Conv1d(num_mel_bins, 64, 1), *_act_norm(64, batch_norm, dims=1),
            nn.Conv1d(64, 128, 3, 2, 1), *_act_norm(128, batch_norm, dims=1),
            nn.Conv1d(128, 256, 3, 2, 1), *_act_norm(256, batch_norm, dims=1),
            nn.Flatten(),
            nn.Linear(256 * t, 512), *_act_norm(512, batch_norm, dims=1),
        )  # fmt: skip

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats.transpose(1, 2))  # [B, F, T]: frequency bins as channels


def prepare_images(x: torch.Tensor, channels: int, size: int | tuple[int, int]) -> torch.Tensor:
    """uint8 (0-255) or float ([0, 1]) images ``[B, C, H, W]`` (or ``[B, H, W]``) -> float
    [0, 1] with ``channels`` channels (grey averaged or repeated to RGB), resized to
    ``size`` x ``size`` (or ``(H, W)``; bilinear, antialiased) when they are not."""
    x = x.float() / 255.0 if not x.is_floating_point() else x.float()
    if x.dim() == 3:
        x = x.unsqueeze(1)
    if x.size(1) != channels:
        x = x.mean(1, keepdim=True) if channels == 1 else x.expand(-1, 3, -1, -1)
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(x.shape[-2:]) != size:
        x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True)
    return x


def resnet_trunk(
    layers: tuple[int, int, int, int] = (2, 2, 2, 2),
    in_channels: int = 3,
    small_input: bool = False,
    weights: str | None = None,
    width: int = 64,
) -> nn.Module:
    """A BasicBlock ResNet (timm's) without its classifier: ``[B, C, H, W]`` -> ``8 * width``.

    ``(2, 2, 2, 2)`` is ResNet-18; ``(1, 1, 1, 1)`` the "ResNet-10" of BMA-Memory (one block
    per stage; the paper does not define it). ``width`` is the first stage's channels (64:
    the standard 64/128/256/512 and 512-d features; smaller widths keep CPU runs short).
    ``in_channels``: 1 for log-mel spectrograms. ``small_input`` swaps the 7x7/2 stem and
    max-pool for one 3x3/1 conv (the CIFAR variant, for 28-32 px images). ``weights``: a
    local state-dict file (torchvision's ResNet-18 names match) to start from; random init
    by default, nothing is downloaded.
    """
    from timm.models.resnet import BasicBlock, ResNet

    net = ResNet(
        BasicBlock,
        list(layers),
        num_classes=0,
        in_chans=in_channels,
        stem_width=width,
        channels=tuple(width * 2**i for i in range(4)),
    )
    if small_input:
        net.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = net.load_state_dict(state, strict=False)
        if unexpected or missing:
            raise ValueError(
                f"{weights} does not fit a ResNet{layers} of width {width}: missing "
                f"{missing[:3]}, unexpected {unexpected[:3]}"
            )
    net.out_features = 8 * width
    return net
