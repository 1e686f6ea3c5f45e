"""Image files: decode to RGB, list a folder's images, CLIP-style resize + centre crop.

Decoding goes through PIL; a missing, truncated or undecodable file raises
:class:`DatasetCorruptError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from assoc_lightning.data.errors import DatasetCorruptError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm")


def open_image(
    path: str | os.PathLike, expected: str = "a readable image (jpg/png/ppm)", fix: str = ""
) -> Image.Image:
    """The decoded image as RGB; DatasetCorruptError if it cannot be read completely."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except Exception as err:  # PIL raises several types for bad or truncated files
        raise DatasetCorruptError(path, expected, f"{type(err).__name__}: {err}", fix) from err


def to_float(img: Image.Image) -> torch.Tensor:
    """RGB floats ``[3, H, W]`` in [0, 1]."""
    return F.to_dtype(F.pil_to_tensor(img), torch.float32, scale=True)


def resize_center_crop(img: Image.Image, size: int) -> torch.Tensor:
    """RGB uint8 ``[3, size, size]``: shorter side to ``size`` (bicubic, antialiased), centre crop."""
    img = img.convert("RGB")
    img = F.resize(img, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    return F.pil_to_tensor(F.center_crop(img, [size, size]))


def images_under(folder: Path, extensions: set[str], recursive: bool) -> list[str]:
    """Sorted paths of the image files in ``folder`` (and its sub-folders when recursive);
    hidden files and folders are skipped, suffixes compared case-insensitively."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")) if recursive else []
        found += [
            os.path.join(dirpath, f)
            for f in filenames
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in extensions
        ]
    return sorted(found)
