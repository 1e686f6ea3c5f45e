"""Contrastive losses. Negatives come from the global batch under DDP (gathered with
gradients through ``utils.dist.gather_with_grad``); positives stay local ("local loss")."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from assoc_lightning.utils.dist import gather_no_grad, gather_with_grad, rank


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


def multi_positive_nt_xent(
    z: torch.Tensor, ids: torch.Tensor, temperature: float = 0.1, gather: bool = True
) -> torch.Tensor:
    """NT-Xent with a positive set per anchor (BMA-Memory Eq. 4 and 5).

    Rows with the same ``ids`` entry (e.g. the image and the sound of one clip, or two views
    of one sound) are positives of each other; for anchor i,
    ``-log(sum_{k in P(i)} exp(s_ik / t) / sum_{j != i} exp(s_ij / t))`` with cosine s, and
    the loss is the mean over anchors. With one positive per anchor this is SimCLR's NT-Xent.
    Under DDP every rank's rows (and ids) are gathered, with gradients, as candidates;
    each rank's anchors are its own rows, so the mean over ranks is the loss of the global
    batch. Anchors without any positive are left out of the mean.
    """
    z = F.normalize(z, dim=-1)
    all_z = gather_with_grad(z) if gather else z
    all_ids = gather_no_grad(ids) if gather else ids
    offset = rank() * z.size(0) if all_z.size(0) > z.size(0) else 0
    logits = z @ all_z.T / temperature
    rows = torch.arange(z.size(0), device=z.device)
    self_mask = torch.zeros_like(logits, dtype=torch.bool)
    self_mask[rows, rows + offset] = True
    logits = logits.masked_fill(self_mask, float("-inf"))
    positive = (ids.unsqueeze(1) == all_ids.unsqueeze(0)) & ~self_mask
    has_positive = positive.any(1)
    log_denominator = torch.logsumexp(logits, dim=1)
    log_numerator = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=1)
    per_anchor = (log_denominator - log_numerator)[has_positive]
    if per_anchor.numel() == 0:
        return logits.new_zeros(()) + 0.0 * z.sum()
    return per_anchor.mean()
