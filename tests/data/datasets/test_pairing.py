"""Class pairing: the stratified paired fraction."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_lightning.data.datasets.pairing import stratified_fraction


def test_stratified_fraction():
    labels = np.repeat(np.arange(5), 100)
    keep = stratified_fraction(labels, 0.01, seed=0)
    assert np.bincount(labels[keep]).tolist() == [1] * 5
    assert (stratified_fraction(labels, 0.01, seed=0) == keep).all()
    with pytest.raises(ValueError, match="paired_fraction"):
        stratified_fraction(labels, 0.0, seed=0)
