"""Image canvases for a measurable localization check: the item's image in one cell of a
``grid`` x ``grid`` canvas, the other cells holding distractor images of other classes.

Paired with the item's sound, a canvas asks where in the picture the sound comes from, with a
known answer (the target cell, chance 1 / grid^2): the embedded analogue of a scene holding
the sounding object among others (DMC's localization; docs/methods.md, DMC).
``ImageCanvas`` wraps any image :class:`LabeledDataset` (labels and length unchanged): cells
are the base image's size, empty cells are zeros, and the distractors are items of classes
other than the target's, each class at most once. The layouts are drawn once per item from
``seed``; :meth:`extras` gives the item's ``target_cell`` (row-major) and ``grid``.
"""

from __future__ import annotations

import numpy as np
import torch

from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.errors import ConfigError


class ImageCanvas(LabeledDataset):
    """``base``'s images placed in a ``grid`` x ``grid`` canvas among ``distractors`` others.

    Args:
        base: an image dataset (samples ``[C, H, W]``).
        grid: cells per side (2: a 2 x 2 canvas, chance 0.25).
        distractors: images of other classes in the other cells (0 .. grid^2 - 1; at most
            the number of other classes).
        seed: the layouts' seed.
    """

    modality = "image"

    def __init__(
        self,
        base: LabeledDataset,
        grid: int = 2,
        distractors: int = 3,
        seed: int = 0,
    ) -> None:
        super().__init__(base.labels)
        classes = np.unique(base.labels)
        most = min(grid * grid - 1, len(classes) - 1)  # free cells, other classes
        if grid < 1 or not 0 <= distractors <= most:
            raise ConfigError(
                f"canvas: grid must be >= 1 and distractors in 0..{most} (the free cells and "
                f"the other classes), got grid={grid}, distractors={distractors}"
            )
        self.base, self.grid, self.distractors = base, grid, distractors
        self.by_class = {int(c): np.flatnonzero(base.labels == c) for c in classes}
        rng = np.random.default_rng(seed)
        self.layouts = [self._draw(i, rng.integers) for i in range(len(self))]

    def _draw(self, index: int, integers) -> tuple[list[int], int]:
        """(the items per cell, -1 for empty; the target cell), with ``integers(n)`` in [0, n)."""
        cells = self.grid * self.grid
        target = int(integers(cells))
        others = [c for c in self.by_class if c != int(self.labels[index])]
        chosen = []
        for _ in range(self.distractors):
            c = others.pop(int(integers(len(others))))
            chosen.append(int(self.by_class[c][int(integers(len(self.by_class[c])))]))
        free = [k for k in range(cells) if k != target]
        layout = [-1] * cells
        layout[target] = index
        for item in chosen:
            layout[free.pop(int(integers(len(free))))] = item
        return layout, target

    def compose(self, tiles: dict[int, torch.Tensor], layout: list[int]) -> torch.Tensor:
        first = next(iter(tiles.values()))
        c, h, w = first.shape
        canvas = first.new_zeros(c, self.grid * h, self.grid * w)
        for k, item in enumerate(layout):
            if item >= 0:
                r, col = divmod(k, self.grid)
                canvas[:, r * h : (r + 1) * h, col * w : (col + 1) * w] = tiles[item]
        return canvas

    def _canvas(self, index: int, target: torch.Tensor) -> torch.Tensor:
        layout, _ = self.layouts[index]
        tiles = {item: self.base.load(item) for item in layout if item >= 0 and item != index}
        tiles[index] = target
        return self.compose(tiles, layout)

    def load(self, index: int) -> torch.Tensor:
        return self._canvas(index, self.base.load(index))

    def load_same_class(self, index: int) -> torch.Tensor:
        return self._canvas(index, self.base.load_same_class(index))

    def extras(self, index: int) -> dict:
        """The item's ``target_cell`` and ``grid``."""
        return {"target_cell": self.layouts[index][1], "grid": self.grid}

    def __getitem__(self, index: int) -> dict:
        return {**super().__getitem__(index), **self.extras(index)}
