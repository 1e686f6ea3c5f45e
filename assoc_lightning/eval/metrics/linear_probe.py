"""Linear probe: a multinomial logistic regression on frozen, standardized features.

Deterministic (L-BFGS, no data shuffling); the inverse regularization C is chosen from a grid
on the validation split when one is given. scikit-learn does the fitting.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def fit_linear_probe(
    train: np.ndarray,
    train_labels: np.ndarray,
    val: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    c_grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    max_iter: int = 1000,
):
    """The fitted probe (a scikit-learn pipeline) and its C: best on val, the middle of the
    grid without val."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fit(c: float):
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
        return clf.fit(np.asarray(train, np.float64), train_labels)

    return select_c(fit, c_grid, val, val_labels)


def select_c(fit, c_grid: Sequence[float], val: np.ndarray | None, val_labels: np.ndarray | None):
    """``(model, C)`` of ``fit(C)`` over the grid: best on val (ties to the first C), the
    middle of the grid without val (fitting only that one)."""
    grid = list(c_grid)
    if val is not None and len(grid) > 1:
        models = {c: fit(c) for c in grid}
        scores = [models[c].score(np.asarray(val, np.float64), val_labels) for c in grid]
        best_c = grid[int(np.argmax(scores))]
        return models[best_c], best_c
    best_c = grid[len(grid) // 2]
    return fit(best_c), best_c


def linear_probe_accuracy(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    test_labels: np.ndarray,
    val: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    c_grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0),
    max_iter: int = 1000,
) -> tuple[float, float]:
    """Test top-1 of the probe and the C used (best on val; the middle of the grid without val)."""
    model, best_c = fit_linear_probe(train, train_labels, val, val_labels, c_grid, max_iter)
    return float(model.score(np.asarray(test, np.float64), test_labels)), best_c
