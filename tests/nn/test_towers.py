"""Frozen towers: tiny random-weight CLIP / CLAP from local dirs against transformers, freezing, checkpoints, fingerprints, clear errors; the toy spaces."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.errors import AssocError
from assoc_lightning.nn.towers import CLAPTower, CLIPTower, TowerNotFoundError, ToyContrastiveSpace
from tests.fixtures.towers import DIM, SR

tf = pytest.importorskip("transformers")


def _images(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, 3, 40, 52), dtype=torch.uint8, generator=g)


def _waves(lengths=(3000, 4000, 7000), seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=g) for n in lengths]


def _unit_rows(x: torch.Tensor) -> bool:
    return torch.allclose(x.norm(dim=-1), torch.ones(len(x)), atol=1e-5)


def test_clip_shapes_norms_and_determinism(clip):
    texts = ["a photo of a cat", "a dog", ""]
    t, v = clip.encode("text", texts), clip.encode("image", _images())
    assert clip.modalities == ("text", "image") and clip.dim == DIM
    assert t.shape == v.shape == (3, DIM) and t.dtype == v.dtype == torch.float32
    assert _unit_rows(t) and _unit_rows(v) and not t.requires_grad
    assert torch.equal(t, clip.encode("text", texts))
    assert torch.equal(v, clip.encode("image", _images()))
    floats = clip.encode("image", _images().float() / 255)  # float images are 0..1
    assert torch.allclose(floats, v, atol=1e-2)
    mixed = [torch.randint(0, 256, (3, 48, 32), dtype=torch.uint8), _images()[0],
             torch.randint(0, 256, (1, 36, 36), dtype=torch.uint8)]  # fmt: skip
    assert clip.encode("image", mixed).shape == (3, DIM)
    assert torch.allclose(clip.encode("image", _images()[1]), v[1:2], atol=1e-6)  # [C, H, W]
    assert clip.encode("text", []).shape == (0, DIM)
    with pytest.raises(ValueError, match="audio"):
        clip.encode("audio", torch.zeros(1, 100))


def test_clip_matches_hf_processor_and_model(clip, clip_dir):
    processor = tf.CLIPImageProcessor.from_pretrained(clip_dir)
    images = list(_images()) + [torch.randint(0, 256, (3, 61, 33), dtype=torch.uint8)]
    ref_pixels = processor(images=images, return_tensors="pt").pixel_values
    ours = clip.image_transform(images)
    assert ours.shape == ref_pixels.shape == (4, 3, 32, 32)
    assert torch.allclose(ours, ref_pixels, atol=1e-4)
    with torch.no_grad():
        ref = clip.model.get_image_features(pixel_values=ref_pixels).pooler_output
    assert torch.allclose(clip.encode("image", images), F.normalize(ref, dim=-1), atol=1e-5)

    texts = ["a photo of a cat", "an extremely long caption that runs past the context"]
    tok = clip.tokenizer(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
    with torch.no_grad():
        ref = clip.model.get_text_features(**tok).pooler_output
    assert torch.allclose(clip.encode("text", texts), F.normalize(ref, dim=-1), atol=1e-5)


def test_clap_shapes_norms_and_matches_hf(clap):
    waves = _waves()
    assert clap.modalities == ("text", "audio") and clap.sample_rate == SR
    a = clap.encode("audio", waves)
    t = clap.encode("text", ["a dog barks", "rain"])
    assert a.shape == (3, DIM) and t.shape == (2, DIM) and _unit_rows(a) and _unit_rows(t)
    assert torch.equal(a, clap.encode("audio", waves))  # long clip: seeded crops

    feats, is_longer = clap.audio_features(waves)
    assert is_longer.flatten().tolist() == [False, False, True]  # only the 7000-sample clip
    short = clap.feature_extractor([w.numpy() for w in waves[:2]], sampling_rate=SR,
                                   return_tensors="pt").input_features  # fmt: skip
    assert torch.allclose(feats[:2], short, atol=1e-5)  # short clips: no randomness
    with torch.no_grad():
        ref = clap.model.get_audio_features(input_features=feats, is_longer=is_longer)
    assert torch.allclose(a, F.normalize(ref.pooler_output, dim=-1), atol=1e-5)

    tok = clap.tokenizer(["a dog barks", "rain"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = clap.model.get_text_features(**tok).pooler_output
    assert torch.allclose(t, F.normalize(ref, dim=-1), atol=1e-5)


def test_clap_embedding_does_not_depend_on_the_batch(clap):
    waves = _waves((3000, 2000, 4500))
    alone = torch.cat([clap.encode("audio", [w]) for w in waves])
    assert torch.allclose(clap.encode("audio", waves), alone, atol=1e-5)
    padded = torch.stack([waves[0], waves[0]])  # an [N, T] tensor works too
    assert torch.allclose(clap.encode("audio", padded)[1], alone[0], atol=1e-5)


def test_towers_are_frozen(clip, clap):
    for tower in (clip, clap):
        assert not any(p.requires_grad for p in tower.parameters())
        tower.train()
        assert not any(m.training for m in tower.modules())
    holder = nn.ModuleDict({"tower": clip, "head": nn.Linear(DIM, 2)}).train()
    assert holder["head"].training and not clip.training and not clip.model.training


def test_weights_stay_out_of_a_holders_checkpoint(clip, tmp_path):
    holder = nn.ModuleDict({"tower": clip, "head": nn.Linear(DIM, 2)})
    state = holder.state_dict()
    assert sorted(state) == ["head.bias", "head.weight"]
    assert len(clip.state_dict()) > 10  # the tower on its own still has its weights
    torch.save(state, tmp_path / "ckpt.pt")
    result = holder.load_state_dict(torch.load(tmp_path / "ckpt.pt"), strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    before = clip.encode("text", ["a cat"])
    stale = {**state, "tower.model.text_projection.weight": torch.zeros(DIM, 32)}
    holder.load_state_dict(stale, strict=True)  # tower keys in a checkpoint are ignored
    assert torch.equal(clip.encode("text", ["a cat"]), before)
    with pytest.raises(RuntimeError, match="head.bias"):
        holder.load_state_dict({"head.weight": state["head.weight"]}, strict=True)


def test_fingerprint_is_stable_and_tracks_the_weights(clip, clap, clip_dir, tmp_path):
    fp = clip.fingerprint()
    assert len(fp) == 16 and fp == clip.fingerprint() != clap.fingerprint()
    copy = CLIPTower(str(tmp_path / "copy"), download=True, hub_name=str(clip_dir))
    assert copy.fingerprint() == fp  # download=True saved a loadable copy; same weights
    with torch.no_grad():
        copy.model.text_projection.weight.mul_(2.0)
    copy._fingerprint = None
    assert copy.fingerprint() != fp
    assert CLIPTower(str(clip_dir), max_text_tokens=8).fingerprint() != fp


def test_missing_or_incomplete_path_is_a_clear_error(tmp_path, clip_dir):
    missing = tmp_path / "nowhere"
    with pytest.raises(TowerNotFoundError) as err:
        CLIPTower(str(missing))
    msg = str(err.value)
    assert isinstance(err.value, AssocError) and isinstance(err.value, FileNotFoundError)
    assert str(missing) in msg and "config.json" in msg and "download: true" in msg
    assert f"huggingface-cli download openai/clip-vit-base-patch32 --local-dir {missing}" in msg

    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((clip_dir / "config.json").read_text())
    with pytest.raises(TowerNotFoundError, match="missing: model weights") as err:
        CLAPTower(str(partial))
    assert "laion/clap-htsat-fused" in str(err.value) and "tokenizer" in str(err.value)


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


def test_damaged_toy_weights_are_trained_again(tmp_path):
    inputs, labels = torch.rand(10, 1, 28, 28), torch.arange(10) % 2
    captions = [["zero", "a zero"], ["one", "a one"]]
    space = ToyContrastiveSpace("image", dim=8, steps=3, batch_size=4)
    space.prepare(inputs, labels, captions, tmp_path, "data-v1")
    (path,) = tmp_path.glob("toy_space_image_*.pt")
    path.write_bytes(b"not a checkpoint")
    again = ToyContrastiveSpace("image", dim=8, steps=3, batch_size=4)
    again.prepare(inputs, labels, captions, tmp_path, "data-v1")
    torch.testing.assert_close(again.encode("image", inputs), space.encode("image", inputs))
    assert torch.load(path, weights_only=True)  # a loadable file again
