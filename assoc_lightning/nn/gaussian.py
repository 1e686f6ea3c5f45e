"""Diagonal-Gaussian posterior head with reparameterized sampling."""

from __future__ import annotations

import torch
from torch import nn


class GaussianHead(nn.Module):
    """Two linear heads giving ``mu`` and ``logvar`` (Xavier init, zero bias, no activation).

    A single ``Linear(in, 2*dim)`` split in half is the same function; two heads follow
    Hsu et al.'s Gaussian layer.
    """

    def __init__(self, in_features: int, dim: int) -> None:
        super().__init__()
        self.mu = nn.Linear(in_features, dim)
        self.logvar = nn.Linear(in_features, dim)
        for layer in (self.mu, self.logvar):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mu(h), self.logvar(h)


def reparameterize(
    mu: torch.Tensor, logvar: torch.Tensor, num_samples: int, row_seeds: torch.Tensor | None = None
) -> torch.Tensor:
    """``num_samples`` draws ``mu + exp(logvar / 2) * eps``: ``[N, D] -> [N, num_samples, D]``.

    ``row_seeds`` (``[N]`` ints) makes each row's noise a function of its seed alone, so an
    evaluation gives the same samples however the data are batched or sharded across ranks.
    """
    shape = (mu.size(0), num_samples, mu.size(1))
    if row_seeds is None:
        eps = torch.randn(shape, device=mu.device, dtype=mu.dtype)
    else:
        g = torch.Generator()
        eps = torch.stack(
            [
                torch.randn(num_samples, mu.size(1), generator=g.manual_seed(int(s)))
                for s in row_seeds.tolist()
            ]
        ).to(device=mu.device, dtype=mu.dtype)
    return mu.unsqueeze(1) + (0.5 * logvar).exp().unsqueeze(1) * eps
