"""Cluster purity of embeddings under K-means (the IG paper's semantic-clustering metric)."""

from __future__ import annotations

import numpy as np


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """(1/N) sum over clusters of the size of the cluster's most common label."""
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    total = 0
    for c in np.unique(clusters):
        total += np.bincount(labels[clusters == c]).max()
    return float(total / labels.size)


def kmeans_purity(embeddings: np.ndarray, labels: np.ndarray, k: int = 10, seed: int = 0) -> float:
    """Purity of a K-means (k clusters, 10 restarts) partition of ``embeddings``."""
    from sklearn.cluster import KMeans

    clusters = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(
        np.asarray(embeddings, dtype=np.float64)
    )
    return purity(labels, clusters)
