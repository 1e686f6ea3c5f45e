"""C-MCR: losses against hand-computed values, the chunked memory read against the dense
formula, projector size, frozen towers, and the locally trained stand-in spaces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.losses.alignment import paired_distance
from assoc_lightning.methods.cmcr import CMCR
from assoc_lightning.nn.memory_read import memory_read
from assoc_lightning.nn.projector import MLPProjector
from assoc_lightning.nn.towers import ToyContrastiveSpace


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


def test_paired_distance_hand_computed():
    x = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    y = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    assert paired_distance(x, y, "l2").item() == pytest.approx((5 + 1) / 2)
    assert paired_distance(x, y, "sq_l2").item() == pytest.approx((25 + 1) / 2)
    with pytest.raises(ValueError, match="distance"):
        paired_distance(x, y, "cosine")


def test_memory_read_chunked_equals_dense_formula():
    gen = torch.Generator().manual_seed(0)
    q, m = torch.randn(11, 6, generator=gen), torch.randn(23, 6, generator=gen)
    qn, mn = F.normalize(q, dim=1), F.normalize(m, dim=1)
    dense = torch.softmax(qn @ mn.T / 0.05, dim=1) @ mn
    got = memory_read(q, m, tau=0.05, query_chunk=4, memory_chunk=5)
    torch.testing.assert_close(got, dense, atol=1e-6, rtol=1e-5)
    # numpy / memory-mapped inputs give the same result
    got_np = memory_read(q.numpy(), m.numpy().astype(np.float32), tau=0.05, memory_chunk=7)
    torch.testing.assert_close(got_np, dense, atol=1e-6, rtol=1e-5)
    # a tiny temperature does not overflow: the read becomes the nearest item
    sharp = memory_read(q, m, tau=1e-4, memory_chunk=5)
    torch.testing.assert_close(sharp, mn[(qn @ mn.T).argmax(1)], atol=1e-5, rtol=0)


def test_memory_read_ablation_modes():
    gen = torch.Generator().manual_seed(1)
    q, m = torch.randn(9, 5, generator=gen), torch.randn(14, 5, generator=gen)
    mn = F.normalize(m, dim=1)
    nearest = memory_read(q, m, mode="argmax", memory_chunk=3)
    torch.testing.assert_close(nearest, mn[(F.normalize(q, dim=1) @ mn.T).argmax(1)])
    torch.testing.assert_close(memory_read(q, m, mode="none"), F.normalize(q, dim=1))
    rnd = memory_read(q, m, mode="random", seed=3)
    assert torch.equal(rnd, memory_read(q, m, mode="random", seed=3))
    assert all(any(torch.equal(r, row) for row in mn) for r in rnd)
    with pytest.raises(ValueError, match="consistency mode"):
        memory_read(q, m, mode="mean")


def test_projector_matches_the_released_size():
    proj = MLPProjector(512, 1024, 512)
    assert sum(p.numel() for p in proj.parameters()) == 1_053_184  # "2.1M" for two
    assert not isinstance(proj[-1], nn.ReLU)
    assert isinstance(MLPProjector(8, 16, 8, final_relu=True)[-1], nn.ReLU)


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


def test_toy_space_trains_once_then_loads(tmp_path, monkeypatch):
    space = ToyContrastiveSpace("image", dim=8, steps=3, batch_size=4)
    inputs = torch.rand(10, 1, 28, 28)
    labels = torch.arange(10) % 2
    captions = [["zero", "a zero"], ["one", "a one"]]
    space.prepare(inputs, labels, captions, tmp_path, "data-v1")
    assert not any(p.requires_grad for p in space.parameters()) and not space.training
    emb = space.encode("image", inputs)
    assert emb.shape == (10, 8) and torch.allclose(emb.norm(dim=1), torch.ones(10))
    again = ToyContrastiveSpace("image", dim=8, steps=3, batch_size=4)
    monkeypatch.setattr(again, "_fit", lambda *a: pytest.fail("should load, not train"))
    again.prepare(inputs, labels, captions, tmp_path, "data-v1")
    torch.testing.assert_close(again.encode("image", inputs), emb)
    assert again.fingerprint() == space.fingerprint()
    other = ToyContrastiveSpace("image", dim=8, steps=3, batch_size=4)
    other.prepare(inputs, labels, captions, tmp_path, "data-v2")  # new data: new weights file
    assert other.fingerprint() != space.fingerprint()
    assert len(list(tmp_path.glob("toy_space_image_*.pt"))) == 2
    space.train()
    assert not space.training
