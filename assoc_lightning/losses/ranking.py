"""Sampled margin-ranking loss (Harwath et al., NIPS 2016; DAVEnet)."""

from __future__ import annotations

import torch

from assoc_lightning.errors import ConfigError


def impostor_indices(
    num_local: int,
    group_size: int,
    num_global: int,
    offset: int = 0,
    exclude_group: bool = True,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A uniformly drawn impostor row for each local row of a (possibly gathered) batch.

    The global batch has ``num_global`` rows in consecutive groups of ``group_size`` (e.g.
    the samples drawn from one input's posterior); the local rows are
    ``offset .. offset + num_local - 1``. Each impostor lies outside its row's group, or with
    ``exclude_group=False`` is merely a different row. O(N), no N x N weights.
    """
    rows = torch.arange(offset, offset + num_local, device=device)
    if exclude_group:
        if num_global <= group_size:
            raise ConfigError("sampled margin ranking needs at least two inputs in a batch")
        start = (rows // group_size) * group_size
        r = torch.randint(num_global - group_size, (num_local,), device=device)
        return r + group_size * (r >= start)
    r = torch.randint(num_global - 1, (num_local,), device=device)
    return r + (r >= rows)


def sampled_margin_ranking_loss(
    image: torch.Tensor,
    audio: torch.Tensor,
    image_impostor: torch.Tensor,
    audio_impostor: torch.Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
    image_pool: torch.Tensor | None = None,
    audio_pool: torch.Tensor | None = None,
) -> torch.Tensor:
    """Triplet hinge on dot-product similarity, one impostor per direction per pair.

    For positive pair j (image v_j, audio a_j) with impostor audio index p and impostor
    image index q:
    ``max(0, m + v_j.a_p - v_j.a_j) + max(0, m + v_q.a_j - v_j.a_j)``.

    Args:
        image, audio: ``[N, D]`` embeddings; row j of each is a positive pair.
        image_impostor, audio_impostor: ``[N]`` indices of the impostor image / audio rows
            in the pools.
        margin: hinge margin (1 in the IG paper).
        reduction: ``"mean"`` over pairs (DAVEnet code) or ``"sum"`` (Harwath 2016).
        image_pool, audio_pool: rows impostors are taken from (default: ``image``/``audio``);
            under DDP the batch gathered from all ranks, with gradients.
    """
    image_pool = image if image_pool is None else image_pool
    audio_pool = audio if audio_pool is None else audio_pool
    pos = (image * audio).sum(-1)
    imp_audio = (image * audio_pool[audio_impostor]).sum(-1)
    imp_image = (image_pool[image_impostor] * audio).sum(-1)
    loss = (margin + imp_audio - pos).clamp_min(0) + (margin + imp_image - pos).clamp_min(0)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ConfigError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
