"""Frozen towers and embedding caches, offline: tiny random-weight CLIP and CLAP models are
built from their configs and saved to a tmp dir, then loaded by path as a user would."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.errors import AssocError
from assoc_lightning.features.cache import (
    EmbeddingCache,
    EmbeddingCacheError,
    build_embedding_cache,
    build_text_cache,
)
from assoc_lightning.nn.towers import CLAPTower, CLIPTower, TowerNotFoundError

tf = pytest.importorskip("transformers")

DIM = 16
SR = 4000  # the tiny CLAP feature extractor's rate; max_length_s=1 -> 4000 samples


def _byte_alphabet() -> list[str]:
    from tokenizers import pre_tokenizers

    return sorted(pre_tokenizers.ByteLevel.alphabet())


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A saved tiny CLIP: character-level BPE tokenizer, 32x32 images, 16-d embeddings."""
    path = tmp_path_factory.mktemp("tiny_clip")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for suffix in ("", "</w>"):
        for c in _byte_alphabet():
            vocab.setdefault(c + suffix, len(vocab))
    tf.CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=16, bos_token_id=0,
                eos_token_id=1, pad_token_id=1)  # fmt: skip
    vision = dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=2)  # fmt: skip
    torch.manual_seed(0)
    config = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=DIM)
    tf.CLIPModel(config).save_pretrained(path)
    size = {"shortest_edge": 32}
    tf.CLIPImageProcessor(size=size, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    """A saved tiny fused CLAP: byte-level RoBERTa tokenizer, 2-stage HTSAT on 64x64 mels."""
    path = tmp_path_factory.mktemp("tiny_clap")
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in _byte_alphabet():
        vocab.setdefault(c, len(vocab))
    vocab["<mask>"] = len(vocab)
    tf.RobertaTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=40)  # fmt: skip
    audio = dict(spec_size=64, num_mel_bins=64, window_size=4, patch_size=4, patch_stride=4,
                 depths=[1, 1], num_attention_heads=[2, 2], patch_embeds_hidden_size=16,
                 hidden_size=32, enable_fusion=True, fusion_type="aff_2d")  # fmt: skip
    torch.manual_seed(0)
    config = tf.ClapConfig(text_config=text, audio_config=audio, projection_dim=DIM)
    tf.ClapModel(config).save_pretrained(path)
    tf.ClapFeatureExtractor(
        feature_size=64, sampling_rate=SR, hop_length=80, max_length_s=1, fft_window_size=256,
        frequency_min=0, frequency_max=SR // 2,
    ).save_pretrained(path)  # fmt: skip
    return path


@pytest.fixture(scope="module")
def clip(clip_dir) -> CLIPTower:
    return CLIPTower(str(clip_dir))


@pytest.fixture(scope="module")
def clap(clap_dir) -> CLAPTower:
    return CLAPTower(str(clap_dir))


def _images(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, 3, 40, 52), dtype=torch.uint8, generator=g)


def _waves(lengths=(3000, 4000, 7000), seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [0.1 * torch.randn(n, generator=g) for n in lengths]


def _unit_rows(x: torch.Tensor) -> bool:
    return torch.allclose(x.norm(dim=-1), torch.ones(len(x)), atol=1e-5)


# --------------------------------------------------------------------------- towers


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


# --------------------------------------------------------------------------- caches


class Counter:
    """encode_fn stand-in: row i -> a fixed function of i; counts calls, can fail after k."""

    def __init__(self, dim: int = 8, fail_after: int | None = None) -> None:
        self.dim, self.fail_after, self.calls = dim, fail_after, 0

    def __call__(self, batch) -> torch.Tensor:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        index = batch["index"] if isinstance(batch, dict) else torch.as_tensor(batch)
        return self.rows(index)

    def rows(self, index) -> torch.Tensor:
        i = torch.as_tensor(index, dtype=torch.float32).view(-1, 1)
        return torch.sin(i * 0.37 + torch.arange(self.dim) * 0.11)


def _dict_items(n: int) -> list[dict]:
    return [{"index": i, "x": float(i)} for i in range(n)]


def test_text_cache_equals_direct_encoding_and_is_reused(clip, tmp_path):
    texts = [f"caption number {i}" for i in range(10)]
    cache = build_text_cache(tmp_path / "c", clip, texts, batch_size=4, dtype="float32")
    arr = cache.load()
    assert isinstance(arr, np.memmap) and not arr.flags.writeable and arr.shape == (10, DIM)
    assert np.allclose(arr, clip.encode("text", texts).numpy(), atol=1e-6)
    index = json.loads((tmp_path / "c" / "index.json").read_text())
    assert (
        index["done"] == 10 and index["dim"] == DIM and clip.fingerprint() in index["fingerprint"]
    )

    never = Counter(DIM, fail_after=0)  # raises if called: a complete cache is not recomputed
    again = build_embedding_cache(tmp_path / "c", never, texts, 10, DIM,
                                  fingerprint=index["fingerprint"], dtype="float32")  # fmt: skip
    assert never.calls == 0 and again.complete


def test_cache_resumes_after_an_interruption(tmp_path):
    items = _dict_items(23)
    full = build_embedding_cache(tmp_path / "full", Counter(), items, 23, 8, batch_size=4)
    killed = Counter(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        build_embedding_cache(tmp_path / "part", killed, items, 23, 8, batch_size=4)
    part = EmbeddingCache(tmp_path / "part")
    assert part.index()["done"] == 12 and not part.complete
    with pytest.raises(EmbeddingCacheError, match="incomplete"):
        part.load()
    resumed = Counter()
    build_embedding_cache(tmp_path / "part", resumed, items, 23, 8, batch_size=4)
    assert resumed.calls == 3  # rows 12..22 only, not from zero
    assert np.array_equal(part.load(), full.load())
    assert np.allclose(full.load(), Counter().rows(range(23)).numpy(), atol=1e-3)  # float16


def test_loader_rows_are_written_by_index_and_resume(tmp_path):
    items = _dict_items(20)
    shuffled = torch.utils.data.DataLoader(items, batch_size=3, shuffle=True)
    cache = build_embedding_cache(tmp_path / "s", Counter(), shuffled, 20, 8, dtype="float32")
    assert np.allclose(cache.load(), Counter().rows(range(20)).numpy(), atol=1e-6)

    backwards = torch.utils.data.DataLoader(items, batch_size=3, sampler=range(19, -1, -1))
    with pytest.raises(KeyboardInterrupt):
        build_embedding_cache(tmp_path / "c", Counter(fail_after=2), backwards, 20, 8)
    resumed = Counter()
    cache = build_embedding_cache(tmp_path / "c", resumed, backwards, 20, 8, dtype="float16")
    assert resumed.calls == 7 - 2  # batches written before the interruption are not re-encoded
    assert np.allclose(cache.load(), Counter().rows(range(20)).numpy(), atol=1e-3)


def test_changed_fingerprint_or_shape_rebuilds_with_a_warning(tmp_path):
    items = _dict_items(10)
    build_embedding_cache(tmp_path / "c", Counter(), items, 10, 8, fingerprint="a", batch_size=5)
    calls = Counter()
    with pytest.warns(UserWarning, match="fingerprint"):
        build_embedding_cache(tmp_path / "c", calls, items, 10, 8, fingerprint="b", batch_size=5)
    assert calls.calls == 2
    with pytest.warns(UserWarning, match="dim"):
        cache = build_embedding_cache(tmp_path / "c", Counter(4), items, 10, 4, fingerprint="b")
    assert cache.load().shape == (10, 4)
    keys = [f"item{i}.wav" for i in range(10)]
    with pytest.warns(UserWarning, match="keys"):
        cache = build_embedding_cache(tmp_path / "c", Counter(4), items, 10, 4, keys=keys,
                                      fingerprint="b")  # fmt: skip
    assert cache.keys() == keys


def test_bad_encoder_output_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingCacheError, match="shape"):
        build_embedding_cache(tmp_path / "c", lambda b: torch.zeros(2, 3), _dict_items(4), 4, 8)
    short = torch.utils.data.DataLoader(_dict_items(4), batch_size=2)
    with pytest.raises(EmbeddingCacheError, match="covered 4 of 6"):
        build_embedding_cache(tmp_path / "d", Counter(), short, 6, 8)
