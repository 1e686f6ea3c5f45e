"""Transfer evaluation math: kNN (k chosen on val) and a linear probe on another data set's
frozen features, at segment level and, for clips cut into segments, at clip level.

Clip level (the DCASE protocol for 10-s scenes cut into 2-s segments): each clip's segment
scores are averaged before the argmax: the kNN vote fractions (with one k, the same as summing
the vote counts, which is what is done, so ties stay exact) or the probe's class
probabilities (the linear SVM's decision scores). Ties go to the lowest class. A clip's label
is its segments' most common one.

The linear classifier is the logistic-regression probe (the default) or, as the DMC / SoundNet
protocol on ESC-50 and DCASE, a linear SVM (scikit-learn ``LinearSVC`` on standardized
features, C chosen on val the same way).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from assoc_lightning.eval.metrics.knn import majority_select_k, majority_vote, topk_neighbors
from assoc_lightning.eval.metrics.linear_probe import fit_linear_probe, select_c

CLASSIFIERS = ("logistic", "linear_svm")


def vote_counts(neighbor_labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Neighbour counts per class ``[Q, C]`` (float64) from ``[Q, k]`` neighbour labels."""
    labels = neighbor_labels.cpu()
    counts = torch.zeros(labels.size(0), num_classes, dtype=torch.float64)
    return counts.scatter_add_(1, labels, torch.ones(labels.shape, dtype=torch.float64))


def clip_accuracy(scores: np.ndarray, labels: np.ndarray, clip_ids: np.ndarray) -> float:
    """Top-1 over clips of the per-clip mean of segment ``scores`` ``[N, C]``."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    clips, inverse = np.unique(np.asarray(clip_ids), return_inverse=True)
    sums = np.zeros((clips.size, scores.shape[1]))
    np.add.at(sums, inverse, scores)
    counts = np.bincount(inverse, minlength=clips.size)[:, None]
    pred = np.argmax(sums / counts, axis=1)
    votes = np.zeros((clips.size, int(labels.max()) + 1), dtype=np.int64)
    np.add.at(votes, (inverse, labels), 1)
    return float((pred == votes.argmax(axis=1)).mean())


def knn_transfer(
    train: torch.Tensor,
    train_labels: torch.Tensor,
    test: torch.Tensor,
    test_labels: torch.Tensor,
    val: torch.Tensor | None,
    val_labels: torch.Tensor | None,
    k_grid: Sequence[int],
    num_classes: int,
    test_clips: np.ndarray | None = None,
    query_chunk: int = 1024,
    bank_chunk: int = 65536,
) -> dict[str, float]:
    """Majority-vote cosine kNN against ``train``: ``knn_top1`` with k chosen on val (ties to
    the smaller k; without val the middle of the grid), ``knn_k``, and ``knn_clip_top1``."""
    grid = sorted(k_grid)
    _, ti = topk_neighbors(test, train, grid[-1], query_chunk, bank_chunk)
    test_neighbors = train_labels[ti]
    if val is not None:
        _, vi = topk_neighbors(val, train, grid[-1], query_chunk, bank_chunk)
        k, _, acc = majority_select_k(
            train_labels[vi], val_labels, test_neighbors, test_labels, grid, num_classes
        )
    else:
        k = grid[len(grid) // 2]
        acc = (majority_vote(test_neighbors[:, :k], num_classes) == test_labels).float().mean()
        acc = float(acc)
    out = {"knn_top1": acc, "knn_k": float(k)}
    if test_clips is not None:
        counts = vote_counts(test_neighbors[:, :k], num_classes).numpy()
        out["knn_clip_top1"] = clip_accuracy(counts, test_labels.numpy(), test_clips)
    return out


def linear_transfer(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    val: np.ndarray | None,
    val_labels: np.ndarray | None,
    c_grid: Sequence[float],
    max_iter: int,
    test_clips: np.ndarray | None = None,
    classifier: str = "logistic",
) -> dict[str, float]:
    """The linear probe (``metrics/linear_probe.py``) or, with ``classifier="linear_svm"``,
    :func:`fit_linear_svm`: ``linear_top1`` and, from the mean class probabilities (SVM:
    decision scores) of each clip's segments, ``linear_clip_top1``."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
    fit = fit_linear_probe if classifier == "logistic" else fit_linear_svm
    model, _ = fit(train, train_labels, val, val_labels, c_grid, max_iter)
    test = np.asarray(test, np.float64)
    out = {"linear_top1": float(model.score(test, test_labels))}
    if test_clips is not None:
        classes = model.classes_  # the classifier knows only the classes it was trained on
        width = int(max(classes.max(), test_labels.max())) + 1
        if classifier == "logistic":
            scores = np.zeros((len(test), width))
            scores[:, classes] = model.predict_proba(test)
        else:  # classes never trained on score -inf, so the argmax never picks them
            scores = np.full((len(test), width), -np.inf)
            scores[:, classes] = svm_scores(model, test)
        out["linear_clip_top1"] = clip_accuracy(scores, test_labels, test_clips)
    return out


def fit_linear_svm(
    train: np.ndarray,
    train_labels: np.ndarray,
    val: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    c_grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    max_iter: int = 1000,
):
    """A linear SVM (one-vs-rest ``LinearSVC``, squared hinge, seeded) on standardized
    features, and its C: best on val (ties to the first C of the grid), the middle of the
    grid without val, as :func:`fit_linear_probe`."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    def fit(c: float):
        svm = LinearSVC(C=c, max_iter=max_iter, random_state=0)
        return make_pipeline(StandardScaler(), svm).fit(np.asarray(train, np.float64), train_labels)

    return select_c(fit, c_grid, val, val_labels)


def svm_scores(model, x: np.ndarray) -> np.ndarray:
    """Decision scores ``[N, len(classes_)]`` (a two-class SVM's one score as ``-s, s``)."""
    scores = model.decision_function(np.asarray(x, np.float64))
    return np.stack([-scores, scores], 1) if scores.ndim == 1 else scores
