"""Images from an ImageNet-style folder tree (C-MCR's image memory) or a flat folder.

Layout: ``<root>/<class>/<file>.{jpg,jpeg,png,ppm}`` (any case, e.g. ImageNet's ``.JPEG``;
files in sub-folders of a class folder count for that class). Classes are the sorted
sub-folder names, so label ids stay the same in a partial copy. A folder with image files and
no sub-folders is read as one class (label 0), e.g. ImageNet's flat ``val/``.

Images come out as uint8 ``[3, image_size, image_size]``: RGB, the shorter side resized to
``image_size`` (bicubic, antialiased, on the PIL image as CLIP's preprocessing does) and
centre-cropped. Normalization is left to the tower's processor.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from assoc_lightning.data.datasets.base import SkipCorruptDataset
from assoc_lightning.data.errors import DatasetNotFoundError
from assoc_lightning.data.io.image import (
    IMAGE_EXTENSIONS,
    images_under,
    open_image,
    resize_center_crop,
)

NAME = "image folder"
LAYOUT = """\
<root>/<class>/<file>.{jpg,jpeg,png,ppm}   (classes = sorted folder names; e.g. ImageNet train/)
or <root>/<file>.{jpg,jpeg,png,ppm}        (a flat folder: one class, label 0)"""
HOW_TO_GET = "ImageNet-1K: https://image-net.org/download (any folder of images works)"


class ImageFolderImages(SkipCorruptDataset):
    """Every image of an ImageNet-style tree (or a flat folder), labelled by class folder.

    Args:
        root: the folder (see ``LAYOUT``).
        image_size: side of the square uint8 output.
        extensions: file suffixes read, compared case-insensitively.
        skip_corrupt: skip unreadable images (counted, warned) instead of raising.

    Attributes: ``files`` (paths), ``class_names`` (folder names; the root's name when flat).
    """

    modality = "image"

    def __init__(
        self,
        root: str | os.PathLike,
        image_size: int = 224,
        extensions: Sequence[str] = IMAGE_EXTENSIONS,
        skip_corrupt: bool = True,
    ) -> None:
        self.root = Path(root)
        self.image_size = image_size
        exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        if not self.root.is_dir():
            raise DatasetNotFoundError(NAME, self.root, LAYOUT, HOW_TO_GET, missing=self.root)
        classes = sorted(
            d.name for d in self.root.iterdir() if d.is_dir() and not d.name.startswith(".")
        )
        files: list[str] = []
        labels: list[int] = []
        if classes:
            for label, name in enumerate(classes):
                found = images_under(self.root / name, exts, recursive=True)
                files += found
                labels += [label] * len(found)
        else:
            files = images_under(self.root, exts, recursive=False)
            labels = [0] * len(files)
            classes = [self.root.name]
        if not files:
            raise DatasetNotFoundError(
                NAME, self.root, LAYOUT, HOW_TO_GET, missing=f"any {sorted(exts)} file"
            )
        self.files = files
        self.class_names = tuple(classes)
        super().__init__(labels, skip_corrupt)

    def read(self, index: int) -> torch.Tensor:
        return resize_center_crop(open_image(self.files[index]), self.image_size)
