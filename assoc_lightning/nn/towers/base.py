"""FrozenTower: a frozen, pre-trained contrastive space, and its checkpoint handling.

C-MCR connects two *frozen* contrastive spaces (docs/methods.md, C-MCR). A tower is the
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
files, not to the method's checkpoint. State-dict hooks drop every tower key from a *parent's*
``state_dict()`` and, on ``load_state_dict``, ignore tower keys found in a checkpoint and do
not report the absent ones as missing (``strict=True`` still holds for everything else).
``tower.state_dict()`` called on the tower itself still returns the weights.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

# Bump when our own preprocessing changes, so caches built with the old one are rebuilt.
PREPROCESS_VERSION = 1


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
