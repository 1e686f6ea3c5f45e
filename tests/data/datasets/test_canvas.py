"""Image canvases: the item in one cell, distractors of other classes, seeded layouts
(the digits datamodule's canvas pairs: tests/data/datamodules/test_digits.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from assoc_lightning.data.datasets.base import TensorLabeledDataset
from assoc_lightning.data.datasets.canvas import ImageCanvas
from assoc_lightning.errors import ConfigError


def tiles(n_classes: int = 5, per_class: int = 3) -> TensorLabeledDataset:
    """Item i is a 4 x 4 tile filled with i + 1 (so a cell tells which item it holds)."""
    n = n_classes * per_class
    data = (torch.arange(n, dtype=torch.float32) + 1).view(n, 1, 1, 1).expand(n, 1, 4, 4)
    return TensorLabeledDataset("image", data.clone(), np.arange(n) % n_classes)


def cells(canvas: torch.Tensor, grid: int) -> list[int]:
    """The item in each cell (row-major), -1 for an empty one."""
    out = []
    for k in range(grid * grid):
        r, c = divmod(k, grid)
        v = canvas[0, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4]
        assert (v == v[0, 0]).all()
        out.append(int(v[0, 0]) - 1)
    return out


def test_fixed_canvas_places_the_item_in_its_target_cell_among_other_classes():
    base = tiles()
    ds = ImageCanvas(base, grid=2, distractors=3, seed=1)
    assert len(ds) == len(base) and (ds.labels == base.labels).all()
    seen_cells = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["image"].shape == (1, 8, 8) and item["grid"] == 2 and item["label"] == i % 5
        held = cells(item["image"], 2)
        assert held[item["target_cell"]] == i
        others = [j for k, j in enumerate(held) if k != item["target_cell"]]
        assert len(others) == 3 and -1 not in others
        classes = [int(base.labels[j]) for j in others]
        assert base.labels[i] not in classes and len(set(classes)) == 3  # each class once
        seen_cells.add(item["target_cell"])
        assert torch.equal(ds[i]["image"], item["image"])  # the same layout every time
    assert seen_cells == {0, 1, 2, 3}
    again = ImageCanvas(base, grid=2, distractors=3, seed=1)
    assert all(torch.equal(again[i]["image"], ds[i]["image"]) for i in range(len(ds)))


def test_bad_canvas_arguments():
    with pytest.raises(ConfigError, match="distractors in 0..3"):
        ImageCanvas(tiles(), grid=2, distractors=4)
    with pytest.raises(ConfigError, match="distractors in 0..1"):
        ImageCanvas(tiles(n_classes=2), grid=2, distractors=2)
