"""Contrastive losses. Negatives come from the global batch under DDP (gathered with
gradients through ``utils.dist.gather_with_grad``); positives stay local ("local loss")."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from assoc_lightning.utils.dist import gather_with_grad, rank


def info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    temperature: float = 0.07,
    gather: bool = True,
    symmetric: bool = True,
) -> torch.Tensor:
    """InfoNCE between row-aligned ``a`` and ``b`` (cosine similarity / temperature).

    Row i of ``a`` and row i of ``b`` are positives; every other row of the global batch is a
    negative. With ``gather=True`` under DDP, each rank scores its local rows against all
    ranks' rows, so the loss averaged over ranks equals the single-process loss on the
    concatenated batch (and so do the gradients DDP averages).
    """
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    all_a = gather_with_grad(a) if gather else a
    all_b = gather_with_grad(b) if gather else b
    offset = rank() * a.size(0) if all_a.size(0) > a.size(0) else 0
    labels = torch.arange(a.size(0), device=a.device) + offset
    loss = F.cross_entropy(a @ all_b.T / temperature, labels)
    if symmetric:
        loss = 0.5 * (loss + F.cross_entropy(b @ all_a.T / temperature, labels))
    return loss
