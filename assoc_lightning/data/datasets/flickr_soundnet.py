"""Flickr-SoundNet image-sound pairs (instance level), in the LVS or the Senocak layout.

Images are uint8 ``[3, S, S]`` (shorter side resized bicubically, centre crop), sounds mono
float32 at ``sample_rate`` looped when shorter than ``clip_seconds`` (as LVS does), then
cropped. Missing and corrupt files: see ``data/datasets/av_pairs.py``. The Senocak boxes
(``Annotations/<id>.xml``) of a pair: :meth:`FlickrSoundNetPairs.boxes`; with ``gt_map=True``
each item also carries their consensus map (``gt_map``, see ``data/io/boxes.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from assoc_lightning.data.datasets.av_pairs import AVPairs, warn_missing
from assoc_lightning.data.errors import DatasetNotFoundError
from assoc_lightning.data.io.audio import read_audio
from assoc_lightning.data.io.boxes import Box, consensus_map, read_senocak_boxes
from assoc_lightning.data.io.image import open_image, resize_center_crop
from assoc_lightning.errors import ConfigError

FLICKR_NAME = "Flickr-SoundNet"
FLICKR_LAYOUT = """\
LVS 250-pair test (hche11/Localizing-Visual-Sounds-the-Hard-Way):
  <root>/flickr_soundnet/metadata/flickr_test.csv   (rows <id>,<n>)
  <root>/flickr_soundnet/frames/<id>.jpg
  <root>/flickr_soundnet/audio/<id>.wav
Senocak et al. annotated set:
  <root>/flickr_soundnet/Dataset/Data/<sub>/<id>.jpg + <id>.wav
  <root>/flickr_soundnet/test_list.txt (or Dataset/test_list.txt; entries <id>.jpg)
Sound-source boxes (localization): <root>/flickr_soundnet/Annotations/<id>.xml
  (or Dataset/Annotations/<id>.xml)
(or <root> itself is the flickr_soundnet folder)"""
FLICKR_HOW_TO_GET = (
    "Senocak et al., 'Learning to Localize Sound Source in Visual Scenes' (CVPR 2018): "
    "https://github.com/ardasnck/learning_to_localize_sound_source ; the 250-pair test set: "
    "https://github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way"
)
FLICKR_LAYOUTS = ("auto", "lvs", "senocak")


def find_flickr(root: str | os.PathLike, layout: str = "auto") -> tuple[str, Path, Path]:
    """``(layout, base, list file)`` of a Flickr-SoundNet copy under ``root``."""
    if layout not in FLICKR_LAYOUTS:
        raise ConfigError(f"layout must be one of {FLICKR_LAYOUTS}, got {layout!r}")
    root = Path(root)
    for base in (root / "flickr_soundnet", root):
        lvs = base / "metadata" / "flickr_test.csv"
        if layout in ("auto", "lvs") and lvs.is_file():
            return "lvs", base, lvs
        if layout in ("auto", "senocak"):
            for lst in (base / "test_list.txt", base / "Dataset" / "test_list.txt"):
                if lst.is_file() and senocak_data_dir(base) is not None:
                    return "senocak", base, lst
    raise DatasetNotFoundError(FLICKR_NAME, root, FLICKR_LAYOUT, FLICKR_HOW_TO_GET)


def senocak_data_dir(base: Path) -> Path | None:
    """``Dataset/Data`` or ``Data`` under ``base``, if present."""
    for d in (base / "Dataset" / "Data", base / "Data"):
        if d.is_dir():
            return d
    return None


def annotations_dir(base: Path) -> Path | None:
    """``Annotations`` or ``Dataset/Annotations`` under ``base`` (the Senocak XML boxes)."""
    for d in (base / "Annotations", base / "Dataset" / "Annotations"):
        if d.is_dir():
            return d
    return None


def read_flickr_ids(path: Path, layout: str) -> list[str]:
    """Ids of a list: LVS csv rows ``<id>,<n>`` (a header without digits is skipped) or
    Senocak ``test_list.txt`` entries ``<id>.jpg``."""
    ids = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        entry = line.split(",")[0].strip() if layout == "lvs" else line.strip()
        if not entry:
            continue
        if layout == "lvs" and not ids and not any(ch.isdigit() for ch in entry):
            continue  # a header line
        ids.append(Path(entry).stem if layout == "senocak" else entry)
    return ids


def _senocak_files(data: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``id -> jpg`` and ``id -> wav`` under ``Data/`` (any depth)."""
    jpgs, wavs = {}, {}
    for dirpath, _, filenames in os.walk(data):
        for f in filenames:
            stem, ext = os.path.splitext(f)
            if ext.lower() in (".jpg", ".jpeg"):
                jpgs.setdefault(stem, Path(dirpath) / f)
            elif ext.lower() == ".wav":
                wavs.setdefault(stem, Path(dirpath) / f)
    return jpgs, wavs


class FlickrSoundNetPairs(AVPairs):
    """Flickr-SoundNet image-sound pairs (instance-level; every label is 0).

    Args:
        root: the Flickr-SoundNet folder or the data dir holding ``flickr_soundnet/``.
        layout: ``lvs`` (250-pair test), ``senocak`` (annotated set), or ``auto``.
        subset: ``list`` (the ids of the layout's list file) or ``all`` (every image with a
            sound, e.g. the 5,000 annotated pairs of the Senocak copy, as in C-MCR).
        image_size: side of the square uint8 image.
        sample_rate: audio output rate (48 kHz: CLAP's).
        clip_seconds: audio length; shorter sounds are looped (LVS loops to 20 s), longer
            ones cropped.
        skip_corrupt: skip unreadable files (counted, warned) instead of raising.
        gt_map: items also carry ``gt_map``, float32 ``[image_size, image_size]``, the
            consensus map of the pair's boxes (all zeros for a pair without an XML file);
            needs an ``Annotations`` folder.

    Attributes: ``ids``, ``images``, ``sounds`` (paths per pair), ``layout``, ``num_missing``,
    ``annotations`` (the XML folder or None).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        layout: str = "auto",
        subset: str = "list",
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        skip_corrupt: bool = True,
        gt_map: bool = False,
    ) -> None:
        if subset not in ("list", "all"):
            raise ConfigError(f"subset must be 'list' or 'all', got {subset!r}")
        self.layout, self.base, list_file = find_flickr(root, layout)
        if self.layout == "lvs":
            jpgs = {p.stem: p for p in (self.base / "frames").glob("*.jpg")}
            wavs = {p.stem: p for p in (self.base / "audio").glob("*.wav")}
        else:
            jpgs, wavs = _senocak_files(senocak_data_dir(self.base))
        if subset == "list":
            listed = read_flickr_ids(list_file, self.layout)
        else:
            listed = sorted(set(jpgs) | set(wavs))
        ids = [i for i in listed if i in jpgs and i in wavs]
        self.num_missing = len(listed) - len(ids)
        if not ids:
            raise DatasetNotFoundError(
                FLICKR_NAME,
                self.base,
                FLICKR_LAYOUT,
                FLICKR_HOW_TO_GET,
                missing=f"any image+sound pair listed in {list_file}",
            )
        self.images = [jpgs[i] for i in ids]
        self.sounds = [wavs[i] for i in ids]
        super().__init__([0] * len(ids), ids, image_size, sample_rate, clip_seconds, skip_corrupt)
        warn_missing(f"Flickr-SoundNet ({self.layout})", self.num_missing, len(ids), self.base)
        self.annotations = annotations_dir(self.base)
        self.with_gt_map = gt_map
        if gt_map and self.annotations is None:
            raise DatasetNotFoundError(
                FLICKR_NAME, self.base, FLICKR_LAYOUT, FLICKR_HOW_TO_GET,
                missing="Annotations/<id>.xml (the boxes that gt_map=True needs)",
            )  # fmt: skip

    def boxes(self, index: int) -> list[list[Box]]:
        """Pair ``index``'s boxes per annotator, on the 256 x 256 annotation frame (``[]``
        without an XML file)."""
        path = self.annotations / f"{self.ids[index]}.xml" if self.annotations else None
        return read_senocak_boxes(path) if path is not None and path.is_file() else []

    def gt_map(self, index: int) -> torch.Tensor:
        """Consensus map of pair ``index``'s boxes on the item's image grid (square frames:
        the boxes are scaled from 256 to ``image_size``, as LVS scales them to 224)."""
        return consensus_map(self.boxes(index), self.image_size)

    def read(self, index: int) -> dict:
        pair = super().read(index)
        if self.with_gt_map:  # from the row actually read, like the image and the sound
            pair["gt_map"] = self.gt_map(index)
        return pair

    def read_image(self, index: int) -> torch.Tensor:
        return resize_center_crop(open_image(self.images[index]), self.image_size)

    def read_audio(self, index: int) -> torch.Tensor:
        return read_audio(self.sounds[index], self.sample_rate, self.clip_samples, fit="tile")
