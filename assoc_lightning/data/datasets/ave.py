"""AVE (Audio-Visual Event) videos as (middle event frame, full audio track) pairs.

Our choices where C-MCR is silent: a video is represented by the frame at the middle of its
event segment ``[start, end)`` (the middle of the whole clip for ``0&0`` rows) and by its full
audio track; images are uint8 ``[3, S, S]`` (shorter side resized bicubically, centre crop;
the tower's processor normalizes), audio is mono float32 at ``sample_rate`` (48 kHz, CLAP's)
zero-padded or cropped to ``clip_seconds``. Missing and corrupt videos: see
``data/datasets/av_pairs.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch

from assoc_lightning.data.datasets.av_pairs import AVPairs, warn_missing
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import fit_length
from assoc_lightning.data.io.image import resize_center_crop
from assoc_lightning.data.io.video import read_audio_track, read_video_frame
from assoc_lightning.errors import ConfigError

AVE_NAME = "AVE"
AVE_LAYOUT = """\
<root>/AVE_Dataset/AVE/<VideoID>.mp4
<root>/AVE_Dataset/Annotations.txt   ('&'-separated: Category&VideoID&Quality&StartTime&EndTime)
<root>/AVE_Dataset/{trainSet,valSet,testSet}.txt   (same format)
(or <root> itself is the AVE_Dataset folder)"""
AVE_HOW_TO_GET = (
    "https://github.com/YapengTian/AVE-ECCV18 (AVE_Dataset.zip; videos scraped from YouTube)"
)
#: Split -> list file; ``all`` is every annotated video (the C-MCR paper's 4,095 available).
AVE_LISTS = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
AVE_LISTS["all"] = "Annotations.txt"


class AVERow(NamedTuple):
    """One line of an AVE list: ``Category&VideoID&Quality&StartTime&EndTime``."""

    category: str
    video_id: str
    quality: str
    start: float
    end: float


def read_ave_list(path: str | os.PathLike) -> list[AVERow]:
    """Rows of an AVE list file; a header line (non-numeric times on line 1) is skipped."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(AVE_NAME, path.parent, AVE_LAYOUT, AVE_HOW_TO_GET, missing=path)
    rows, first = [], True
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        is_first, first = first, False
        fields = [f.strip() for f in line.split("&")]
        try:
            if len(fields) != 5 or not fields[1]:
                raise ValueError
            rows.append(AVERow(*fields[:3], float(fields[3]), float(fields[4])))
        except ValueError:
            if is_first and len(fields) == 5:
                continue  # the header, e.g. Category&VideoID&Quality&StartTime&EndTime
            raise DatasetCorruptError(
                path,
                "'&'-separated Category&VideoID&Quality&StartTime&EndTime",
                f"line {n}: {line!r}",
            ) from None
    return rows


def find_ave(root: str | os.PathLike) -> Path:
    """The folder holding ``Annotations.txt`` and ``AVE/``: ``<root>/AVE_Dataset`` or ``<root>``."""
    root = Path(root)
    for base in (root / "AVE_Dataset", root):
        if (base / "Annotations.txt").is_file() and (base / "AVE").is_dir():
            return base
    raise DatasetNotFoundError(
        AVE_NAME, root, AVE_LAYOUT, AVE_HOW_TO_GET, missing=root / "AVE_Dataset" / "Annotations.txt"
    )


def ave_categories(base: Path) -> list[str]:
    """Sorted categories of ``Annotations.txt`` and every split list present (28 in AVE)."""
    found = {r.category for r in read_ave_list(base / "Annotations.txt")}
    for name in AVE_LISTS.values():
        if (base / name).is_file():
            found |= {r.category for r in read_ave_list(base / name)}
    return sorted(found)


class AVEPairs(AVPairs):
    """AVE videos of one split as (middle event frame, full audio track) pairs.

    Args:
        root: the AVE folder or the data dir holding ``AVE_Dataset/`` (see ``AVE_LAYOUT``).
        split: ``train``, ``val``, ``test`` (the official lists) or ``all`` (Annotations.txt).
        image_size: side of the square uint8 frame.
        sample_rate: audio output rate (48 kHz: CLAP's).
        clip_seconds: audio length (AVE clips are 10 s); zero-padded or cropped.
        skip_corrupt: skip undecodable videos (counted, warned) instead of raising.

    Attributes: ``rows`` (:class:`AVERow` per pair), ``ids`` (video ids), ``categories``
    (sorted; label = position), ``num_missing``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "test",
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        skip_corrupt: bool = True,
    ) -> None:
        if split not in AVE_LISTS:
            raise ConfigError(f"split must be one of {list(AVE_LISTS)}, got {split!r}")
        self.base = find_ave(root)
        self.videos = self.base / "AVE"
        self.categories = tuple(ave_categories(self.base))
        listed = read_ave_list(self.base / AVE_LISTS[split])
        present = set(os.listdir(self.videos))
        self.rows = [r for r in listed if f"{r.video_id}.mp4" in present]
        self.num_missing = len(listed) - len(self.rows)
        if not self.rows:
            raise DatasetNotFoundError(
                AVE_NAME,
                self.base,
                AVE_LAYOUT,
                AVE_HOW_TO_GET,
                missing=f"any video of {AVE_LISTS[split]} in {self.videos}",
            )
        index = {c: i for i, c in enumerate(self.categories)}
        labels = [index[r.category] for r in self.rows]
        super().__init__(
            labels,
            [r.video_id for r in self.rows],
            image_size,
            sample_rate,
            clip_seconds,
            skip_corrupt,
        )
        warn_missing(f"AVE {split}", self.num_missing, len(self.rows), self.videos)

    def path_of(self, index: int) -> Path:
        return self.videos / f"{self.rows[index].video_id}.mp4"

    def frame_time(self, index: int) -> float | None:
        """Middle of the event ``[start, end)`` in seconds; ``None`` (the clip's middle) for
        rows without boundaries (``0&0``)."""
        row = self.rows[index]
        return (row.start + row.end) / 2 if row.end > row.start else None

    def read_image(self, index: int) -> torch.Tensor:
        frame = read_video_frame(self.path_of(index), self.frame_time(index))
        return resize_center_crop(frame, self.image_size)

    def read_audio(self, index: int) -> torch.Tensor:
        wave = read_audio_track(self.path_of(index), self.sample_rate)
        return fit_length(wave, self.clip_samples, "pad")
