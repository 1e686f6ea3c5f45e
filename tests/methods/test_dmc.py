"""DMC: losses and which parameters they train, the embed spaces, localize, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from assoc_lightning.methods import METHODS
from assoc_lightning.methods.dmc import DMC
from assoc_lightning.nn.vgg import conv_stack

TINY = dict(width=32, image_channels=1, image_size=32, audio_frames=48)


def pairs(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "image": torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
        "audio": torch.randn(n, 8000, generator=g),
        "label": torch.arange(n) % 3,
        "index": torch.arange(n),
        "pair_id": torch.arange(n),
    }


@pytest.mark.parametrize("variant", ["dmc", "simplified"])
def test_losses_train_both_subnets_and_the_shared_layer(variant):
    torch.manual_seed(0)
    model = DMC(variant=variant, **TINY).train()
    out = model.compute_losses(pairs())
    assert torch.isfinite(out["loss"]) and "pos_distance" in out
    out["loss"].backward()
    for name in ("subnets.image.0.weight", "subnets.audio.0.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    shared = "clustering.weight" if variant == "dmc" else "heads.image.weight"
    assert model.get_parameter(shared).grad.abs().sum() > 0
    if variant == "dmc":  # the hinge starts active: both distances ~ equal, margin k
        assert out["loss"].item() == pytest.approx(10.0, abs=1.0)


def test_embed_is_pooled_conv_and_retrieval_the_flattened_centres():
    torch.manual_seed(0)
    model = DMC(**TINY).eval()
    b = pairs()
    emb = model.embed(b)
    assert emb["image"].shape == (6, 16) and emb["audio"].shape == (6, 16)  # 512 / 32
    maps = model.conv_features("image", b["image"])
    assert maps.shape == (6, 16, 2, 2)  # 32 px, stride 16
    assert torch.allclose(emb["image"], maps.mean((2, 3)), atol=1e-6)
    ret = model.retrieval_embed(b)
    centres, _ = model.clustering(model.conv_features("audio", b["audio"]))
    assert ret["audio"].shape == (6, 160) and torch.allclose(ret["audio"], centres.flatten(1))
    assert set(model.embed({"audio": b["audio"]})) == {"audio"}
    assert METHODS["dmc"] is DMC


def test_localize_takes_the_best_matching_cluster_map_resized_to_the_image(monkeypatch):
    model = DMC(**TINY, num_clusters=3, cluster_dim=2).eval()
    n, (h, w) = 2, (4, 4)
    assign = torch.full((n, 3, h * w), 0.1)
    assign[0, 1, 2 * w + 3] = 0.9  # pair 0: cluster 1 matches, its peak at cell (2, 3)
    assign[0, 0, 0] = 0.9
    assign[1, 2, 1 * w + 0] = 0.9  # pair 1: cluster 2 matches, peak at (1, 0)
    assign[1, 1, 15] = 0.9
    cv = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).expand(n, 3, 2)
    ca = cv.clone()
    ca[0, [0, 2]] *= -1  # pair 0: only centre 1 agrees
    ca[1, [0, 1]] *= -1  # pair 1: only centre 2 agrees
    fake = {"image": (cv, assign, torch.Size((h, w))), "audio": (ca, None, None)}
    monkeypatch.setattr(model, "centres", lambda batch: fake)
    heat = model.localize(pairs(n))
    assert heat.shape == (n, 28, 28)
    for i, (row, col) in enumerate([(2, 3), (1, 0)]):
        peak = divmod(int(heat[i].argmax()), 28)
        assert (peak[0] // 7, peak[1] // 7) == (row, col)


def test_localize_runs_end_to_end_for_both_variants():
    for variant in ("dmc", "simplified"):
        torch.manual_seed(0)
        heat = DMC(variant=variant, **TINY).eval().localize(pairs(3))
        assert heat.shape == (3, 28, 28) and torch.isfinite(heat).all()


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = DMC(**TINY, lr=1e-3).train()
    opt = model.configure_optimizers()
    b = pairs(8)
    losses = []
    for _ in range(12):
        torch.manual_seed(1)  # the same negatives every step
        loss = model.compute_losses(b)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # from random init the hinge leaves its margin slowly (about 0.035 in 12 steps here)
    assert losses[-1] < losses[0] - 0.02 and max(losses[1:]) <= losses[0]


def test_visual_weights_load_a_torchvision_state_dict(tmp_path):
    torch.manual_seed(0)
    donor = conv_stack(
        (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512), 3
    )
    state = {f"features.{k}": v for k, v in donor.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    model = DMC(image_size=32, audio_frames=48, width=1, visual_weights=str(path))
    assert torch.equal(model.subnets["image"][28].weight, donor[28].weight)
    with pytest.raises(ValueError, match="width 1"):
        DMC(**TINY, visual_weights=str(path))


def test_bad_choices_are_refused():
    with pytest.raises(ValueError, match="variant"):
        DMC(variant="capsule")
    with pytest.raises(ValueError, match="distance"):
        DMC(distance="l1")


def test_vggish_frontend_is_log_mel_plus_offset():
    model = DMC(**TINY)
    spec = model.frontend(torch.zeros(2, 16000))
    assert spec.shape == (2, 1, 48, 64)  # 98 frames centre-cropped to 48
    assert torch.allclose(spec, torch.full_like(spec, torch.log(torch.tensor(0.01)).item()))
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(16000) / 16000).unsqueeze(0)
    peak_band = model.frontend(tone)[0, 0].mean(0).argmax()
    assert F.one_hot(peak_band, 64).shape == (64,) and 15 <= int(peak_band) <= 30
