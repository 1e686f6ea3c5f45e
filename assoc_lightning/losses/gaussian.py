"""KL divergences of diagonal Gaussians."""

from __future__ import annotations

import torch


def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, summed over the last dim.

    0.5 * sum_k (mu_k^2 + sigma_k^2 - log sigma_k^2 - 1). Returns shape ``mu.shape[:-1]``.
    """
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).sum(dim=-1)
