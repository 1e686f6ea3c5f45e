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


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int) -> torch.Tensor:
    """``num_samples`` draws ``mu + exp(logvar / 2) * eps``: ``[N, D] -> [N, num_samples, D]``."""
    eps = torch.randn(mu.size(0), num_samples, mu.size(1), device=mu.device, dtype=mu.dtype)
    return mu.unsqueeze(1) + (0.5 * logvar).exp().unsqueeze(1) * eps
