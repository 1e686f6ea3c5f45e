"""Losses as pure functions against hand-computed values (ranking, KL, weight norm, InfoNCE, C-MCR's pull terms, the VAE associator's Eq. 6/7)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from assoc_lightning.losses import (
    gaussian_kl_standard,
    impostor_indices,
    multi_positive_nt_xent,
    sampled_margin_ranking_loss,
    weight_norm_penalty,
)
from assoc_lightning.losses.alignment import paired_distance
from assoc_lightning.losses.vae import cross_modal_loss, intra_modal_loss


def test_kl_standard_hand_computed():
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [0.0, 0.0]])
    # row 0: 0.5*[(1 + 1 - 0 - 1) + (0 + 2 - ln2 - 1)] = 0.5*(2 - ln2)
    expected = torch.tensor([0.5 * (2 - math.log(2.0)), 0.0])
    assert torch.allclose(gaussian_kl_standard(mu, logvar), expected)


def test_kl_matches_torch_distributions():
    mu, logvar = torch.randn(5, 7), torch.randn(5, 7)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = torch.distributions.kl_divergence(q, p).sum(-1)
    assert torch.allclose(gaussian_kl_standard(mu, logvar), ref, atol=1e-5)


def test_margin_ranking_hand_computed():
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    a = torch.tensor([[0.5, 0.0], [0.0, 2.0]])
    imp = torch.tensor([1, 0])
    # pair 0: pos 0.5; v0.a1 = 0 -> max(0, 1 + 0 - .5) = .5; v1.a0 = 0 -> .5   => 1.0
    # pair 1: pos 2.0; v1.a0 = 0 -> max(0, 1 - 2) = 0;   v0.a1 = 0 -> 0     => 0.0
    assert sampled_margin_ranking_loss(v, a, imp, imp, reduction="sum").item() == pytest.approx(1.0)
    assert sampled_margin_ranking_loss(v, a, imp, imp, reduction="mean").item() == pytest.approx(
        0.5
    )


def test_margin_ranking_uses_pools():
    v = torch.tensor([[1.0, 0.0]])
    a = torch.tensor([[1.0, 0.0]])
    pool = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
    idx = torch.tensor([1])
    # audio impostor: v.pool[1] = 3 -> 1 + 3 - 1 = 3; image impostor: pool[1].a = 3 -> 3
    loss = sampled_margin_ranking_loss(v, a, idx, idx, image_pool=pool, audio_pool=pool)
    assert loss.item() == pytest.approx(6.0)


def test_margin_ranking_bad_reduction():
    x = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="reduction"):
        sampled_margin_ranking_loss(
            x, x, torch.tensor([1, 0]), torch.tensor([1, 0]), reduction="max"
        )


def test_impostors_avoid_own_group_and_cover_the_rest():
    torch.manual_seed(0)
    group, n_global, offset, n_local = 4, 32, 8, 8  # local rows 8..15 are groups 2 and 3
    seen = set()
    for _ in range(200):
        imp = impostor_indices(n_local, group, n_global, offset)
        rows = torch.arange(offset, offset + n_local)
        assert (imp // group != rows // group).all()
        assert ((imp >= 0) & (imp < n_global)).all()
        seen.update(imp.tolist())
    assert seen == set(range(n_global))  # group 2's rows are group 3's impostors and vice versa
    # without group exclusion a row is only never its own impostor
    imp = impostor_indices(6, 3, 6, 0, exclude_group=False)
    assert (imp != torch.arange(6)).all()


def test_impostors_need_two_inputs():
    with pytest.raises(ValueError, match="two inputs"):
        impostor_indices(4, 4, 4)


def test_weight_norm_penalty_frobenius_and_squared():
    lin = nn.Linear(2, 2)
    conv = nn.Conv1d(1, 1, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 4.0]]))
        conv.weight.copy_(torch.tensor([[[1.0, 0.0]]]))
    # biases are ignored
    assert weight_norm_penalty([lin, conv]).item() == pytest.approx(5.0 + 1.0)
    assert weight_norm_penalty([lin, conv], squared=True).item() == pytest.approx(25.0 + 1.0)


def test_paired_distance_hand_computed():
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    y = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert paired_distance(x, y, "l2").item() == pytest.approx((5 + 1) / 2)
    assert paired_distance(x, y, "sq_l2").item() == pytest.approx((25 + 1) / 2)
    with pytest.raises(ValueError, match="distance"):
        paired_distance(x, y, "cosine")


LN2 = math.log(2.0)


# ------------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("loss_fn", [intra_modal_loss, cross_modal_loss])
def test_losses_against_hand_computed_values(loss_fn):
    # row 0: squared error 1 + 4 + 0 + 0 = 5; mu = (1, 0), sigma^2 = (1, 2):
    #   -sum(1 + log s2 - m2 - s2) = -[(1 + 0 - 1 - 1) + (1 + ln2 - 0 - 2)] = 2 - ln2
    # row 1: a perfect reconstruction with the prior as posterior: 0 and 0
    x = torch.tensor([[[[1.0, 2.0], [0.0, 0.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    x_hat = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]], [[[0.5, 0.5], [0.5, 0.5]]]])
    mu = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, LN2], [0.0, 0.0]])
    loss, se, kl = loss_fn(x, x_hat, mu, logvar, 0.5)
    assert se.item() == pytest.approx(5.0 / 2)
    assert kl.item() == pytest.approx((1.0 - 0.5 * LN2) / 2)  # true KL in nats, batch mean
    assert loss.item() == pytest.approx((5.0 + 0.5 * (2.0 - LN2)) / 2)
    zero_lambda, _, _ = loss_fn(x, x_hat, mu, logvar, 0.0)
    assert zero_lambda.item() == pytest.approx(2.5)


def test_multi_positive_nt_xent_hand_computed():
    # three unit rows at 0, 90 and 180 degrees; rows 0 and 1 share an id, row 2 has none
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    ids = torch.tensor([7, 7, 3])
    t = 0.5
    # anchor 0: positive row 1 (cos 0), negatives row 2 (cos -1); anchor 1: positive row 0
    # (cos 0), row 2 (cos 0); anchor 2 has no positive and is left out of the mean
    a0 = -math.log(math.exp(0) / (math.exp(0) + math.exp(-1 / t)))
    a1 = -math.log(math.exp(0) / (math.exp(0) + math.exp(0)))
    got = multi_positive_nt_xent(z * 3, ids, temperature=t)  # scale-free: cosine similarity
    assert got.item() == pytest.approx((a0 + a1) / 2, abs=1e-6)


def test_multi_positive_nt_xent_is_simclr_with_one_positive_and_sums_several():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 5, generator=g)
    ids = torch.arange(4).repeat(2)  # row i and i + 4: SimCLR's two views
    zn = torch.nn.functional.normalize(z, dim=1)
    logits = (zn @ zn.T / 0.1).fill_diagonal_(float("-inf"))
    simclr = torch.nn.functional.cross_entropy(logits, (torch.arange(8) + 4) % 8)
    assert multi_positive_nt_xent(z, ids, 0.1).item() == pytest.approx(simclr.item(), abs=1e-5)
    # two positives: the numerator sums both, inside the log (Eq. 4)
    ids3 = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
    pos = (ids3[:, None] == ids3[None]) & ~torch.eye(8, dtype=torch.bool)
    per = [
        -(torch.logsumexp(logits[i][pos[i]], 0) - torch.logsumexp(logits[i], 0))
        for i in range(8)
        if pos[i].any()
    ]
    got = multi_positive_nt_xent(z, ids3, 0.1).item()
    assert got == pytest.approx(torch.stack(per).mean().item(), abs=1e-5)
