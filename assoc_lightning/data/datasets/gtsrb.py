"""GTSRB (German Traffic Sign Recognition Benchmark) images from the official on-disk layout.

Layout (torchvision's, after unzipping the official archives)::

    <root>/gtsrb/GTSRB/Training/00000 ... 00042/<track>_<n>.ppm + GT-000KK.csv
    <root>/gtsrb/GTSRB/Final_Test/Images/<n>.ppm
    <root>/gtsrb/GT-final_test.csv

``<root>`` may also be the ``gtsrb`` folder itself, and the training images may sit in the
official archive's ``GTSRB/Final_Training/Images/000KK``. The GT csv files are ';'-separated
with the header ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``; labels always
come from them (``Final_Test/Images/GT-final_test.test.csv``, which has no ClassId, is ignored).
43 classes; 39,209 training and 12,630 test images of varying size (~15x15 to 250x250).

Validation is split from the training set by *track* (``<track>`` in the file name: ~30 images
of one physical sign), so no sign is seen in both training and validation.

The cross-modal VAE-associator paper uses a subset of circular signs: four command signs
(:data:`TRAFFIC_COMMANDS`) and five distractors (:data:`TRAFFIC_DISTRACTORS`), 10,709 images
across train+test. The GTSRB ids below are *our choice*: the paper's appendix with the mapping
is unavailable, and the candidates are ambiguous (stop: 17 No entry or 15 No vehicles; left:
34 Turn left ahead or 37 Go straight or left; right: 33 Turn right ahead or 36 Go straight or
right). Check a choice against the paper's count with :func:`traffic_subset_count` on the real
data. By the commonly published per-class counts these ids give 8,010 + 2,580 = 10,590 images;
every class count is a multiple of 30 except class 33 (689 training images), and 10,709 is
29 mod 30, which suggests the paper's set includes 33 (Turn right ahead).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.image import open_image, to_float
from assoc_lightning.errors import ConfigError

NAME = "GTSRB"
LAYOUT = """\
<root>/gtsrb/GTSRB/Training/<00000..00042>/<track>_<n>.ppm   (P6 images)
<root>/gtsrb/GTSRB/Training/<00000..00042>/GT-<000KK>.csv    (';'-separated, with ClassId)
<root>/gtsrb/GTSRB/Final_Test/Images/<n>.ppm
<root>/gtsrb/GT-final_test.csv                               (';'-separated, with ClassId)
(or <root> itself is the gtsrb folder: <root>/GTSRB/..., <root>/GT-final_test.csv)"""
HOW_TO_GET = (
    "https://benchmark.ini.rub.de/gtsrb_dataset.html (or torchvision.datasets.GTSRB(download=True))"
)
CSV_HEADER = ("Filename", "Width", "Height", "Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2", "ClassId")
NUM_CLASSES = 43
SIZES = {"train": 39209, "test": 12630}
CLASS_NAMES = (
    "Speed limit (20km/h)",
    "Speed limit (30km/h)",
    "Speed limit (50km/h)",
    "Speed limit (60km/h)",
    "Speed limit (70km/h)",
    "Speed limit (80km/h)",
    "End of speed limit (80km/h)",
    "Speed limit (100km/h)",
    "Speed limit (120km/h)",
    "No passing",
    "No passing for vehicles over 3.5 metric tons",
    "Right-of-way at the next intersection",
    "Priority road",
    "Yield",
    "Stop",
    "No vehicles",
    "Vehicles over 3.5 metric tons prohibited",
    "No entry",
    "General caution",
    "Dangerous curve to the left",
    "Dangerous curve to the right",
    "Double curve",
    "Bumpy road",
    "Slippery road",
    "Road narrows on the right",
    "Road work",
    "Traffic signals",
    "Pedestrians",
    "Children crossing",
    "Bicycles crossing",
    "Beware of ice/snow",
    "Wild animals crossing",
    "End of all speed and passing limits",
    "Turn right ahead",
    "Turn left ahead",
    "Ahead only",
    "Go straight or right",
    "Go straight or left",
    "Keep right",
    "Keep left",
    "Roundabout mandatory",
    "End of no passing",
    "End of no passing by vehicles over 3.5 metric tons",
)

#: Command -> GTSRB class id (our choice; see the module docstring).
TRAFFIC_COMMANDS = {"go": 35, "stop": 15, "left": 37, "right": 36}
#: Distractor classes: no passing, 30 km/h, >3.5 t prohibited, no entry, roundabout.
TRAFFIC_DISTRACTORS = (9, 1, 16, 17, 40)
#: All nine classes of the subset: the commands in order, then the distractors.
TRAFFIC_CLASSES = (*TRAFFIC_COMMANDS.values(), *TRAFFIC_DISTRACTORS)
#: Images (train+test) in the paper's subset.
PAPER_SUBSET_SIZE = 10709


class GTRow(NamedTuple):
    """One row of a GT csv; the ROI corners are inclusive."""

    filename: str
    width: int
    height: int
    x1: int
    y1: int
    x2: int
    y2: int
    class_id: int


def _not_found(root: Path, missing: Path | str | None = None) -> DatasetNotFoundError:
    return DatasetNotFoundError(NAME, root, LAYOUT, HOW_TO_GET, missing=missing)


def find_base(root: str | os.PathLike) -> Path:
    """The folder holding ``GTSRB/``: ``<root>/gtsrb`` (torchvision's) or ``<root>`` itself."""
    root = Path(root)
    for base in (root / "gtsrb", root):
        if (base / "GTSRB").is_dir():
            return base
    missing = root if not root.is_dir() else root / "gtsrb" / "GTSRB"
    raise _not_found(root, missing)


def training_dir(base: Path) -> Path:
    """``GTSRB/Training`` (torchvision's) or ``GTSRB/Final_Training/Images`` (the INI archive)."""
    for d in (base / "GTSRB" / "Training", base / "GTSRB" / "Final_Training" / "Images"):
        if d.is_dir():
            return d
    raise _not_found(base, base / "GTSRB" / "Training")


def final_test_csv(base: Path) -> Path:
    """``GT-final_test.csv`` (with ClassId) next to ``GTSRB/`` or inside it."""
    candidates = (base / "GT-final_test.csv", base / "GTSRB" / "GT-final_test.csv")
    for path in candidates:
        if path.is_file():
            return path
    raise _not_found(base, candidates[0])


def read_gt_csv(path: Path, root: Path | None = None) -> list[GTRow]:
    """Parse a ';'-separated GT csv; check the header, the field count and the ROI boxes."""
    if not path.is_file():
        raise _not_found(root if root is not None else path.parent, path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DatasetCorruptError(path, "a ';'-separated text file", str(err)) from err
    lines = [line for line in text.splitlines() if line.strip()]
    header = tuple(h.strip() for h in lines[0].split(";")) if lines else ()
    if header != CSV_HEADER:
        found = repr(lines[0][:120]) if lines else "an empty file"
        raise DatasetCorruptError(
            path, f"the header {';'.join(CSV_HEADER)!r}", found, "extract the archive again"
        )
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        fields = [f.strip() for f in line.split(";")]
        try:
            if len(fields) != len(CSV_HEADER):
                raise ValueError
            row = GTRow(fields[0], *(int(f) for f in fields[1:]))
        except ValueError:
            raise DatasetCorruptError(
                path,
                f"{len(CSV_HEADER)} ';'-separated fields, integers after Filename",
                f"line {n}: {line[:120]!r}",
            ) from None
        if not (0 <= row.x1 <= row.x2 and 0 <= row.y1 <= row.y2):
            raise DatasetCorruptError(
                path, "ROI boxes with 0 <= X1 <= X2 and 0 <= Y1 <= Y2", f"line {n}: {line!r}"
            )
        if not 0 <= row.class_id < NUM_CLASSES:
            raise DatasetCorruptError(
                path, f"ClassId in 0..{NUM_CLASSES - 1}", f"line {n}: {line!r}"
            )
        rows.append(row)
    return rows


def class_csv(train_dir: Path, class_id: int) -> Path:
    """The GT csv of one training class folder."""
    return train_dir / f"{class_id:05d}" / f"GT-{class_id:05d}.csv"


def track_of(filename: str) -> str:
    """The track of a training file ``TTTTT_IIIII.ppm`` (the whole stem when there is no ``_``)."""
    return Path(filename).stem.split("_", 1)[0]


def val_tracks(tracks: Sequence[str], val_fraction: float, seed: int, class_id: int) -> set[str]:
    """A seeded choice of whole tracks of one class for validation.

    ``round(val_fraction * n_tracks)`` tracks, at least one and at most ``n_tracks - 1`` when
    ``val_fraction > 0`` and the class has two or more tracks. The generator is seeded with
    ``(seed, class_id)``, so a class's choice does not depend on which other classes are used.
    """
    unique = sorted(set(tracks))
    n = len(unique)
    if val_fraction <= 0 or n < 2:
        return set()
    k = min(n - 1, max(1, round(val_fraction * n)))
    rng = np.random.default_rng([seed, class_id])
    return {unique[i] for i in rng.choice(n, size=k, replace=False).tolist()}


def _check_files(rows: Sequence[GTRow], folder: Path, root: Path) -> None:
    if not folder.is_dir():
        raise _not_found(root, folder)
    present = set(os.listdir(folder))
    for row in rows:
        if row.filename not in present:
            raise _not_found(root, folder / row.filename)


class GTSRBImages(LabeledDataset):
    """One split of GTSRB as ``[3, image_size, image_size]`` floats in [0, 1].

    Args:
        root: the data directory holding ``gtsrb/`` (or the ``gtsrb`` folder itself).
        split: ``train``, ``val`` (whole tracks held out of the training set) or ``test``.
        image_size: side of the square output (bilinear, antialiased resize).
        crop_roi: crop the sign's ROI box from the GT csv before resizing.
        classes: keep only these GTSRB class ids, relabelled ``0..len(classes)-1`` in this
            order; ``None`` keeps every class folder present, labelled by its GTSRB ClassId.
        val_fraction: fraction of each class's tracks held out for ``val``.
        seed: seed of the track choice.

    Attributes: ``files`` (image paths), ``class_ids`` (GTSRB ids), ``boxes`` (inclusive ROI
    ``x1, y1, x2, y2``), ``sizes`` (csv width, height), ``tracks`` (``KKKKK/TTTTT`` for
    train/val, ``None`` for test).
    """

    modality = "image"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str,
        image_size: int = 52,
        crop_roi: bool = True,
        classes: Sequence[int] | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ConfigError(f"split must be train/val/test, got {split!r}")
        if not 0 <= val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
        if classes is not None:
            classes = [int(c) for c in classes]
            bad = [c for c in classes if not 0 <= c < NUM_CLASSES]
            if bad or len(set(classes)) != len(classes):
                raise ConfigError(
                    f"classes must be distinct ids in 0..{NUM_CLASSES - 1}: {classes}"
                )
        self.root = Path(root)
        self.split, self.image_size, self.crop_roi = split, image_size, crop_roi
        self.classes = classes
        base = find_base(self.root)
        if split == "test":
            rows, folders, tracks = self._test_rows(base, classes)
        else:
            rows, folders, tracks = self._train_rows(base, split, classes, val_fraction, seed)
        self.files = [folder / row.filename for row, folder in zip(rows, folders, strict=True)]
        self.class_ids = np.array([r.class_id for r in rows], dtype=np.int64)
        self.boxes = np.array([r[3:7] for r in rows], dtype=np.int64).reshape(-1, 4)
        self.sizes = np.array([r[1:3] for r in rows], dtype=np.int64).reshape(-1, 2)
        self.tracks = tracks
        if classes is None:
            labels = self.class_ids
        else:
            index = {c: i for i, c in enumerate(classes)}
            labels = [index[int(c)] for c in self.class_ids]
        super().__init__(labels)

    def _train_rows(
        self,
        base: Path,
        split: str,
        classes: Sequence[int] | None,
        val_fraction: float,
        seed: int,
    ) -> tuple[list[GTRow], list[Path], list[str | None]]:
        train_dir = training_dir(base)
        if classes is None:
            classes = sorted(
                int(d.name) for d in train_dir.iterdir() if d.is_dir() and d.name.isdigit()
            )
            if not classes:
                raise _not_found(self.root, train_dir / "00000")
        rows, folders, tracks = [], [], []
        for c in classes:
            folder = train_dir / f"{c:05d}"
            if not folder.is_dir():
                raise _not_found(self.root, folder)
            csv_path = class_csv(train_dir, c)
            class_rows = sorted(read_gt_csv(csv_path, self.root))
            for row in class_rows:
                if row.class_id != c:
                    raise DatasetCorruptError(
                        csv_path,
                        f"ClassId {c} (the folder's class)",
                        f"ClassId {row.class_id} for {row.filename}",
                    )
            _check_files(class_rows, folder, self.root)
            held_out = val_tracks([track_of(r.filename) for r in class_rows], val_fraction, seed, c)
            for row in class_rows:
                track = track_of(row.filename)
                if (track in held_out) == (split == "val"):
                    rows.append(row)
                    folders.append(folder)
                    tracks.append(f"{c:05d}/{track}")
        return rows, folders, tracks

    def _test_rows(
        self, base: Path, classes: Sequence[int] | None
    ) -> tuple[list[GTRow], list[Path], list[str | None]]:
        rows = read_gt_csv(final_test_csv(base), self.root)
        if classes is not None:
            keep = set(classes)
            rows = [r for r in rows if r.class_id in keep]
        folder = base / "GTSRB" / "Final_Test" / "Images"
        _check_files(rows, folder, self.root)
        return rows, [folder] * len(rows), [None] * len(rows)

    def load(self, index: int) -> torch.Tensor:
        path = self.files[index]
        img = open_image(path, "a readable PPM image", "extract the archive again")
        if self.crop_roi:
            width, height = img.size
            if (width, height) != tuple(self.sizes[index].tolist()):
                csv_w, csv_h = self.sizes[index].tolist()
                raise DatasetCorruptError(
                    path, f"the size in the GT csv ({csv_w}x{csv_h})", f"{width}x{height}"
                )
            x1, y1, x2, y2 = self.boxes[index].tolist()
            box = (min(x1, width), min(y1, height), min(x2 + 1, width), min(y2 + 1, height))
            if box[2] <= box[0] or box[3] <= box[1]:
                raise DatasetCorruptError(
                    path, f"a ROI inside the {width}x{height} image", f"ROI {x1},{y1},{x2},{y2}"
                )
            img = img.crop(box)
        x = to_float(img)
        size = [self.image_size, self.image_size]
        x = F.resize(x, size, interpolation=InterpolationMode.BILINEAR, antialias=True)
        return x.clamp_(0.0, 1.0)


def traffic_subset_count(
    root: str | os.PathLike, class_ids: Sequence[int] = TRAFFIC_CLASSES
) -> int:
    """Train+test images of ``class_ids`` (default: the paper's nine), from the csvs alone.

    Compare with :data:`PAPER_SUBSET_SIZE` (10,709) to check a class-id choice on the real data.
    """
    base = find_base(root)
    train_dir = training_dir(base)
    keep = {int(c) for c in class_ids}
    n_train = sum(len(read_gt_csv(class_csv(train_dir, c), Path(root))) for c in sorted(keep))
    n_test = sum(r.class_id in keep for r in read_gt_csv(final_test_csv(base), Path(root)))
    return n_train + n_test


def download_gtsrb(root: str | os.PathLike) -> None:
    """GTSRB into ``<root>/gtsrb`` through torchvision (official URLs, checksums)."""
    from torchvision.datasets import GTSRB

    for split in ("train", "test"):
        GTSRB(str(root), split=split, download=True)
