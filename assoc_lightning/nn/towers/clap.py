"""CLAP from a local directory, frozen, with deterministic audio features.

Inputs: text is a list of str; audio is a float waveform ``[N, T]`` tensor at
``tower.sample_rate``, or a list of 1-D tensors of varying length.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assoc_lightning.nn.towers.base import FrozenTower
from assoc_lightning.nn.towers.hf import load_local, pooled, tokenize, tokenizer_digest


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
        self.path, self.hub_name = Path(path).expanduser(), hub_name
        self.model, self.tokenizer, self.feature_extractor = load_local(
            "CLAP", self.path, hub_name, download, "ClapModel", "ClapFeatureExtractor"
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
            tok = tokenize(self.tokenizer, inputs, self.max_text_tokens, self.device)
            return pooled(self.model.get_text_features(**tok))
        feats, is_longer = self.audio_features(inputs)
        feats = feats.to(self.device, self.model.dtype)
        out = self.model.get_audio_features(
            input_features=feats, is_longer=is_longer.to(self.device)
        )
        return pooled(out)

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
            "tokenizer": tokenizer_digest(self.tokenizer),
        }

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, dim={self.dim}, sample_rate={self.sample_rate}"


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
