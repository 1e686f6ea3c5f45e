"""Losses as pure functions; each is unit-tested against hand-computed values."""

from assoc_lightning.losses.contrastive import info_nce, multi_positive_nt_xent
from assoc_lightning.losses.gaussian import gaussian_kl_standard
from assoc_lightning.losses.ranking import impostor_indices, sampled_margin_ranking_loss
from assoc_lightning.losses.regularizers import weight_norm_penalty

__all__ = [
    "gaussian_kl_standard",
    "impostor_indices",
    "info_nce",
    "multi_positive_nt_xent",
    "sampled_margin_ranking_loss",
    "weight_norm_penalty",
]
