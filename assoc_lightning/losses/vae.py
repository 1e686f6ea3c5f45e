"""The cross-modal VAE associator's two objectives (Jo et al., Eq. 6 and Eq. 7).

Both have the same form, a summed squared error plus a weighted KL-to-prior term written as
the paper writes it, ``-lambda * sum_k (1 + log sigma_k^2 - mu_k^2 - sigma_k^2)``, which is
``2 * lambda * KL(N(mu, sigma^2) || N(0, I))``. Per sample the error is summed over every
element and the term over every latent dimension; the batch is averaged. Each function returns
``(loss, squared_error, kl)`` as batch means, ``kl`` in nats (so ``loss = se + 2 lambda kl``).
"""

from __future__ import annotations

import torch

from assoc_lightning.losses.gaussian import gaussian_kl_standard


def _squared_error_plus_prior(
    target: torch.Tensor, output: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    se = (target - output).pow(2).flatten(1).sum(dim=1).mean()
    kl = gaussian_kl_standard(mu, logvar).mean()
    return se + 2.0 * lam * kl, se, kl


def intra_modal_loss(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    lambda_int: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 6: ``||x_i - D_i(z_i)||^2 - lambda_int sum_k (1 + log s^2 - m^2 - s^2)``.

    ``(mu, logvar)`` is the encoder's posterior q(z_i | x_i), ``x_hat`` the decoder's output for
    a sample of it (the decoder mean: our deterministic-decoder choice).
    """
    return _squared_error_plus_prior(x, x_hat, mu, logvar, lambda_int)


def cross_modal_loss(
    x_target: torch.Tensor,
    x_hat: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    lambda_crs: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 7: ``||x_j - D_j(z_ji)||^2 - lambda_crs sum_k (1 + log s^2 - m^2 - s^2)``.

    ``(mu, logvar)`` is the associator's output q(z_j | x_i) = A_ji(z_i), ``x_hat`` the frozen
    target decoder's output for a sample of it and ``x_target`` the paired item of modality j;
    the KL pulls the associated latent towards the target modality's N(0, I) prior.
    """
    return _squared_error_plus_prior(x_target, x_hat, mu, logvar, lambda_crs)
