"""Sound-source localization scores of heat maps: cIoU, its success rate and AUC (the Senocak
protocol as the LVS evaluation computes it), and peak accuracy on a grid (the embedded check).

Reference: hche11/Localizing-Visual-Sounds-the-Hard-Way, ``test.py`` and ``utils.py``
(``Evaluator.cal_CIOU``, ``cal_AUC``, ``normalize_img``). Per item, the heat map is resized
bilinearly to the ground truth's grid, min-max normalized, and its top half kept
(:func:`binarize`); cIoU compares that mask with the consensus map ``g`` (values in [0, 1],
``data/io/boxes.py``). Over a set: the fraction with cIoU >= 0.5 (reported as "cIoU") and
the area under that fraction as the cIoU threshold goes 0, 0.05, ..., 1.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

AUC_THRESHOLDS = np.arange(21) * 0.05  # LVS: 0.05 * i for i in 0..20


def resize_maps(heat: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Heat maps ``[N, h, w]`` resized bilinearly to ``[N, *size]`` in fp64 (half-pixel
    centres, as LVS's ``cv2.resize(..., INTER_LINEAR)``)."""
    heat = heat.double()
    if tuple(heat.shape[-2:]) == tuple(size):
        return heat
    return F.interpolate(heat[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def min_max(heat: torch.Tensor) -> torch.Tensor:
    """Each map ``[N, H, W]`` scaled to [0, 1] (fp64); a constant map becomes all zeros."""
    heat = heat.double()
    flat = heat.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    span = (hi - lo)[:, None, None]
    out = (heat - lo[:, None, None]) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, out, torch.zeros_like(out))


def binarize(
    heat: torch.Tensor, top_fraction: float | None = 0.5, threshold: float = 0.5
) -> torch.Tensor:
    """Predicted source masks ``[N, H, W]`` (bool) of heat maps, min-max normalized first.

    ``top_fraction`` f (LVS: 0.5): a pixel is positive when it lies strictly above the value
    at ascending rank ``floor(H*W*(1 - f))`` of its map, or at the map's maximum (LVS keeps
    pixels already at 1, which matters when more than a fraction f ties at the top). With
    ``top_fraction=None``: positive where the normalized map is >= ``threshold`` (LVS's
    ``cal_CIOU`` on an unthresholded map). A constant map has no positive pixel.
    """
    norm = min_max(heat)
    if top_fraction is None:
        return norm >= threshold
    if not 0.0 < top_fraction <= 1.0:
        raise ValueError(f"top_fraction must be in (0, 1], got {top_fraction}")
    flat = norm.flatten(1)
    rank = min(int(flat.size(1) * (1.0 - top_fraction)), flat.size(1) - 1)
    t = flat.sort(dim=1).values[:, rank]
    return (norm > t[:, None, None]) | (norm >= 1.0)


def ciou(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Consensus IoU ``[N]`` (fp64) of masks ``pred`` ``[N, H, W]`` against maps ``gt``
    ``[N, H, W]`` in [0, 1]: ``sum(pred * g) / (sum(g) + sum(pred where g == 0))``
    (Senocak et al.; LVS ``cal_CIOU``). NaN when both ``g`` and ``pred`` are empty."""
    p, g = pred.double(), gt.double()
    inter = (p * g).flatten(1).sum(1)
    union = g.flatten(1).sum(1) + (p * (g == 0)).flatten(1).sum(1)
    return inter / union


def heat_map_ciou(
    heat: torch.Tensor, gt: torch.Tensor, top_fraction: float | None = 0.5, threshold: float = 0.5
) -> torch.Tensor:
    """Per-item cIoU ``[N]`` of raw heat maps ``[N, h, w]`` (resized to ``gt``'s grid,
    :func:`binarize`-d) against ground-truth maps ``[N, H, W]``."""
    heat = resize_maps(heat, tuple(gt.shape[-2:]))
    return ciou(binarize(heat, top_fraction, threshold), gt)


def success_rate(cious: torch.Tensor | np.ndarray, at: float = 0.5) -> float:
    """Fraction of items with cIoU >= ``at`` (LVS's reported "cIoU", ``np.mean(iou >= 0.5)``)."""
    c = np.asarray(cious, dtype=np.float64)
    return float(np.mean(c >= at))


def success_auc(cious: torch.Tensor | np.ndarray) -> float:
    """Area (trapezoid rule) under the success rate at cIoU thresholds 0, 0.05, ..., 1
    (LVS: ``sklearn.metrics.auc`` over the same 21 points)."""
    c = np.asarray(cious, dtype=np.float64)
    rates = np.array([np.mean(c >= t) for t in AUC_THRESHOLDS])
    return float(np.sum((rates[1:] + rates[:-1]) / 2 * np.diff(AUC_THRESHOLDS)))


def peak_cells(heat: torch.Tensor, grid: torch.Tensor | int) -> torch.Tensor:
    """Row-major cell ``[N]`` of a ``grid`` x ``grid`` partition holding each map's argmax
    (first maximum in row-major order on ties). Pixel (y, x) of an H x W map lies in cell
    ``(y * g // H) * g + x * g // W``."""
    n, h, w = heat.shape
    g = torch.as_tensor(grid, dtype=torch.long).expand(n)
    flat = heat.flatten(1).argmax(1)
    y, x = flat // w, flat % w
    return (y * g // h) * g + x * g // w


def peak_hits(
    heat: torch.Tensor, target_cell: torch.Tensor, grid: torch.Tensor | int
) -> torch.Tensor:
    """Whether each map's peak lands in its ``target_cell`` (bool ``[N]``)."""
    return peak_cells(heat, grid) == torch.as_tensor(target_cell, dtype=torch.long)


def peak_accuracy(heat: torch.Tensor, target_cell: torch.Tensor, grid: torch.Tensor | int) -> float:
    """Fraction of maps ``[N, H, W]`` whose argmax lies in the target cell of a g x g grid."""
    return float(peak_hits(heat, target_cell, grid).double().mean())
