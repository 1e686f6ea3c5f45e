"""k-nearest-neighbour classification on embeddings, chunked, in fp32, bounded memory.

Cosine similarity (features are L2-normalized). Query and bank are both processed in chunks:
each query chunk keeps a running top-k while it streams through bank chunks, so memory is
O(query_chunk x bank_chunk), never O(Q x N). Ties in similarity go to the lower bank index.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


@torch.no_grad()
def topk_neighbors(
    queries: torch.Tensor,
    bank: torch.Tensor,
    k: int,
    query_chunk: int = 1024,
    bank_chunk: int = 65536,
    exclude_self: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities and indices of the ``k`` most similar bank rows for every query.

    ``exclude_self`` drops bank row i for query i (leave-one-out when queries are the bank).
    Returns ``(sims [Q, k], idx [Q, k])`` sorted by decreasing similarity.
    """
    q = F.normalize(queries.float(), dim=1)
    b = F.normalize(bank.float(), dim=1)
    k = min(k, b.size(0) - int(exclude_self))
    out_s, out_i = [], []
    for qs in range(0, q.size(0), query_chunk):
        qc = q[qs : qs + query_chunk]
        best_s = qc.new_full((qc.size(0), 0), float("-inf"))
        best_i = torch.zeros((qc.size(0), 0), dtype=torch.long, device=q.device)
        for bs in range(0, b.size(0), bank_chunk):
            sims = qc @ b[bs : bs + bank_chunk].T
            if exclude_self:
                rows = torch.arange(qc.size(0), device=q.device)
                cols = rows + qs - bs
                ok = (cols >= 0) & (cols < sims.size(1))
                sims[rows[ok], cols[ok]] = float("-inf")
            s, i = sims.topk(min(k, sims.size(1)), dim=1)
            best_s = torch.cat([best_s, s], dim=1)
            best_i = torch.cat([best_i, i + bs], dim=1)
            if best_s.size(1) > k:
                best_s, j = best_s.topk(k, dim=1)
                best_i = best_i.gather(1, j)
        # deterministic order: by similarity, ties by bank index
        order = torch.argsort(best_i, dim=1)
        best_s, best_i = best_s.gather(1, order), best_i.gather(1, order)
        order = torch.argsort(best_s, dim=1, descending=True, stable=True)
        out_s.append(best_s.gather(1, order))
        out_i.append(best_i.gather(1, order))
    return torch.cat(out_s), torch.cat(out_i)


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
