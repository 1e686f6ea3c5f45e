"""CLIP from a local directory, frozen, with the image processor's steps on the device.

Inputs: text is a list of str; images are a uint8 (0..255) or float (0..1) ``[N, C, H, W]``
tensor of any size, or a list of ``[C, H, W]`` tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.nn.towers.base import FrozenTower
from assoc_lightning.nn.towers.hf import load_local, pooled, tokenize, tokenizer_digest


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
        self.path, self.hub_name = Path(path).expanduser(), hub_name
        self.model, self.tokenizer, processor = load_local(
            "CLIP", self.path, hub_name, download, "CLIPModel", "CLIPImageProcessor"
        )
        self.image_transform = ClipImageTransform.from_processor(processor)
        text_positions = self.model.config.text_config.max_position_embeddings
        self.max_text_tokens = min(max_text_tokens, text_positions)
        self.dim = int(self.model.config.projection_dim)
        self._freeze()

    def _encode(self, modality: str, inputs: Any) -> torch.Tensor:
        if modality == "text":
            tok = tokenize(self.tokenizer, inputs, self.max_text_tokens, self.device)
            return pooled(self.model.get_text_features(**tok))
        pixels = self.image_transform(inputs).to(self.model.dtype)
        return pooled(self.model.get_image_features(pixel_values=pixels))

    def _preprocessing(self) -> dict:
        return {
            "image": self.image_transform.config(),
            "max_text_tokens": self.max_text_tokens,
            "tokenizer": tokenizer_digest(self.tokenizer),
        }

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, dim={self.dim}"
