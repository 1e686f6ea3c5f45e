"""BMA-Memory: the representations, both losses, which parameters each path trains."""

from __future__ import annotations

import pytest
import torch

from assoc_lightning.methods.bma_memory import BMAMemory
from tests.conftest import ROOT, paper_config_error

TINY = dict(
    num_slots=8, width=4, proj_hidden=32, proj_dim=8, image_channels=1, image_size=16,
    sample_rate=8000, n_mels=16, win_ms=25.0, freq_width=4, time_width=5, flip_p=0.0,
    crop_scale=(0.5, 1.0), jitter=(0.4, 0.4, 0.0, 0.0),
)  # fmt: skip


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    pairs = {
        "image": torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8, generator=g),
        "audio": torch.randn(n, 8000, generator=g),
        "label": torch.arange(n) % 2,
        "index": torch.arange(n),
        "pair_id": torch.arange(n),
    }
    return {
        "paired": pairs,
        "unpaired_audio": {"audio": torch.randn(n, 8000, generator=g), "index": torch.arange(n)},
        "unpaired_image": {
            "image": torch.randint(0, 256, (n, 1, 16, 16), dtype=torch.uint8, generator=g),
            "index": torch.arange(n),
        },
    }


def test_embed_is_h_and_retrieval_is_z():
    torch.manual_seed(0)
    model = BMAMemory(**TINY).eval()
    pairs = batch()["paired"]
    h = model.embed(pairs)
    assert h["image"].shape == (4, 64) and h["audio"].shape == (4, 64)  # [f ; f_mem], 2 x 32
    f_v = model.features("image", pairs["image"])
    read, _ = model.memory.recall(f_v, "image")
    assert torch.allclose(h["image"], torch.cat([f_v, read], 1), atol=1e-6)
    f_s = model.features("audio", pairs["audio"])
    read_v, _ = model.memory.recall(f_s, "audio")
    assert torch.allclose(h["audio"], torch.cat([read_v, f_s], 1), atol=1e-6)  # image part first
    z = model.retrieval_embed(pairs)
    assert z["image"].shape == (4, 8) and torch.allclose(
        z["audio"], model.heads["audio"](h["audio"])
    )
    own = BMAMemory(**TINY, sound_order="own_first").eval()
    f = own.features("audio", pairs["audio"])
    assert torch.allclose(own.embed({"audio": pairs["audio"]})["audio"][:, :32], f, atol=1e-6)


@pytest.mark.parametrize(
    "unpaired, terms",
    [([], {"pair"}), (["audio"], {"pair", "unpair_audio"}), (["image", "audio"], {"pair", "unpair_audio", "unpair_image"})],
)  # fmt: skip
def test_losses_follow_the_unpaired_switch(unpaired, terms):
    torch.manual_seed(0)
    model = BMAMemory(**TINY, unpaired=unpaired).train()
    out = model.compute_losses(batch())
    got = {k for k in out if k == "pair" or k.startswith("unpair")}
    assert got == terms
    assert out["loss"].item() == pytest.approx(sum(out[k].item() for k in terms), rel=1e-6)
    assert "address_entropy_image" in out and "slot_usage_audio" in out


def test_unpaired_sound_trains_the_image_memory_but_not_the_image_encoder():
    torch.manual_seed(0)
    model = BMAMemory(**TINY, unpaired=["audio"]).train()
    items = batch()["unpaired_audio"]
    model.unpaired_loss("audio", items).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert grads["memory.slots.image"].abs().sum() > 0  # M_v: value, then key
    assert grads["memory.slots.audio"].abs().sum() > 0
    assert all(g is None for n, g in grads.items() if n.startswith("encoders.image"))
    assert all(g is None for n, g in grads.items() if n.startswith("heads.image"))


def test_recording_positives_and_a_clear_error_without_them():
    model = BMAMemory(**TINY, positives="recording")
    pairs = batch()["paired"]
    with pytest.raises(ValueError, match="recording"):
        model.clip_ids(pairs)
    pairs["recording"] = torch.tensor([5, 5, 6, 6])
    assert model.clip_ids(pairs).tolist() == [5, 5, 6, 6]
    assert BMAMemory(**TINY).clip_ids(
        {**pairs, "clip_id": torch.tensor([9, 8, 7, 6])}
    ).tolist() == [9, 8, 7, 6]
    with pytest.raises(ValueError, match="sound_order"):
        BMAMemory(**TINY, sound_order="sideways")


def test_a_few_steps_lower_the_paired_loss():
    torch.manual_seed(0)
    model = BMAMemory(**TINY, unpaired=[], lr=1e-3).train()
    opt = model.configure_optimizers()
    b = batch(8)
    first = None
    for _ in range(15):
        loss = model.compute_losses(b)["loss"]
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < first - 0.3


PAPER = sorted((ROOT / "experiments/paper").glob("bma_*.yaml"))


def test_paper_configs_exist():
    assert {p.stem for p in PAPER} == {
        "bma_acivw_kinetics_sound", "bma_acivw_unpaired_images", "bma_acivw_dcase",
        "bma_acivw_20pct",
    }  # fmt: skip


@pytest.mark.parametrize("config", PAPER, ids=lambda p: p.stem)
def test_paper_configs_say_which_dataset_is_missing(config, tmp_path, capsys):
    err = paper_config_error(config, tmp_path, capsys)
    assert "dataset not found" in err and "ACIVW" in err
