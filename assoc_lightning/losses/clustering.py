"""Losses on cluster centres (DMC, Hu, Nie, Li, CVPR 2019, and its "Simplified DMC").

DMC matches centre j of a sound with centre j of an image (the shared per-cluster
projections make the indices agree): s(a, v) = sum_j cos(c_j^a, c_j^v), and the triplet
hinge with the image as anchor is max(0, margin + D(a+, v) - D(a-, v)) with one negative
sound per image, drawn from another video of the global batch (gathered with gradients).
The Simplified DMC scores a pair by the nearest centre pair and trains Hadsell et al.'s
contrastive loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from assoc_lightning.utils.dist import gather_with_grad

DISTANCES = ("cosine", "euclidean")


def centre_similarity(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """s(a, v) = sum_j cos(a_j, v_j) for row-aligned centres ``[N, k, d]`` -> ``[N]``."""
    return F.cosine_similarity(a, v, dim=-1).sum(-1)


def centre_distance(a: torch.Tensor, v: torch.Tensor, distance: str = "cosine") -> torch.Tensor:
    """D(a, v) ``[N]`` of row-aligned centres ``[N, k, d]``.

    ``"cosine"``: sum_j (1 - cos(a_j, v_j)) = k - s(a, v) (the official code's score).
    ``"euclidean"``: sum_j ||a_j / ||a_j|| - v_j / ||v_j|| || (between normalised centres).
    """
    if distance == "cosine":
        return a.size(-2) - centre_similarity(a, v)
    if distance == "euclidean":
        diff = F.normalize(a, dim=-1) - F.normalize(v, dim=-1)
        return diff.pow(2).sum(-1).clamp_min(1e-12).sqrt().sum(-1)
    raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")


def min_centre_distance(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Smallest Euclidean distance over all centre pairs, ``[N, ka, d]`` x ``[N, kv, d]`` ->
    ``[N]`` (the Simplified DMC's score)."""
    return torch.cdist(a, v).flatten(1).min(1).values


def sample_negatives(
    ids: torch.Tensor, all_ids: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """One row of the global batch per local row, uniformly among rows of another video
    (``all_ids`` != the row's id). A row whose batch holds no other video gets a random row
    (possibly its own: a constant margin, no gradient)."""
    other = (ids.unsqueeze(1) != all_ids.unsqueeze(0)).float()
    none = other.sum(1) == 0
    other[none] = 1.0
    return torch.multinomial(other, 1, generator=generator).squeeze(1)


def cluster_margin_loss(
    visual: torch.Tensor,
    audio: torch.Tensor,
    negatives: torch.Tensor,
    margin: float | None = None,
    distance: str = "cosine",
    gather: bool = True,
) -> torch.Tensor:
    """DMC's max-margin loss, mean over the local images.

    ``visual``, ``audio``: this rank's row-aligned centres ``[N, k, d]``; ``negatives``: for
    each local image, a row of the global (gathered, with gradients) audio batch.
    L = mean_n max(0, margin + D(a_n, v_n) - D(a_{neg(n)}, v_n)); ``margin`` ``None`` is k.
    Averaged over ranks it equals the loss of the concatenated batch.
    """
    margin = float(visual.size(-2)) if margin is None else margin
    pool = gather_with_grad(audio) if gather else audio
    pos = centre_distance(audio, visual, distance)
    neg = centre_distance(pool[negatives], visual, distance)
    return F.relu(margin + pos - neg).mean()


def pair_contrastive_loss(
    positive: torch.Tensor, negative: torch.Tensor, margin: float = 5.0
) -> torch.Tensor:
    """Hadsell et al.'s contrastive loss over positive and negative pair distances ``[N]``:
    mean of 1/2 d+^2 and 1/2 max(0, margin - d-)^2 over the 2N pairs."""
    terms = torch.cat([positive.pow(2), F.relu(margin - negative).pow(2)])
    return 0.5 * terms.mean()


def simplified_dmc_loss(
    visual: torch.Tensor,
    audio: torch.Tensor,
    negatives: torch.Tensor,
    margin: float = 5.0,
    gather: bool = True,
) -> torch.Tensor:
    """The Simplified DMC's loss: nearest-centre-pair distances of each image to its own
    sound and to the negative sound (a row of the gathered audio centres), contrastive."""
    pool = gather_with_grad(audio) if gather else audio
    pos = min_centre_distance(visual, audio)
    neg = min_centre_distance(visual, pool[negatives])
    return pair_contrastive_loss(pos, neg, margin)
