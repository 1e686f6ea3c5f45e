"""Per-modality convolutional VAEs and variational associators (Jo et al., docs/methods.md).

The paper's architecture appendix is unavailable; these are our choices (also in
docs/methods.md, VAE associator):

- ``image28`` (1x28x28 MNIST / F-MNIST): Conv 32, Conv 64 (4x4, stride 2, pad 1: 28->14->7),
  FC 512, Gaussian head; sigmoid output.
- ``sign52`` (3x52x52 GTSRB): Conv 32, 64, 128, 256 (3x3, stride 2, pad 1: 52->26->13->7->4),
  FC 512, Gaussian head; sigmoid output.
- ``mfcc`` (1x40x101 standardized MFCC): Conv 32, 64, 128 (4x4, stride 2, pad 1:
  40x101 -> 20x50 -> 10x25 -> 5x12), FC 512, Gaussian head; linear output.
- Decoders mirror their encoder: FC 512, FC to the last feature map, then transposed convs
  whose output padding restores each encoder size exactly (so no crop is needed).
- ReLU after every hidden layer; no normalization layers (their statistics would move in
  phase 2, where the VAEs must stay frozen).
- Associator: MLP z_i -> 512 -> ReLU -> 512 -> ReLU -> Gaussian head of the target size.
"""

from __future__ import annotations

import torch
from torch import nn

from assoc_lightning.errors import ConfigError
from assoc_lightning.nn.gaussian import GaussianHead

# kind -> (input shape, conv channels, kernel size, output activation)
KINDS: dict[str, tuple[tuple[int, int, int], tuple[int, ...], int, str]] = {
    "image28": ((1, 28, 28), (32, 64), 4, "sigmoid"),
    "sign52": ((3, 52, 52), (32, 64, 128, 256), 3, "sigmoid"),
    "mfcc": ((1, 40, 101), (32, 64, 128), 4, "linear"),
}


def _conv_out(size: int, kernel: int, stride: int = 2, pad: int = 1) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class ConvVAE(nn.Module):
    """Conv encoder -> ``(mu, logvar)``; FC + transposed-conv decoder back to ``in_shape``.

    Args:
        in_shape: ``(channels, height, width)`` of the input and the output.
        channels: conv widths, each layer stride 2.
        kernel: conv kernel size (padding 1).
        latent_dim: size of z.
        hidden: width of the fully connected layer on both sides.
        output: ``"sigmoid"`` (data in [0, 1]) or ``"linear"``.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        channels: tuple[int, ...],
        kernel: int,
        latent_dim: int,
        hidden: int = 512,
        output: str = "sigmoid",
    ) -> None:
        super().__init__()
        if output not in ("sigmoid", "linear"):
            raise ConfigError(f"output must be 'sigmoid' or 'linear', got {output!r}")
        self.in_shape, self.latent_dim = tuple(in_shape), latent_dim
        sizes = [tuple(in_shape[1:])]
        for _ in channels:
            sizes.append(tuple(_conv_out(s, kernel) for s in sizes[-1]))
        widths = [in_shape[0], *channels]
        enc: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            enc += [nn.Conv2d(c_in, c_out, kernel, 2, 1), nn.ReLU(inplace=True)]
        self.last_map = (channels[-1], *sizes[-1])
        flat = channels[-1] * sizes[-1][0] * sizes[-1][1]
        self.encoder = nn.Sequential(*enc, nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(True))
        self.head = GaussianHead(hidden, latent_dim)
        dec: list[nn.Module] = []
        for i in range(len(channels), 0, -1):
            h, w = sizes[i]
            th, tw = sizes[i - 1]
            pad = (th - ((h - 1) * 2 - 2 + kernel), tw - ((w - 1) * 2 - 2 + kernel))
            dec.append(nn.ConvTranspose2d(widths[i], widths[i - 1], kernel, 2, 1, pad))
            if i > 1:
                dec.append(nn.ReLU(inplace=True))
        if output == "sigmoid":
            dec.append(nn.Sigmoid())
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ReLU(True),
            nn.Linear(hidden, flat), nn.ReLU(True),
            nn.Unflatten(1, self.last_map),
            *dec,
        )  # fmt: skip

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of q(z | x), each ``[B, latent_dim]``."""
        return self.head(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder mean for ``z``: ``[B, *in_shape]``."""
        return self.decoder(z)


def vae_for(kind: str, latent_dim: int = 64, hidden: int = 512) -> ConvVAE:
    """The VAE for an input kind (``image28``, ``sign52``, ``mfcc``; see the module docstring)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown input kind {kind!r}; choose from {sorted(KINDS)}")
    shape, channels, kernel, output = KINDS[kind]
    return ConvVAE(shape, channels, kernel, latent_dim, hidden, output)


class Associator(nn.Module):
    """Variational associator A_ji: z_i -> ``(mu, logvar)`` of q(z_j | x_i) in z_j's size."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.ReLU(True), nn.Linear(hidden, hidden), nn.ReLU(True)
        )
        self.head = GaussianHead(hidden, out_dim)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.net(z))
