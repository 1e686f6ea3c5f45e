"""C-MCR: the loss against hand-computed terms, ablation switches, semantic completion, frozen towers, embed, the schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.methods.cmcr import CMCR


class FakeTower(nn.Module):
    """A frozen random linear 'space' over 3-d inputs, with the tower interface."""

    def __init__(self, dim: int = 4, seed: int = 0) -> None:
        super().__init__()
        self.dim = dim
        self.proj = nn.Linear(3, dim).requires_grad_(False)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(seed))

    def fingerprint(self) -> str:
        return "fake"

    def encode(self, modality, inputs):
        return F.normalize(self.proj(inputs.float()), dim=-1)


def _cmcr(**kwargs) -> CMCR:
    kwargs = {"noise_variance": 0.0, **kwargs}
    torch.manual_seed(0)  # same projector weights for every variant
    model = CMCR(FakeTower(4, 0), FakeTower(6, 1), out_dim=5, **kwargs)
    gen = torch.Generator().manual_seed(2)
    model.tables = {
        "text_image": torch.randn(8, 4, generator=gen),
        "read_image": torch.randn(8, 4, generator=gen),
        "text_audio": torch.randn(8, 6, generator=gen),
        "read_audio": torch.randn(8, 6, generator=gen),
    }
    return model


def _nce(a, b, tau):
    """Symmetric InfoNCE written out: mean over rows of -log softmax at the diagonal."""
    logits = a @ b.T / tau
    n = a.size(0)
    row = -sum(logits[i, i] - torch.logsumexp(logits[i], 0) for i in range(n)) / n
    col = -sum(logits[i, i] - torch.logsumexp(logits[:, i], 0) for i in range(n)) / n
    return (row + col) / 2


def test_cmcr_loss_against_hand_computed_terms():
    model = _cmcr(lambda_intra=0.3)
    model.eval()
    batch = {"index": torch.tensor([0, 2, 3, 7])}
    got = model.compute_losses(batch)
    t = {k: F.normalize(v[batch["index"]], dim=1) for k, v in model.tables.items()}
    with torch.no_grad():
        pi = F.normalize(
            model.projectors["image"](torch.cat([t["text_image"], t["read_image"]])), dim=1
        )
        pa = F.normalize(
            model.projectors["audio"](torch.cat([t["text_audio"], t["read_audio"]])), dim=1
        )
    ti, vi, ta, aa = pi[:4], pi[4:], pa[:4], pa[4:]
    ttc, avc = _nce(ti, ta, 0.01), _nce(vi, aa, 0.01)
    intra = 0.5 * ((ti - vi).norm(dim=1).mean() + (ta - aa).norm(dim=1).mean())
    assert got["ttc"].item() == pytest.approx(ttc.item(), rel=1e-5)
    assert got["avc"].item() == pytest.approx(avc.item(), rel=1e-5)
    assert got["intra"].item() == pytest.approx(intra.item(), rel=1e-5)
    assert got["loss"].item() == pytest.approx((ttc + avc + 0.3 * intra).item(), rel=1e-5)


def test_cmcr_ablation_switches_remove_their_terms():
    batch = {"index": torch.tensor([1, 4, 5])}
    full = _cmcr().eval().compute_losses(batch)
    row_f = _cmcr(use_ttc=False, use_avc=False).eval().compute_losses(batch)
    assert row_f["ttc"].item() == row_f["avc"].item() == 0.0
    assert row_f["loss"].item() == pytest.approx(0.1 * full["intra"].item(), rel=1e-6)
    row_c = _cmcr(intra_image=False, intra_audio=False).eval().compute_losses(batch)
    assert row_c["loss"].item() == pytest.approx((full["ttc"] + full["avc"]).item(), rel=1e-6)
    only_clip = _cmcr(intra_audio=False).eval().compute_losses(batch)
    assert only_clip["intra"].item() < full["intra"].item()


def test_completion_noise_and_renormalization():
    model = _cmcr(noise_variance=0.004)
    x = F.normalize(torch.randn(1000, 4), dim=1)
    model.train()
    y = model.complete(x)
    assert torch.allclose(y.norm(dim=1), torch.ones(1000), atol=1e-5)
    # re-normalization removes the radial part: E||y - x||^2 ~ (d - 1) sigma^2
    assert (y - x).pow(2).sum(1).mean().item() == pytest.approx(3 * 0.004, rel=0.1)
    model.eval()
    assert torch.equal(model.complete(x), F.normalize(x, dim=1))
    raw = _cmcr(renormalize=False).train()
    assert torch.equal(raw.complete(0.5 * x), 0.5 * x)  # noise 0, no re-normalization


def test_frozen_towers_are_not_trained_or_saved():
    model = _cmcr()
    keys = model.state_dict().keys()
    assert keys and all(k.startswith("projectors.") for k in keys)
    assert all(p.requires_grad for p in model.parameters())
    tower_params = {id(p) for t in model.spaces.values() for p in t.parameters()}
    assert not tower_params & {id(p) for p in model.parameters()}


def test_embed_is_tower_then_projector_normalized():
    model = _cmcr().eval()
    x = torch.randn(5, 3)
    out = model.embed({"image": x, "audio": x})
    ref = F.normalize(model.projectors["audio"](model.spaces["audio"].encode("audio", x)), dim=1)
    torch.testing.assert_close(out["audio"], ref)
    assert out["image"].shape == (5, 5)


def test_cosine_schedule_with_warmup():
    from types import SimpleNamespace

    model = _cmcr(lr=1.0, warmup_steps=2)
    model._trainer = SimpleNamespace(estimated_stepping_batches=10)  # type: ignore[attr-defined]
    sched = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    lrs = []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        sched.optimizer.step()
        sched.step()
    assert lrs[:2] == [0.5, 1.0]
    assert lrs[2] == pytest.approx(1.0) and lrs[6] == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 4 / 8))
    )
