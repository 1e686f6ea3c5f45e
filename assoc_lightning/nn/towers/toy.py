"""Small contrastive spaces trained locally: the offline stand-ins for CLIP and CLAP.

C-MCR connects two *frozen, pre-trained* contrastive spaces. No CLIP or CLAP weights can be
had offline, so the embedded default builds the same situation at small scale: one
text<->image space and one text<->audio space, each with its own text encoder, trained here
on captioned digits (InfoNCE), then frozen. They are :class:`FrozenTower` s like CLIP and CLAP
(``encode(modality, inputs)`` -> L2-normalized ``[N, dim]``, ``fingerprint()``), so C-MCR
cannot tell them from the real towers.

Training happens once on first use; the weights are cached under a name that hashes the
configuration and the training data's fingerprint, so later runs load them in milliseconds.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
import zlib
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.errors import ConfigError
from assoc_lightning.losses.contrastive import info_nce
from assoc_lightning.nn.audio_frontend import KaldiFbank, standardize
from assoc_lightning.nn.augment import WaveAugment
from assoc_lightning.nn.towers.base import FrozenTower
from assoc_lightning.utils.files import atomic_save, load_or_build

log = logging.getLogger(__name__)
ARCH_VERSION = 2  # bump when the architecture changes: cached weights then no longer match


class HashedBagOfWords(nn.Module):
    """Text -> embedding: lower-cased words hashed (CRC32) into buckets, mean-pooled, MLP.

    Hashing needs no vocabulary file, so any caption encodes and the result is stable across
    processes (unlike Python's salted ``hash``).
    """

    def __init__(self, dim: int, buckets: int = 4096, width: int = 128) -> None:
        super().__init__()
        self.buckets = buckets
        self.bag = nn.EmbeddingBag(buckets, width, mode="mean")
        self.mlp = nn.Sequential(nn.ReLU(), nn.Linear(width, dim))

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, offsets = [], []
        for text in texts:
            offsets.append(len(ids))
            words = re.findall(r"[a-z0-9]+", text.lower()) or [""]
            ids.extend(zlib.crc32(w.encode()) % self.buckets for w in words)
        return torch.tensor(ids), torch.tensor(offsets)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        ids, offsets = self.tokenize(texts)
        device = self.bag.weight.device
        return self.mlp(self.bag(ids.to(device), offsets.to(device)))


def _image_encoder(dim: int) -> nn.Sequential:
    """28x28 -> two stride-2 3x3 convs (32, 64) -> linear."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(32, 64, 3, stride=2, padding=1),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, dim),
    )


def _audio_encoder(dim: int, bins: int) -> nn.Sequential:
    """``[N, bins, frames]`` fbank -> two stride-2 1-D convs over time (mel bins as channels)
    -> 8 pooled time steps -> linear (1-D convs: ~5x cheaper than 2-D ones on CPU)."""
    return nn.Sequential(
        nn.Conv1d(bins, 64, 5, stride=2, padding=2),
        nn.ReLU(inplace=True),
        nn.Conv1d(64, 64, 5, stride=2, padding=2),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool1d(8),
        nn.Flatten(),
        nn.Linear(64 * 8, dim),
    )


class ToyContrastiveSpace(FrozenTower):
    """A text<->``modality`` contrastive space trained locally, then frozen.

    Args:
        modality: ``"image"`` (uint8 ``[N, 1, 28, 28]``) or ``"audio"`` (16 kHz waveforms
            ``[N, T]``, 40 Kaldi fbank bins, standardized per utterance).
        dim: embedding size.
        steps, batch_size, lr, temperature: InfoNCE training (Adam) done once on first use.
        seed: initializes the weights and draws the batches; two spaces with different seeds
            have unrelated text encoders, as CLIP's and CLAP's are.
        sample_rate: audio input rate.
        augment: audio only: waveform augmentation of the training clips (``None``: none).
            Each clip joins the training pool ``augment_copies`` more times, each time
            augmented afresh (drawn once from ``seed``: the features are computed once, not
            per step, which keeps the first run short).
        augment_copies: augmented copies of each training clip.
    """

    def __init__(
        self,
        modality: str = "image",
        dim: int = 64,
        steps: int = 300,
        batch_size: int = 128,
        lr: float = 2e-3,
        temperature: float = 0.07,
        seed: int = 0,
        sample_rate: int = 16000,
        augment: WaveAugment | None = None,
        augment_copies: int = 2,
    ) -> None:
        super().__init__()
        if modality not in ("image", "audio"):
            raise ConfigError(f"modality must be 'image' or 'audio', got {modality!r}")
        self.config = dict(
            modality=modality, dim=dim, steps=steps, batch_size=batch_size, lr=lr,
            temperature=temperature, seed=seed, sample_rate=sample_rate,
        )  # fmt: skip
        self.augment = augment if modality == "audio" and augment_copies > 0 else None
        self.augment_copies = augment_copies
        if self.augment is not None:  # part of the cached weights' key
            names = inspect.signature(WaveAugment).parameters
            settings = {k: getattr(self.augment, k) for k in names}
            self.config.update(augment=settings, augment_copies=augment_copies)
        self.modalities = ("text", modality)
        self.modality, self.dim, self.sample_rate = modality, dim, sample_rate
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.text = HashedBagOfWords(dim)
            if modality == "image":
                self.encoder = _image_encoder(dim)
            else:
                self.fbank = KaldiFbank(sample_rate, num_mel_bins=40)
                self.encoder = _audio_encoder(dim, 40)
        self._freeze()

    # ------------------------------------------------------------------ frozen tower API
    def fingerprint(self) -> str:
        """The hash of the configuration and training data, set by :meth:`prepare`."""
        if self._fingerprint is None:
            raise RuntimeError("ToyContrastiveSpace.prepare() must run before it is used")
        return self._fingerprint

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        if self.modality == "image":
            return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()
        return standardize(self.fbank(x.float()), dim=1).transpose(1, 2)  # [N, 40, T]

    def _encode_features(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(feats), dim=-1)

    def _encode(self, modality: str, inputs) -> torch.Tensor:
        """Texts (list of str) or inputs (tensor) -> features (FrozenTower normalizes them)."""
        if modality == "text":
            return self.text(list(inputs))
        return self.encoder(self._features(inputs.to(self.device)))

    # ------------------------------------------------------------------ local training
    def prepare(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor,
        captions: Sequence[Sequence[str]],
        cache_dir: str | os.PathLike,
        source_fingerprint: str,
    ) -> None:
        """Load the cached weights for this configuration and data, or train and cache them.

        ``inputs[i]`` has class ``labels[i]``; a training pair is an input with a caption drawn
        from ``captions[labels[i]]``.
        """
        key = json.dumps(
            {**self.config, "data": source_fingerprint, "arch": ARCH_VERSION}, sort_keys=True
        )
        self._fingerprint = hashlib.sha1(key.encode()).hexdigest()[:16]
        path = Path(cache_dir) / f"toy_space_{self.modality}_{self._fingerprint}.pt"

        def train() -> bool:  # one process trains; the others wait, then load its weights
            log.info("training the local %s<->text contrastive space (once)", self.modality)
            self._fit(inputs, labels, captions)
            atomic_save(lambda tmp: torch.save(self.state_dict(), tmp), path)
            return True

        load_or_build(path, lambda: self._load(path), train)

    def _load(self, path: Path) -> bool | None:
        """Load cached weights; None when there are none or they do not load (then retrained)."""
        if not path.is_file():
            return None
        try:
            self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except Exception as err:  # any unreadable cache file: train again
            log.warning("cached weights %s do not load (%s); training them again", path, err)
            return None
        return True

    def _fit(
        self, inputs: torch.Tensor, labels: torch.Tensor, captions: Sequence[Sequence[str]]
    ) -> None:
        c = self.config
        gen = torch.Generator().manual_seed(c["seed"])
        with torch.no_grad():
            feats = torch.cat([self._features(x) for x in inputs.split(512)])
            if self.augment is not None:
                views = [feats]
                for _ in range(self.augment_copies):
                    views.append(
                        torch.cat(
                            [
                                self._features(self.augment(x.float(), gen))
                                for x in inputs.split(512)
                            ]
                        )
                    )
                feats = torch.cat(views)
                labels = labels.repeat(self.augment_copies + 1)
        params = [p for n, p in self.named_parameters() if not n.startswith("fbank")]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=c["lr"])
        nn.Module.train(self, True)  # FrozenTower.train() would keep eval mode
        for _ in range(c["steps"]):
            idx = torch.randint(len(feats), (c["batch_size"],), generator=gen)
            texts = []
            for label in labels[idx].tolist():
                pool = captions[label]
                texts.append(pool[torch.randint(len(pool), (), generator=gen).item()])
            x = self._encode_features(feats[idx])
            loss = info_nce(x, self.text(texts), c["temperature"], gather=False)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        self._freeze()
