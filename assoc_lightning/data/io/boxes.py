"""Sound-source boxes of the Senocak et al. Flickr-SoundNet annotations, and their consensus map.

``Annotations/<id>.xml`` holds several ``<person><bbox><type>object|ambient sound</type>
<xmin/><ymin/><xmax/><ymax/></bbox></person>`` entries, coordinates on a 256 x 256 frame.
:func:`consensus_map` turns them into the ground-truth map of the Senocak protocol as the
widely used LVS evaluation builds it (hche11/Localizing-Visual-Sounds-the-Hard-Way,
``utils.py: testset_gt``): each box scaled to the image grid, the maps summed, divided by the
number of agreeing annotators needed (2) and clipped at 1. It lives in the data layer because
datasets put it into their items (``gt_map``); the scores are ``eval/metrics/localization.py``.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from assoc_lightning.data.errors import DatasetCorruptError

SENOCAK_FRAME = 256  # the annotation frame's side
EXPECTED = "a Senocak annotation: <person><bbox><xmin/><ymin/><xmax/><ymax/></bbox></person>"


@dataclass(frozen=True)
class Box:
    """One annotated box, ``[xmin, xmax) x [ymin, ymax)`` on the annotation frame."""

    xmin: int
    ymin: int
    xmax: int
    ymax: int
    kind: str = ""  # "object" or "ambient sound" (the XML's <type>), "" when absent


def _coordinate(bbox: ET.Element, tag: str, path: str | os.PathLike) -> int:
    node = bbox.find(tag)
    if node is None or node.text is None:
        raise DatasetCorruptError(path, EXPECTED, f"a <bbox> without <{tag}>")
    try:
        return int(float(node.text.strip()))
    except ValueError:
        raise DatasetCorruptError(path, EXPECTED, f"<{tag}>{node.text}</{tag}>") from None


def read_senocak_boxes(path: str | os.PathLike) -> list[list[Box]]:
    """The boxes of one annotation file, grouped by their ``<person>`` element (one annotator;
    a ``<bbox>`` outside any ``<person>`` is a group of its own). Coordinates are read by tag
    name, so the order of the children does not matter; a file with no box gives ``[]``.
    Raises :class:`DatasetCorruptError` naming the file when it is not such XML."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as err:
        raise DatasetCorruptError(path, EXPECTED, f"{type(err).__name__}: {err}") from err
    groups: list[list[Box]] = []
    for person in root.iter("person"):
        groups.append([_box(b, path) for b in person.iter("bbox")])
    inside = {id(b) for p in root.iter("person") for b in p.iter("bbox")}
    groups += [[_box(b, path)] for b in root.iter("bbox") if id(b) not in inside]
    return [g for g in groups if g]


def _box(bbox: ET.Element, path: str | os.PathLike) -> Box:
    kind = (bbox.findtext("type") or "").strip()
    xmin, ymin, xmax, ymax = (_coordinate(bbox, t, path) for t in ("xmin", "ymin", "xmax", "ymax"))
    return Box(xmin, ymin, xmax, ymax, kind)


def box_mask(boxes: Sequence[Box], size: int = 224, frame: int = SENOCAK_FRAME) -> torch.Tensor:
    """Binary ``[size, size]`` union of ``boxes`` scaled from the ``frame`` grid: each corner
    ``floor(size * v / frame)`` (LVS's ``int(224 * v / 256)``), end-exclusive, clipped."""
    mask = torch.zeros(size, size, dtype=torch.bool)
    for b in boxes:
        x0, y0, x1, y1 = (
            min(max(size * v // frame, 0), size) for v in (b.xmin, b.ymin, b.xmax, b.ymax)
        )
        mask[y0:y1, x0:x1] = True
    return mask


def consensus_map(
    annotators: Sequence[Sequence[Box]],
    size: int = 224,
    frame: int = SENOCAK_FRAME,
    consensus: int = 2,
) -> torch.Tensor:
    """Ground truth ``g`` ``[size, size]`` float32: ``min(sum_j b_j / consensus, 1)`` with
    ``b_j`` annotator j's binary box map (Senocak et al.'s ``#consensus`` = 2 of their 3
    annotators). A pixel one annotator marks is 0.5, two or more 1; no box: all zeros.

    LVS sums single boxes; we take the union within each annotator first, which is the same
    unless one annotator's boxes overlap (LVS would count that overlap twice)."""
    g = torch.zeros(size, size)
    for boxes in annotators:
        g += box_mask(boxes, size, frame).float()
    return (g / consensus).clamp_(max=1.0)
