"""Pull-only alignment (C-MCR's intra-MCR loss): no negatives, just distance between rows."""

from __future__ import annotations

import torch

from assoc_lightning.errors import ConfigError

DISTANCES = ("l2", "sq_l2")


def paired_distance(x: torch.Tensor, y: torch.Tensor, distance: str = "l2") -> torch.Tensor:
    """Mean over rows of ``||x_i - y_i||`` (``"l2"``, as printed in C-MCR Eq. 9) or of its
    square (``"sq_l2"``, = 2 - 2 cos for unit vectors, the form its derivation goes through)."""
    if distance not in DISTANCES:
        raise ConfigError(f"distance must be one of {DISTANCES}, got {distance!r}")
    sq = (x - y).pow(2).sum(-1)
    return (sq if distance == "sq_l2" else sq.clamp_min(1e-12).sqrt()).mean()
