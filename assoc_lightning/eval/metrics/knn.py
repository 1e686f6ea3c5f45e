"""k-nearest-neighbour classification on embeddings.

Cosine similarity (features are L2-normalized); the neighbour search is
``eval/metrics/topk.py: topk_neighbors`` (exact, chunked, bounded memory, ties to the lower
bank index).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from assoc_lightning.eval.metrics.topk import topk_neighbors


def weighted_vote(
    sims: torch.Tensor, neighbor_labels: torch.Tensor, num_classes: int, temperature: float
) -> torch.Tensor:
    """Class scores sum_j exp(sim_j / T) over the neighbours of each class (InstDisc/lightly)."""
    weights = (sims / temperature).exp()
    scores = torch.zeros(sims.size(0), num_classes, dtype=weights.dtype, device=sims.device)
    return scores.scatter_add_(1, neighbor_labels, weights)


def majority_vote(neighbor_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Predicted class by neighbour count; ties go to the lowest label (as scikit-learn)."""
    counts = torch.zeros(neighbor_labels.size(0), num_classes, device=neighbor_labels.device)
    counts.scatter_add_(1, neighbor_labels, torch.ones_like(neighbor_labels, dtype=counts.dtype))
    return counts.argmax(dim=1)


def weighted_accuracy(
    sims: torch.Tensor,
    neighbor_labels: torch.Tensor,
    labels: torch.Tensor,
    ks: Sequence[int],
    temperature: float,
    num_classes: int,
) -> dict[int, float]:
    """Weighted-vote top-1 for each k, from one sorted neighbour list per query."""
    out = {}
    for k in ks:
        pred = weighted_vote(sims[:, :k], neighbor_labels[:, :k], num_classes, temperature).argmax(
            1
        )
        out[k] = (pred == labels).float().mean().item()
    return out


def majority_select_k(
    val_neighbor_labels: torch.Tensor,
    val_labels: torch.Tensor,
    test_neighbor_labels: torch.Tensor,
    test_labels: torch.Tensor,
    k_grid: Sequence[int],
    num_classes: int,
) -> tuple[int, float, float]:
    """Majority vote with k chosen on validation accuracy (ties to the smaller k), from
    sorted neighbour labels. Returns ``(k, val_acc, test_acc)``."""

    def acc(neighbors: torch.Tensor, labels: torch.Tensor, k: int) -> float:
        return (majority_vote(neighbors[:, :k], num_classes) == labels).float().mean().item()

    best_k, best_acc = None, -1.0
    for k in sorted(k_grid):
        a = acc(val_neighbor_labels, val_labels, k)
        if a > best_acc:
            best_k, best_acc = k, a
    return best_k, best_acc, acc(test_neighbor_labels, test_labels, best_k)


@torch.no_grad()
def knn_accuracy(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    ks: Sequence[int] = (200, 20),
    temperature: float = 0.1,
    num_classes: int | None = None,
    query_chunk: int = 1024,
    bank_chunk: int = 65536,
) -> dict[int, float]:
    """Weighted cosine kNN top-1 accuracy for each k in ``ks`` (one neighbour search)."""
    num_classes = num_classes or int(max(train_labels.max(), test_labels.max())) + 1
    sims, idx = topk_neighbors(test, train, max(ks), query_chunk, bank_chunk)
    return weighted_accuracy(sims, train_labels[idx], test_labels, ks, temperature, num_classes)


@torch.no_grad()
def majority_knn_select_k(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    val: torch.Tensor,
    val_labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    k_grid: Sequence[int] = (7, 9, 11, 13, 15),
    num_classes: int | None = None,
) -> tuple[int, float, float]:
    """The BMA-Memory / ACIVW protocol: majority-vote kNN, k chosen on validation accuracy
    (ties to the smaller k), reported on test. Returns ``(k, val_acc, test_acc)``."""
    num_classes = (
        num_classes or int(max(train_labels.max(), val_labels.max(), test_labels.max())) + 1
    )
    _, vi = topk_neighbors(val, train, max(k_grid))
    _, ti = topk_neighbors(test, train, max(k_grid))
    return majority_select_k(
        train_labels[vi], val_labels, train_labels[ti], test_labels, k_grid, num_classes
    )
