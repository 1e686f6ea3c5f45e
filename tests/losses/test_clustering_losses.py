"""DMC's centre score and margin loss, the Simplified DMC's contrastive loss, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from assoc_lightning.losses.clustering import (
    centre_distance,
    centre_similarity,
    cluster_margin_loss,
    min_centre_distance,
    pair_contrastive_loss,
    sample_negatives,
    simplified_dmc_loss,
)

# two pairs, k = 2 centres of d = 2
V = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [3.0, 0.0]]])
A = torch.tensor([[[2.0, 0.0], [1.0, 1.0]], [[0.0, 1.0], [0.0, -1.0]]])
R2 = 1 / math.sqrt(2)


def test_score_is_sum_of_same_index_cosines():
    # pair 0: cos 1 + cos 45 deg; pair 1: cos 45 deg + cos 90 deg
    expected = torch.tensor([1 + R2, R2 + 0.0])
    assert torch.allclose(centre_similarity(A, V), expected)
    assert torch.allclose(centre_distance(A, V), 2 - expected)
    # euclidean between normalised centres: |u - w| = sqrt(2 - 2 cos)
    eu = torch.tensor([0 + math.sqrt(2 - 2 * R2), math.sqrt(2 - 2 * R2) + math.sqrt(2)])
    assert torch.allclose(centre_distance(A, V, "euclidean"), eu)
    with pytest.raises(ValueError):
        centre_distance(A, V, "manhattan")


def test_margin_loss_by_hand_with_default_margin_k():
    # D+ = 2 - s: pair 0 1 - 1/sqrt2, pair 1 2 - 1/sqrt2. Negatives swap the sounds:
    # v_0 vs a_1: cos 90 deg + cos 180 deg = -1, D- = 3; v_1 vs a_0: 2 cos 45 deg, D- = 2 - sqrt2
    neg = torch.tensor([1, 0])
    # margin k = 2: pair 0 max(0, 2 + 1 - R2 - 3) = 0; pair 1 2 + 2 - R2 - 2 + 2 R2 = 2 + R2
    assert cluster_margin_loss(V, A, neg).item() == pytest.approx((2 + R2) / 2, rel=1e-6)
    assert cluster_margin_loss(V, A, neg, margin=0.5).item() == pytest.approx(
        (0.5 + R2) / 2, rel=1e-6
    )


def test_simplified_loss_nearest_centre_pair_and_hadsell():
    # pair 0: nearest pair (1,0)-(2,0) = 1; pair 1: (1,1)-(0,1) = 1
    assert torch.allclose(min_centre_distance(V, A), torch.tensor([1.0, 1.0]))
    pos, neg = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 6.0])
    assert pair_contrastive_loss(pos, neg).item() == pytest.approx(0.5 * (1 + 4 + 4 + 0) / 4)
    # negatives swap the sounds: v_0 vs a_1 nearest = (0,2)-(0,1) = 1; v_1 vs a_0 = 0
    got = simplified_dmc_loss(V, A, torch.tensor([1, 0]), margin=5.0)
    expected = 0.5 * (1 + 1 + 4**2 + 5**2) / 4
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_negatives_come_from_other_videos_only():
    ids = torch.tensor([0, 0, 1, 2])
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        neg = sample_negatives(ids, ids, g)
        assert (ids[neg] != ids).all()
    assert sample_negatives(torch.tensor([5]), torch.tensor([5])).tolist() == [0]


def test_gradients_reach_both_modalities_and_the_negative():
    v, a = V.clone().requires_grad_(), A.clone().requires_grad_()
    cluster_margin_loss(v, a, torch.tensor([1, 0])).backward()
    assert v.grad.abs().sum() > 0 and a.grad[0].abs().sum() > 0 and a.grad[1].abs().sum() > 0
