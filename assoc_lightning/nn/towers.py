"""Frozen pre-trained contrastive towers (CLIP, CLAP) and resumable embedding caches.

C-MCR connects two *frozen* contrastive spaces (METHODS.md section 2.1). A tower is the
smallest interface a method needs from such a space::

    tower.modalities                 # ("text", "image") or ("text", "audio")
    tower.dim                        # embedding size
    tower.encode(modality, inputs)   # [N, dim] float32, L2-normalized, no grad
    tower.fingerprint()              # short hash of weights + preprocessing, for cache keys

Frozen means eval mode forever (``train()`` is a no-op), no parameter requires grad, and
encoding runs under ``torch.no_grad()`` (not ``inference_mode``: inference tensors cannot be
saved for backward, and the embeddings feed trainable projectors).

Weights and checkpoints: a tower is an ordinary sub-module of the method that holds it, so it
moves with ``.to(device)`` and shows up in the model summary, but its weights belong to its own
files (``path``), not to the method's checkpoint. State-dict hooks drop every tower key from a
*parent's* ``state_dict()`` and, on ``load_state_dict``, ignore tower keys found in a checkpoint
and do not report the absent ones as missing (``strict=True`` still holds for everything
else). ``tower.state_dict()`` called on the tower itself still returns the weights.

Inputs: text is a list of str; image is a uint8 (0..255) or float (0..1) ``[N, C, H, W]``
tensor of any size, or a list of ``[C, H, W]`` tensors; audio is a float waveform ``[N, T]``
tensor at ``tower.sample_rate``, or a list of 1-D tensors of varying length.

Transformers is imported lazily (only when a real tower is built): ``pip install
'assoc_lightning[towers]'``. Nothing downloads unless ``download=True`` is asked for.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from assoc_lightning.errors import AssocError

log = logging.getLogger(__name__)

# Bump when our own preprocessing changes, so caches built with the old one are rebuilt.
PREPROCESS_VERSION = 1


class TowerNotFoundError(AssocError, FileNotFoundError):
    """A tower's local directory is missing or incomplete; says what is expected and how to get it."""

    def __init__(self, name: str, path: str | Path, missing: Sequence[str], hub_name: str) -> None:
        self.name, self.path, self.missing = name, Path(path), list(missing)
        lines = [f"{name} tower not found or incomplete: {path}"]
        if missing:
            lines.append("missing: " + "; ".join(missing))
        lines += [
            "expected files in that directory:",
            "  config.json",
            "  model weights: model.safetensors or pytorch_model.bin (or a sharded *.index.json)",
            "  tokenizer: tokenizer.json (or vocab.json + merges.txt) and tokenizer_config.json",
            "  processor: preprocessor_config.json (or processor_config.json)",
            "how to get them: on a machine with internet, "
            f"`huggingface-cli download {hub_name} --local-dir {path}`, then copy the directory "
            f"here; or build the tower with `download: true` (from_pretrained('{hub_name}') "
            "saved to the path).",
        ]
        super().__init__("\n".join(lines))


class TowerDependencyError(AssocError, ImportError):
    """The optional ``transformers`` dependency is not installed."""


class EmbeddingCacheError(AssocError):
    """An embedding cache cannot be built or read (bad encoder output, incomplete source)."""


# --------------------------------------------------------------------------- frozen tower base


class FrozenTower(nn.Module):
    """A frozen, pre-trained contrastive space: ``encode(modality, inputs)`` -> unit vectors.

    Subclasses set ``modalities`` and ``dim``, build their modules, call ``self._freeze()`` and
    implement ``_encode(modality, inputs)`` (raw features; this class normalizes them) and
    ``_preprocessing()`` (a JSON-able description that goes into the fingerprint).
    """

    modalities: tuple[str, ...] = ()
    dim: int = 0

    def __init__(self) -> None:
        super().__init__()
        self._fingerprint: str | None = None
        self._load_prefix: str | None = None
        self.register_state_dict_post_hook(_drop_tower_keys)
        self.register_load_state_dict_pre_hook(_ignore_tower_keys)
        self.register_load_state_dict_post_hook(_forgive_missing_tower_keys)

    def _freeze(self) -> None:
        self.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenTower:
        """Stays in eval mode whatever is asked: dropout and norm statistics are frozen too."""
        return super().train(False)

    @property
    def device(self) -> torch.device:
        param = next(self.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def encode(self, modality: str, inputs: Any) -> torch.Tensor:
        """``[N, dim]`` float32 L2-normalized embeddings of ``inputs`` in ``modality``."""
        if modality not in self.modalities:
            raise ValueError(f"{type(self).__name__} encodes {self.modalities}, not {modality!r}")
        if len(inputs) == 0:
            return torch.empty(0, self.dim, device=self.device)
        with torch.no_grad():
            feats = self._encode(modality, inputs)
        return F.normalize(feats.float(), dim=-1)

    def _encode(self, modality: str, inputs: Any) -> torch.Tensor:
        raise NotImplementedError

    def _preprocessing(self) -> dict:
        return {}

    def fingerprint(self) -> str:
        """16 hex digits hashing the weights (names, dtypes, shapes, bytes) and preprocessing.

        Computed once (about a second per 500 MB of weights) and remembered.
        """
        if self._fingerprint is None:
            h = hashlib.sha256()
            meta = {"class": type(self).__name__, "version": PREPROCESS_VERSION}
            meta["preprocessing"] = self._preprocessing()
            h.update(json.dumps(meta, sort_keys=True, default=str).encode())
            _hash_tensors(h, self.state_dict())  # prefix '': the weights
            self._fingerprint = h.hexdigest()[:16]
        return self._fingerprint


def _hash_tensors(h: Any, state: dict[str, torch.Tensor]) -> None:
    for name in sorted(state):
        t = state[name].detach()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        flat = t.to("cpu").contiguous().reshape(-1)
        if flat.numel():
            h.update(flat.view(torch.uint8).numpy())  # the buffer itself, no copy


def _drop_tower_keys(module: FrozenTower, state_dict: dict, prefix: str, local_metadata) -> None:
    """State-dict post-hook: a parent's checkpoint never holds the tower's weights."""
    if not prefix:
        return  # tower.state_dict() on the tower itself: keep its weights
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]
    meta = getattr(state_dict, "_metadata", None)
    if meta is not None:
        for key in [k for k in meta if k == prefix[:-1] or k.startswith(prefix)]:
            del meta[key]


def _ignore_tower_keys(module: FrozenTower, state_dict: dict, prefix: str, *args) -> None:
    """Load pre-hook: tower weights come from the tower's path, never from a checkpoint."""
    module._load_prefix = prefix
    if prefix:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            del state_dict[key]


def _forgive_missing_tower_keys(module: FrozenTower, incompatible_keys) -> None:
    """Load post-hook: the tower's keys being absent is expected, not an error."""
    prefix, module._load_prefix = module._load_prefix, None
    if prefix:
        missing = incompatible_keys.missing_keys
        missing[:] = [k for k in missing if not k.startswith(prefix)]


def _pooled(out: Any) -> torch.Tensor:
    """transformers 4.x returns a tensor from get_*_features, 5.x a ModelOutput (pooler_output)."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"unexpected get_*_features output {type(out).__name__}")
    return pooled


# --------------------------------------------------------------------------- local HF directories

_REQUIRED_FILES = {
    "config.json": ("config.json",),
    "model weights": (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    ),
    "tokenizer": ("tokenizer.json", "vocab.json"),
    "processor config": ("preprocessor_config.json", "processor_config.json"),
}


def _import_transformers():
    try:
        import transformers
    except ImportError as err:
        raise TowerDependencyError(
            "the CLIP/CLAP towers need the optional dependency `transformers`: "
            "pip install 'assoc_lightning[towers]'"
        ) from err
    return transformers


def missing_tower_files(path: str | Path) -> list[str]:
    """What a local Hugging Face model directory lacks (empty when complete)."""
    path = Path(path)
    if not path.is_dir():
        return [f"the directory {path} itself"]
    missing = []
    for what, names in _REQUIRED_FILES.items():
        if not any((path / n).is_file() for n in names):
            missing.append(what if names == (what,) else f"{what} ({' or '.join(names)})")
    return missing


def _prepare_dir(name: str, path: Path, hub_name: str, download: bool, save_fn: Callable) -> None:
    """Download into ``path`` when asked and needed; raise a clear error when incomplete."""
    missing = missing_tower_files(path)
    if missing and download:
        log.info("downloading %s into %s (download=True)", hub_name, path)
        path.mkdir(parents=True, exist_ok=True)
        try:
            save_fn(hub_name, path)
        except OSError as err:
            missing = [f"the download of {hub_name} failed ({type(err).__name__}: {err})"]
            raise TowerNotFoundError(name, path, missing, hub_name) from err
        missing = missing_tower_files(path)
    if missing:
        raise TowerNotFoundError(name, path, missing, hub_name)


@contextlib.contextmanager
def _loading(name: str, path: Path, hub_name: str) -> Iterator[None]:
    """Load quietly (no per-tensor progress bar); files that exist but do not load (truncated,
    wrong model type) get the same clear error as missing ones."""
    hf_logging = _import_transformers().utils.logging
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    except (OSError, ValueError, KeyError) as err:
        raise TowerNotFoundError(
            name, path, [f"a loadable checkpoint ({type(err).__name__}: {err})"], hub_name
        ) from err
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def _tokenize(tokenizer: Any, texts: Sequence[str], max_length: int, device: torch.device):
    if isinstance(texts, str):
        texts = [texts]
    tok = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {k: tok[k].to(device) for k in ("input_ids", "attention_mask")}


# --------------------------------------------------------------------------- CLIP


class ClipImageTransform(nn.Module):
    """CLIPImageProcessor's resize / center-crop / normalize, batched in torch on any device.

    The same steps as the processor's torchvision backend: shortest side to ``size``
    (``int(size * long / short)`` for the other side) with torchvision's antialiased resize in
    the input dtype (uint8 resizing rounds and clips, as the processor's does), the centred crop
    at ``int((H - h) / 2)``, then ``(x / 255 - mean) / std``. Float inputs are taken as 0..1.
    On CPU the result equals the processor's to float rounding; on GPU torchvision resizes
    uint8 through float, a gray level or so away from the CPU's integer kernel.
    """

    _MODES = {0: "nearest-exact", 2: "bilinear", 3: "bicubic"}

    def __init__(
        self,
        shortest_edge: int | None = 224,
        resize_hw: tuple[int, int] | None = None,
        crop_hw: tuple[int, int] | None = (224, 224),
        mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
        std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711),
        resample: int = 3,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        if int(resample) not in self._MODES:
            raise ValueError(f"unsupported resample {resample} (supported: {self._MODES})")
        self.shortest_edge, self.resize_hw, self.crop_hw = shortest_edge, resize_hw, crop_hw
        self.mode = self._MODES[int(resample)]
        self.normalize = normalize
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    @classmethod
    def from_processor(cls, processor: Any) -> ClipImageTransform:
        """Read size, crop, mean, std and resample from a (saved) CLIPImageProcessor."""
        size, crop = processor.size, processor.crop_size
        rescale = float(getattr(processor, "rescale_factor", 1 / 255))
        if not getattr(processor, "do_rescale", True) or abs(rescale * 255 - 1) > 1e-6:
            raise ValueError("only image processors that rescale by 1/255 are supported")
        resize = getattr(processor, "do_resize", True)
        shortest = _size_get(size, "shortest_edge") if resize else None
        hw = (_size_get(size, "height"), _size_get(size, "width"))
        return cls(
            shortest_edge=shortest,
            resize_hw=hw if resize and shortest is None else None,
            crop_hw=(_size_get(crop, "height"), _size_get(crop, "width"))
            if getattr(processor, "do_center_crop", True)
            else None,
            mean=tuple(processor.image_mean),
            std=tuple(processor.image_std),
            resample=int(processor.resample),
            normalize=bool(getattr(processor, "do_normalize", True)),
        )

    def config(self) -> dict:
        return {
            "shortest_edge": self.shortest_edge,
            "resize_hw": self.resize_hw,
            "crop_hw": self.crop_hw,
            "mode": self.mode,
            "normalize": self.normalize,
            "mean": self.mean.flatten().tolist(),
            "std": self.std.flatten().tolist(),
        }

    def forward(self, images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
        if isinstance(images, torch.Tensor) and images.dim() in (3, 4):
            return self._batch(images if images.dim() == 4 else images.unsqueeze(0))
        return torch.cat([self._batch(torch.as_tensor(im).unsqueeze(0)) for im in images])

    def _batch(self, x: torch.Tensor) -> torch.Tensor:
        """Same-size images ``[N, C, H, W]`` -> model pixel values ``[N, 3, h, w]``."""
        from torchvision.transforms.v2 import functional as tvF

        x = x.to(self.mean.device)
        if x.dtype != torch.uint8:
            x = x.float()
        if x.size(1) == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.size(1) != 3:
            raise ValueError(f"images must have 1 or 3 channels, got shape {tuple(x.shape)}")
        new_hw = self._resized_hw(x.shape[-2:])
        if new_hw is not None:
            mode = tvF.InterpolationMode(self.mode)
            x = tvF.resize(x, list(new_hw), interpolation=mode, antialias=True)
        if self.crop_hw is not None:
            x = _center_crop(x, self.crop_hw)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x
        return (x - self.mean) / self.std if self.normalize else x

    def _resized_hw(self, hw: Sequence[int]) -> tuple[int, int] | None:
        if self.shortest_edge is not None:
            h, w = int(hw[0]), int(hw[1])
            short, long = min(h, w), max(h, w)
            new_long = int(self.shortest_edge * long / short)
            return (self.shortest_edge, new_long) if h <= w else (new_long, self.shortest_edge)
        return tuple(self.resize_hw) if self.resize_hw is not None else None


def _size_get(size: Any, key: str) -> int | None:
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def _center_crop(x: torch.Tensor, crop_hw: tuple[int, int]) -> torch.Tensor:
    """Zero-pad if smaller, then crop at ``int((H - h) / 2)``, as the HF processor does."""
    (ch, cw), (h, w) = crop_hw, x.shape[-2:]
    if ch > h or cw > w:
        pad_w, pad_h = max(cw - w, 0), max(ch - h, 0)
        x = F.pad(x, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        h, w = x.shape[-2:]
    top, left = int((h - ch) / 2.0), int((w - cw) / 2.0)
    return x[..., top : top + ch, left : left + cw]


class CLIPTower(FrozenTower):
    """CLIP (``openai/clip-vit-base-patch32`` by default) from a local directory, frozen.

    ``encode("text", list_of_str)`` -> ``get_text_features`` (at most ``max_text_tokens``
    tokens, truncated); ``encode("image", images)`` -> ``get_image_features`` after the
    on-device :class:`ClipImageTransform` built from the saved processor config.

    Args:
        path: local directory with config.json, weights, tokenizer and processor files.
        download: if the directory is incomplete, fetch ``hub_name`` and save it there.
        hub_name: the Hugging Face model id, for ``download`` and the error message.
        max_text_tokens: token limit (CLIP's context is 77, start and end tokens included).
    """

    modalities = ("text", "image")

    def __init__(
        self,
        path: str,
        download: bool = False,
        hub_name: str = "openai/clip-vit-base-patch32",
        max_text_tokens: int = 77,
    ) -> None:
        super().__init__()
        tf = _import_transformers()
        self.path, self.hub_name = Path(path).expanduser(), hub_name
        _prepare_dir("CLIP", self.path, hub_name, download, _save_clip)
        with _loading("CLIP", self.path, hub_name):
            model = tf.CLIPModel.from_pretrained(self.path, local_files_only=True)
            self.model = model.float()  # 5.x loads the checkpoint's dtype, 4.x float32
            self.tokenizer = tf.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            processor = tf.CLIPImageProcessor.from_pretrained(self.path, local_files_only=True)
        self.image_transform = ClipImageTransform.from_processor(processor)
        text_positions = self.model.config.text_config.max_position_embeddings
        self.max_text_tokens = min(max_text_tokens, text_positions)
        self.dim = int(self.model.config.projection_dim)
        self._freeze()

    def _encode(self, modality: str, inputs: Any) -> torch.Tensor:
        if modality == "text":
            tok = _tokenize(self.tokenizer, inputs, self.max_text_tokens, self.device)
            return _pooled(self.model.get_text_features(**tok))
        pixels = self.image_transform(inputs).to(self.model.dtype)
        return _pooled(self.model.get_image_features(pixel_values=pixels))

    def _preprocessing(self) -> dict:
        return {
            "image": self.image_transform.config(),
            "max_text_tokens": self.max_text_tokens,
            "tokenizer": _tokenizer_digest(self.tokenizer),
        }

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, dim={self.dim}"


def _save_clip(hub_name: str, path: Path) -> None:
    tf = _import_transformers()
    tf.CLIPModel.from_pretrained(hub_name).save_pretrained(path)
    tf.AutoTokenizer.from_pretrained(hub_name).save_pretrained(path)
    tf.CLIPImageProcessor.from_pretrained(hub_name).save_pretrained(path)


def _tokenizer_digest(tokenizer: Any) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    text = json.dumps([type(tokenizer).__name__, vocab], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- CLAP


class CLAPTower(FrozenTower):
    """CLAP (``laion/clap-htsat-fused`` by default) from a local directory, frozen.

    ``encode("text", list_of_str)`` -> ``get_text_features``; ``encode("audio", waves)`` ->
    ``ClapFeatureExtractor`` (on CPU, numpy) -> ``get_audio_features``. Waveforms must be at
    ``self.sample_rate`` (48 kHz for LAION's checkpoints).

    Deterministic audio, unlike a bare ``ClapFeatureExtractor`` call (our choice, so that cached
    embeddings do not depend on the batch an item came in):
      * fusion models: ``is_longer`` is True exactly for clips longer than ``max_length_s`` (the
        extractor marks a *random* clip as longer when no clip of the batch is);
      * the random crops of long clips are drawn from a numpy generator seeded per clip.

    Args:
        path: local directory with config.json, weights, tokenizer and processor files.
        download: if the directory is incomplete, fetch ``hub_name`` and save it there.
        hub_name: the Hugging Face model id, for ``download`` and the error message.
        max_text_tokens: token limit for captions (LAION-CLAP tokenizes to 77).
    """

    modalities = ("text", "audio")

    def __init__(
        self,
        path: str,
        download: bool = False,
        hub_name: str = "laion/clap-htsat-fused",
        max_text_tokens: int = 77,
    ) -> None:
        super().__init__()
        tf = _import_transformers()
        self.path, self.hub_name = Path(path).expanduser(), hub_name
        _prepare_dir("CLAP", self.path, hub_name, download, _save_clap)
        with _loading("CLAP", self.path, hub_name):
            model = tf.ClapModel.from_pretrained(self.path, local_files_only=True)
            self.model = model.float()  # 5.x loads the checkpoint's dtype, 4.x float32
            self.tokenizer = tf.AutoTokenizer.from_pretrained(self.path, local_files_only=True)
            self.feature_extractor = tf.ClapFeatureExtractor.from_pretrained(
                self.path, local_files_only=True
            )
        self.fusion = bool(self.model.config.audio_config.enable_fusion)
        self.truncation = "fusion" if self.fusion else "rand_trunc"
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        text_positions = self.model.config.text_config.max_position_embeddings - 2  # RoBERTa
        self.max_text_tokens = min(max_text_tokens, text_positions)
        self.dim = int(self.model.config.projection_dim)
        self._freeze()

    def _encode(self, modality: str, inputs: Any) -> torch.Tensor:
        if modality == "text":
            tok = _tokenize(self.tokenizer, inputs, self.max_text_tokens, self.device)
            return _pooled(self.model.get_text_features(**tok))
        feats, is_longer = self.audio_features(inputs)
        feats = feats.to(self.device, self.model.dtype)
        out = self.model.get_audio_features(
            input_features=feats, is_longer=is_longer.to(self.device)
        )
        return _pooled(out)

    def audio_features(self, waves: torch.Tensor | Sequence) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms -> (``input_features [N, C, frames, mels]``, ``is_longer [N, 1]``)."""
        if isinstance(waves, torch.Tensor):
            waves = waves.reshape(-1, waves.size(-1))  # [T] or [N, 1, T] -> [N, T]
        fe, feats, longer = self.feature_extractor, [], []
        for wave in waves:
            wave = _as_numpy_wave(wave)
            with _numpy_seed(0):
                out = fe(
                    wave,
                    sampling_rate=self.sample_rate,
                    truncation=self.truncation,
                    padding=fe.padding,
                    return_tensors="np",
                )
            feats.append(torch.from_numpy(np.asarray(out["input_features"][0], dtype=np.float32)))
            longer.append(self._is_longer(len(wave)))
        return torch.stack(feats), torch.tensor(longer).view(-1, 1)

    def _is_longer(self, num_samples: int) -> bool:
        """The extractor's own test: longer than max length by at least one more mel frame."""
        if not self.fusion:
            return False
        max_len, hop = self.feature_extractor.nb_max_samples, self.feature_extractor.hop_length
        return num_samples > max_len and num_samples // hop != max_len // hop

    def _preprocessing(self) -> dict:
        fe = self.feature_extractor.to_dict()
        fe.pop("processor_class", None)
        return {
            "feature_extractor": fe,
            "truncation": self.truncation,
            "max_text_tokens": self.max_text_tokens,
            "tokenizer": _tokenizer_digest(self.tokenizer),
        }

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, dim={self.dim}, sample_rate={self.sample_rate}"


def _save_clap(hub_name: str, path: Path) -> None:
    tf = _import_transformers()
    tf.ClapModel.from_pretrained(hub_name).save_pretrained(path)
    tf.AutoTokenizer.from_pretrained(hub_name).save_pretrained(path)
    tf.ClapFeatureExtractor.from_pretrained(hub_name).save_pretrained(path)


def _as_numpy_wave(wave: Any) -> np.ndarray:
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().to("cpu", torch.float32).numpy()
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"each waveform must be 1-D (mono), got shape {wave.shape}")
    return wave


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator (which the HF extractor uses) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


# --------------------------------------------------------------------------- embedding caches

CACHE_VERSION = 1
_DTYPES = ("float16", "float32")


class EmbeddingCache:
    """A directory holding ``[num_items, dim]`` embeddings as a memory-mapped ``.npy``.

    Files: ``embeddings.npy`` (the rows), ``written.npy`` (one bool per row, the resume
    record), ``index.json`` (fingerprint, num_items, dim, dtype, done, keys digest) and, when
    item keys were given, ``keys.json``.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.data_path = self.directory / "embeddings.npy"
        self.mask_path = self.directory / "written.npy"
        self.index_path = self.directory / "index.json"
        self.keys_path = self.directory / "keys.json"

    def index(self) -> dict | None:
        """The JSON index, or None when absent or unreadable."""
        try:
            return json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return None

    @property
    def complete(self) -> bool:
        idx = self.index()
        return bool(idx) and idx.get("done") == idx.get("num_items")

    def load(self) -> np.ndarray:
        """The embeddings as a read-only memmap ``[num_items, dim]``; the cache must be complete."""
        if not self.complete:
            idx = self.index() or {}
            raise EmbeddingCacheError(
                f"embedding cache {self.directory} is incomplete "
                f"({idx.get('done', 0)}/{idx.get('num_items', '?')} rows): build it first"
            )
        return np.load(self.data_path, mmap_mode="r")

    def keys(self) -> list[str] | None:
        """The item keys given at build time (file names, caption hashes), or None."""
        return json.loads(self.keys_path.read_text()) if self.keys_path.is_file() else None

    def __repr__(self) -> str:
        idx = self.index() or {}
        return (
            f"EmbeddingCache({str(self.directory)!r}, rows={idx.get('done', 0)}/"
            f"{idx.get('num_items', '?')}, dim={idx.get('dim', '?')})"
        )


def build_embedding_cache(
    directory: str | Path,
    encode_fn: Callable[[Any], torch.Tensor | np.ndarray],
    source: Any,
    num_items: int,
    dim: int,
    keys: Sequence[str] | None = None,
    fingerprint: str = "",
    dtype: str = "float16",
    batch_size: int = 256,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    log_every: float = 0.1,
) -> EmbeddingCache:
    """Compute ``encode_fn`` over every item once, into a resumable on-disk cache.

    Args:
        directory: where the cache lives (one cache per directory).
        encode_fn: batch -> ``[B, dim]`` embeddings (tensor or array). The batch is
            ``collate_fn(items)`` for a dataset source, the loader's own batch otherwise.
        source: a map-style dataset (batched here, only the rows not yet written are loaded)
            or an iterable of dict batches with an ``index`` key (e.g. a DataLoader; every
            batch is loaded again on resume, fully written ones are not re-encoded). Rows are
            written at their dataset index, so the loader's order does not matter.
        num_items, dim: the array's shape.
        keys: optional per-item names (file names, caption hashes), stored and compared.
        fingerprint: identifies encoder + source (e.g. ``tower.fingerprint()`` plus a data id);
            a cache built with another fingerprint, shape, dtype or keys is rebuilt with a
            warning, never mixed.
        dtype: ``"float16"`` (half the disk) or ``"float32"``.
        batch_size, num_workers, collate_fn: the DataLoader built for a dataset ``source``.
        log_every: log progress each time this fraction of the rows is done.

    Progress (rows, then their ``written`` flags, then the index) is flushed after every batch,
    so a killed run continues where it stopped. Build from one process (e.g. rank 0 in
    ``prepare_data``); concurrent builders of one directory are not coordinated.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    if keys is not None and len(keys) != num_items:
        raise ValueError(f"{len(keys)} keys for {num_items} items")
    cache = EmbeddingCache(directory)
    wanted = {
        "version": CACHE_VERSION,
        "fingerprint": fingerprint,
        "num_items": int(num_items),
        "dim": int(dim),
        "dtype": dtype,
        "keys_sha256": _digest_strings(keys) if keys is not None else None,
    }
    if not _reusable(cache, wanted):
        _create(cache, wanted, keys)
    elif cache.complete:
        return cache  # reused as is: nothing is opened for writing
    batches = functools.partial(
        _batches, source, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_fn
    )
    _fill(cache, wanted, encode_fn, batches, log_every)
    return cache


def _fill(
    cache: EmbeddingCache,
    wanted: dict,
    encode_fn: Callable,
    batches: Callable[[np.ndarray], Iterable[tuple[Any, Any]]],
    log_every: float,
) -> None:
    """Encode the rows not yet written; flush rows, flags and index after every batch."""
    num_items, dim, dtype = wanted["num_items"], wanted["dim"], wanted["dtype"]
    data = np.load(cache.data_path, mmap_mode="r+")
    mask = np.load(cache.mask_path, mmap_mode="r+")
    done = int(mask.sum())
    if done:
        log.info("embedding cache %s: resuming at %d/%d rows", cache.directory, done, num_items)
    progress = _Progress(cache.directory, num_items, done, log_every)
    for indices, batch in batches(mask):
        rows = np.asarray(indices, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= num_items):
            raise EmbeddingCacheError(
                f"embedding cache {cache.directory}: batch indices outside [0, {num_items})"
            )
        if mask[rows].all():
            continue  # written before an interruption (iterable sources only)
        values = _check_values(encode_fn(batch), rows, dim, cache.directory)
        data[rows] = values.astype(dtype)
        data.flush()
        mask[rows] = True
        mask.flush()
        done = int(mask.sum())
        _write_index(cache, wanted, done)
        progress.update(done)
    _write_index(cache, wanted, done)
    if done != num_items:
        raise EmbeddingCacheError(
            f"embedding cache {cache.directory}: the source covered {done} of {num_items} items; "
            "check num_items and that every batch carries its dataset `index`"
        )


def build_text_cache(
    directory: str | Path,
    tower: FrozenTower,
    texts: Sequence[str],
    keys: Sequence[str] | None = None,
    dtype: str = "float16",
    batch_size: int = 256,
) -> EmbeddingCache:
    """Embed ``texts`` with ``tower.encode("text", ...)`` into an :func:`build_embedding_cache`.

    The fingerprint joins the tower's and a hash of all the texts, so editing a caption list
    rebuilds the cache.
    """
    texts = list(texts)
    fingerprint = f"{tower.fingerprint()}:text:{_digest_strings(texts)[:16]}"
    return build_embedding_cache(
        directory,
        lambda batch: tower.encode("text", batch),
        texts,
        num_items=len(texts),
        dim=tower.dim,
        keys=keys,
        fingerprint=fingerprint,
        dtype=dtype,
        batch_size=batch_size,
        collate_fn=list,
    )


def _digest_strings(strings: Iterable[str]) -> str:
    h = hashlib.sha256()
    for s in strings:
        b = str(s).encode()
        h.update(len(b).to_bytes(8, "little") + b)
    return h.hexdigest()


def _reusable(cache: EmbeddingCache, wanted: dict) -> bool:
    """True when the directory holds a (partial) cache of exactly what is wanted."""
    idx = cache.index()
    if idx is None:
        if cache.data_path.exists():
            msg = f"embedding cache {cache.directory} has no readable index; rebuilding it"
            warnings.warn(msg, stacklevel=3)
        return False
    diff = [k for k in wanted if idx.get(k) != wanted[k]]
    if not diff and _arrays_match(cache, wanted):
        return True
    what = ", ".join(f"{k}: cached {idx.get(k)!r}, wanted {wanted[k]!r}" for k in diff)
    warnings.warn(
        f"embedding cache {cache.directory} does not match ({what or 'array files'}); "
        "rebuilding it from scratch",
        stacklevel=3,
    )
    return False


def _arrays_match(cache: EmbeddingCache, wanted: dict) -> bool:
    try:
        data = np.load(cache.data_path, mmap_mode="r")
        mask = np.load(cache.mask_path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    shape = (wanted["num_items"], wanted["dim"])
    return data.shape == shape and data.dtype == wanted["dtype"] and mask.shape == shape[:1]


def _create(cache: EmbeddingCache, wanted: dict, keys: Sequence[str] | None) -> None:
    if cache.directory.exists():
        for path in (cache.index_path, cache.data_path, cache.mask_path, cache.keys_path):
            path.unlink(missing_ok=True)
    cache.directory.mkdir(parents=True, exist_ok=True)
    shape = (wanted["num_items"], wanted["dim"])
    np.lib.format.open_memmap(cache.data_path, mode="w+", dtype=wanted["dtype"], shape=shape)
    mask = np.lib.format.open_memmap(cache.mask_path, mode="w+", dtype=bool, shape=shape[:1])
    mask.flush()
    if keys is not None:
        _atomic_write(cache.keys_path, json.dumps(list(keys)))
    _write_index(cache, wanted, 0)


def _write_index(cache: EmbeddingCache, wanted: dict, done: int) -> None:
    _atomic_write(cache.index_path, json.dumps({**wanted, "done": done}, indent=1))


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)  # a killed run never leaves a half-written file


def _check_values(values: Any, rows: np.ndarray, dim: int, directory: Path) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    values = np.asarray(values, dtype=np.float32)
    if values.shape != (len(rows), dim):
        raise EmbeddingCacheError(
            f"embedding cache {directory}: encode_fn returned shape {values.shape} for a batch "
            f"of {len(rows)} items, expected ({len(rows)}, {dim})"
        )
    if not np.isfinite(values).all():
        raise EmbeddingCacheError(
            f"embedding cache {directory}: non-finite embeddings for items {rows[:8].tolist()}..."
        )
    return values


class _IndexedItems(Dataset):
    """The rows still to compute, as ``(index, item)`` pairs."""

    def __init__(self, dataset: Any, indices: np.ndarray) -> None:
        self.dataset, self.indices = dataset, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[int, Any]:
        index = int(self.indices[i])
        return index, self.dataset[index]


class _IndexedCollate:
    """Picklable collate: ``(indices, collate_fn(items))``."""

    def __init__(self, collate_fn: Callable | None) -> None:
        self.collate_fn = collate_fn or default_collate

    def __call__(self, pairs: list[tuple[int, Any]]) -> tuple[list[int], Any]:
        return [i for i, _ in pairs], self.collate_fn([item for _, item in pairs])


def _batches(
    source: Any, mask: np.ndarray, batch_size: int, num_workers: int, collate_fn: Callable | None
) -> Iterator[tuple[Any, Any]]:
    """``(indices, batch)`` pairs: only the missing rows of a dataset, every batch of a loader."""
    if isinstance(source, DataLoader) or not hasattr(source, "__getitem__"):
        for batch in source:
            if not isinstance(batch, dict) or "index" not in batch:
                raise EmbeddingCacheError("loader batches must be dicts with an `index` key")
            index = batch["index"]
            yield (index.cpu().numpy() if isinstance(index, torch.Tensor) else index), batch
        return
    todo = np.flatnonzero(~np.asarray(mask))
    loader = DataLoader(
        _IndexedItems(source, todo),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_IndexedCollate(collate_fn),
    )
    yield from loader


class _Progress:
    """Logs ``done/total`` each time another ``every`` fraction is reached."""

    def __init__(self, directory: Path, total: int, done: int, every: float) -> None:
        self.directory, self.total, self.step = directory, total, max(1, int(total * every))
        self.next = (done // self.step + 1) * self.step

    def update(self, done: int) -> None:
        if done >= self.next or done == self.total:
            log.info(
                "embedding cache %s: %d/%d rows (%.0f%%)",
                self.directory,
                done,
                self.total,
                100.0 * done / self.total,
            )
            self.next = (done // self.step + 1) * self.step


__all__ = [
    "CLAPTower",
    "CLIPTower",
    "ClipImageTransform",
    "EmbeddingCache",
    "EmbeddingCacheError",
    "FrozenTower",
    "TowerDependencyError",
    "TowerNotFoundError",
    "build_embedding_cache",
    "build_text_cache",
    "missing_tower_files",
]
