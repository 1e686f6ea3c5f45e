"""Clustering layers over the positions of a conv feature map (DMC, Hu, Nie, Li, CVPR 2019).

``MultimodalClustering``: the layer the audio and the visual subnet share (docs/methods.md, DMC).
A feature map ``[B, C, *positions]`` is a set of p vectors u_i; each is squashed,
g(x) = tanh(10 ||x||) x / ||x||, and projected into k per-cluster spaces,
u_{j|i} = W_j^T u_i in R^d (one W for both modalities, so centre j of the sound and centre j of
the image live in the same subspace). Then R soft-assignment (EM) iterations from b = 0:

    s_{ji} = softmax_j(z b_{ji});  o_j = sum_i s_{ji} u_{j|i};  b_{ji} = <o_j / ||o_j||, u_{j|i}>

(b is updated after every iteration but the last); the centres are g(o_j). This is the
intended weighted sum of the official Keras code, whose batch_dot-then-sum lines can
collapse it when read literally.

``soft_kmeans``: the "Simplified DMC" clustering (Euclidean soft k-means, centres started
from evenly spaced positions, centres = assignment-weighted means).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def as_vectors(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, *positions]`` -> ``[B, p, C]``, positions flattened row-major."""
    return x.flatten(2).transpose(1, 2)


def squash(x: torch.Tensor, scale: float = 10.0, eps: float = 1e-8) -> torch.Tensor:
    """g(x) = tanh(scale ||x||) x / ||x|| along the last axis (DMC's squashing)."""
    norm = x.norm(dim=-1, keepdim=True)
    return torch.tanh(scale * norm) * x / (norm + eps)


class MultimodalClustering(nn.Module):
    """DMC's clustering layer: ``forward(features) -> (centres [B, k, d], assign [B, k, p])``.

    Args:
        in_channels: C of the conv features (512 in the paper).
        num_clusters: k (10).
        dim: d, the width of each cluster's space (16).
        iterations: R soft-assignment iterations (3).
        temperature: z, multiplies b inside the softmax (the code's implicit 1).
        squash_scale: the 10 of g(x) = tanh(10 ||x||) x / ||x||.
    """

    def __init__(
        self,
        in_channels: int = 512,
        num_clusters: int = 10,
        dim: int = 16,
        iterations: int = 3,
        temperature: float = 1.0,
        squash_scale: float = 10.0,
    ) -> None:
        super().__init__()
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}")
        self.num_clusters, self.dim = num_clusters, dim
        self.iterations, self.temperature, self.squash_scale = iterations, temperature, squash_scale
        weight = torch.empty(in_channels, num_clusters * dim)
        nn.init.xavier_uniform_(weight)  # Glorot on the C x (k d) matrix, as the code
        self.weight = nn.Parameter(weight.view(in_channels, num_clusters, dim))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = squash(as_vectors(features), self.squash_scale)  # [B, p, C]
        u_hat = torch.einsum("bpc,ckd->bkpd", u, self.weight)  # [B, k, p, d]
        b = u_hat.new_zeros(u_hat.shape[:3])  # [B, k, p]
        for r in range(self.iterations):
            assign = torch.softmax(self.temperature * b, dim=1)  # over clusters
            out = torch.einsum("bkp,bkpd->bkd", assign, u_hat)
            if r < self.iterations - 1:
                b = torch.einsum("bkd,bkpd->bkp", F.normalize(out, dim=-1), u_hat)
        return squash(out, self.squash_scale), assign


def soft_kmeans(
    vectors: torch.Tensor, num_clusters: int, iterations: int = 4, sharpness: float = 30.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean soft k-means of ``[B, p, C]`` -> ``(centres [B, k, C], assign [B, k, p])``.

    Centres start at k evenly spaced positions; each iteration assigns
    s_ij = softmax_j(-sharpness ||u_i - c_j||) and sets c_j = sum_i s_ij u_i / sum_i s_ij.
    ``assign`` is the last iteration's (the one the returned centres were computed from).
    """
    p = vectors.size(1)
    start = torch.linspace(0, p - 1, num_clusters, device=vectors.device).round().long()
    centres = vectors[:, start]
    for _ in range(iterations):
        dist = torch.cdist(vectors, centres)  # [B, p, k]
        assign = torch.softmax(-sharpness * dist, dim=-1).transpose(1, 2)  # [B, k, p]
        centres = assign @ vectors / assign.sum(-1, keepdim=True).clamp_min(1e-8)
    return centres, assign
