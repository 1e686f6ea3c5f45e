"""Explicit weight penalties (for papers that state them as part of the loss)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def weight_norm_penalty(modules: Iterable[nn.Module], squared: bool = False) -> torch.Tensor:
    """Sum over conv kernels and linear weight matrices of their Frobenius norm.

    Biases and normalization parameters are excluded. ``squared=True`` gives the usual L2
    (sum of squares) instead of the norm itself.
    """
    terms = []
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d):
                w = m.weight
                terms.append(w.pow(2).sum() if squared else w.norm())
    if not terms:
        return torch.zeros(())
    return torch.stack(terms).sum()
