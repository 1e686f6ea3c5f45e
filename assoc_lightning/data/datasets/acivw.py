"""ACIVW (ACoustic Images and Videos in the Wild, Sanguineti et al. ECCV 2020) from its raw
layout, as 2-second sound-image samples on the official split (BMA-Memory's data).

Raw layout: ``class_K/data_NNN/`` per recording, one ``audio/A_%06d.dc`` (DualCam, read by
``data/io/dualcam.py``) and one ``video/I_%06d.bmp`` per video frame at 12 fps, and
``video_time.txt`` ("video seconds: N"); only the first ``12 N`` frames are used, as the
authors' converter does. The acoustic images (``MFCC_Image/*.mat``) are not read.

The split is the authors' lists of 1-s TFRecords, shipped in ``acivw_splits/``: second ``m``
of ``data_NNN`` is frames ``12(m-1)+1 .. 12m``. A sample is two consecutive seconds of one
recording, paired ``(1, 2), (3, 4), ...`` as the authors' loader batches its list (a second
whose partner is not listed or not on disk is dropped). Audio: mic 0 of the 24 frames
concatenated (24 x 1024 samples at ``sample_rate``), optionally resampled, peak-normalised;
image: one frame of the window, uint8 ``[3, S, S]``.
"""

from __future__ import annotations

import copy
import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from assoc_lightning.data.datasets.av_pairs import AVPairs
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import fit_length, resample
from assoc_lightning.data.io.dualcam import NUM_MICS, SAMPLES_PER_FRAME, read_dc_frames
from assoc_lightning.data.io.image import open_image, resize_center_crop
from assoc_lightning.errors import ConfigError

ACIVW_NAME = "ACIVW"
ACIVW_CLASSES = (
    "train", "boat", "drone", "fountain", "drill",
    "razor", "hair_dryer", "vacuum_cleaner", "shopping_cart", "traffic",
)  # fmt: skip
FPS = 12  # video frames (and .dc audio frames) per second
SAMPLE_SECONDS = 2
SAMPLE_FRAMES = FPS * SAMPLE_SECONDS
CODE_SAMPLE_RATE = FPS * SAMPLES_PER_FRAME  # 12,288 Hz: the authors' code; the papers say 12.8 kHz
SPLITS_DIR = Path(__file__).with_name("acivw_splits")
SPLIT_LISTS = {"train": "training.txt", "val": "validation.txt", "test": "testing.txt"}
FRAMES = ("middle", "first", "random")
NORMALIZE = ("peak", "none")
ACIVW_LAYOUT = """\
<root>/ACIVW/class_K/data_NNN/   (K = 0..9; or <root>/acivw/, or <root> itself)
  audio/A_000001.dc ...          one per video frame: int32, 128 mics x 1024 samples
  video/I_000001.bmp ...         one per video frame, 12 fps
  video_time.txt                 "video seconds: N" (N x 12 frames are used)
  (MFCC_Image/Data_N.mat, the acoustic images, may be there; they are not read)"""
ACIVW_HOW_TO_GET = (
    "ACIVW is not an open download: it is only available by e-mailing the first author of "
    "Sanguineti et al., 'Leveraging Acoustic Images for Effective Self-Supervised Audio "
    "Representation Learning' (ECCV 2020), for non-commercial research use "
    "(https://github.com/IIT-PAVIS/acoustic-images-self-supervision); unzip it so that the "
    "class_K folders lie in <root>/ACIVW"
)
_LIST_LINE = re.compile(r"(?:^|/)class_(\d+)/data_(\d+)/Data_(\d+)(?:\.tfrecord)?$")
_VIDEO_TIME = re.compile(r"^\s*video seconds\s*:\s*(\d+)\s*$")


def recording_id(class_id: int, number: int) -> int:
    """One int per recording, ``1000 * K + NNN`` for ``class_K/data_NNN``."""
    return 1000 * class_id + number


def clip_id(recording: int, first_second: int) -> int:
    """One int per 2-s sample, ``10_000 * recording + first second`` (unique across splits)."""
    return 10_000 * recording + first_second


def sample_starts(seconds: set[int]) -> list[int]:
    """First seconds of the 2-s samples made of ``seconds`` (1-based) of one recording:
    ``(1, 2), (3, 4), ...`` where both are present, so a second without its partner is dropped."""
    return [s for s in range(1, max(seconds, default=0), 2) if {s, s + 1} <= seconds]


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")
    return value


def read_split_list(path: Path) -> list[tuple[int, int, int]]:
    """``(class, recording number, second)`` per line of a split list (``#`` lines and blank
    lines skipped). Lines may be the bare ``class_K/data_NNN/Data_MMM`` or the original
    ``/Dataset/.../Data_MMM.tfrecord`` paths."""
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{ACIVW_NAME} split list", path.parent, "training.txt, validation.txt, testing.txt",
            f"the shipped lists are in {SPLITS_DIR}", missing=path,
        )  # fmt: skip
    entries = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LIST_LINE.search(line)
        if (
            m is None
            or int(m[1]) >= len(ACIVW_CLASSES)
            or int(m[2]) >= 1000
            or not 0 < int(m[3]) < 10_000
        ):
            raise DatasetCorruptError(
                f"{path}:{n}",
                "class_K/data_NNN/Data_MMM (K = 0..9, NNN < 1000, 1 <= MMM < 10000)",
                repr(line),
            )
        entries.append((int(m[1]), int(m[2]), int(m[3])))
    return entries


def find_acivw(root: str | os.PathLike) -> Path:
    """The folder holding the ``class_K`` folders: ``root/ACIVW``, ``root/acivw`` or ``root``."""
    root = Path(root)
    for base in (root / "ACIVW", root / "acivw", root):
        if base.is_dir() and any(p.is_dir() for p in base.glob("class_*")):
            return base
    raise DatasetNotFoundError(ACIVW_NAME, root, ACIVW_LAYOUT, ACIVW_HOW_TO_GET)


def recording_dirs(base: Path) -> dict[int, Path]:
    """``recording_id -> class_K/data_NNN`` folder for every recording under ``base``."""
    found = {}
    for folder in base.glob("class_*/data_*"):
        c, d = (
            re.fullmatch(r"class_(\d+)", folder.parent.name),
            re.fullmatch(r"data_(\d+)", folder.name),
        )
        if c and d and folder.is_dir():
            found[recording_id(int(c[1]), int(d[1]))] = folder
    return found


def _names(folder: Path, suffix: str) -> set[str]:
    return {n for n in os.listdir(folder) if n.endswith(suffix)} if folder.is_dir() else set()


def read_video_seconds(path: Path) -> int:
    """N of a ``video_time.txt`` reading ``video seconds: N``."""
    fix = "write 'video seconds: N' with N = floor(#video/*.bmp / 12), as framecount.py does"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        found = f"{type(err).__name__}: {err}"
        raise DatasetCorruptError(path, "'video seconds: N'", found, fix) from err
    m = _VIDEO_TIME.match(text.strip().splitlines()[0] if text.strip() else "")
    if m is None:
        raise DatasetCorruptError(path, "'video seconds: N'", repr(text[:80]), fix)
    return int(m[1])


def check_recording(folder: Path) -> int:
    """The whole seconds a recording holds (``video_time.txt``), after checking that it has as
    many ``.dc`` as ``.bmp`` frames and every frame of those seconds."""
    seconds = read_video_seconds(folder / "video_time.txt")
    audio, video = _names(folder / "audio", ".dc"), _names(folder / "video", ".bmp")
    fix = "re-extract this recording from the ACIVW zip"
    if len(audio) != len(video):
        raise DatasetCorruptError(
            folder, "as many audio/*.dc as video/*.bmp files (one of each per video frame)",
            f"{len(audio)} .dc and {len(video)} .bmp files", fix,
        )  # fmt: skip
    for f in range(1, FPS * seconds + 1):
        for sub, name, names in (
            ("audio", f"A_{f:06d}.dc", audio),
            ("video", f"I_{f:06d}.bmp", video),
        ):
            if name not in names:
                raise DatasetCorruptError(
                    folder,
                    f"frames 1..{FPS * seconds} (video_time.txt: {seconds} s x {FPS} fps) "
                    "as audio/A_%06d.dc and video/I_%06d.bmp",
                    f"{len(video)} frames, no {sub}/{name}",
                    f"{fix}, or correct video_time.txt (floor(#bmp / 12))",
                )
    return seconds


class ACIVWSamples(AVPairs):
    """The 2-s sound-image samples of one ACIVW split (see the module docstring).

    Item: ``{"image": uint8 [3, S, S], "audio": float32 [T], "label": class 0..9, "index",
    "pair_id" (= index), "clip_id" (the 2-s sample, :func:`clip_id`), "recording"
    (:func:`recording_id`)}``; :meth:`view` gives one modality with the same indices and
    labels. ``T = 24 * 1024`` at ``sample_rate``, or that length in time at ``target_rate``.

    Args:
        root: the data dir (holding ``ACIVW/``) or the ACIVW folder itself.
        split: ``train``, ``val`` or ``test`` (the authors' lists).
        sample_rate: the rate the raw samples are taken at: 12,288 Hz (1024 samples per frame
            at 12 fps, as the authors' code has it; the papers say 12.8 kHz).
        target_rate: resample to this rate (``None``: keep ``sample_rate``).
        image_size: side of the square image.
        frame: which frame of the 24 is the image: ``middle`` (the 13th, t = 1 s), ``first``,
            or ``random`` (drawn on every read; for training).
        crop: ``False``: resize to ``S x S`` (the paper's "resized to 224 x 224"); ``True``:
            shorter side to ``S`` and centre crop.
        mic: the microphone of the 128 (the authors use 0).
        normalize: ``peak`` (divide by the largest magnitude, as the authors' loader does) or
            ``none`` (raw int32 counts as floats).
        lists_dir: folder with ``training.txt``, ``validation.txt``, ``testing.txt``
            (default: the shipped official lists).
        skip_corrupt: replace an unreadable sample by the next readable one (warned,
            counted) instead of raising.

    Attributes: ``recordings``, ``clip_ids``, ``starts`` (first frame, 1-based) per sample;
    ``num_missing`` (listed seconds not on disk), ``num_missing_recordings``, ``num_dropped``
    (listed seconds on disk without their partner second).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        sample_rate: int = CODE_SAMPLE_RATE,
        target_rate: int | None = None,
        image_size: int = 224,
        frame: str = "middle",
        crop: bool = False,
        mic: int = 0,
        normalize: str = "peak",
        lists_dir: str | os.PathLike | None = None,
        skip_corrupt: bool = True,
    ) -> None:
        check_choice("split", split, tuple(SPLIT_LISTS))
        self.frame = check_choice("frame", frame, FRAMES)
        self.normalize = check_choice("normalize", normalize, NORMALIZE)
        if not 0 <= mic < NUM_MICS:
            raise ConfigError(f"mic must be in 0..{NUM_MICS - 1}, got {mic}")
        self.source_rate, self.crop, self.mic, self.split = sample_rate, crop, mic, split
        listed = read_split_list(Path(lists_dir or SPLITS_DIR) / SPLIT_LISTS[split])
        self.base = find_acivw(root)
        rows = self._index(listed, recording_dirs(self.base))
        self.recordings = np.array([r for r, _ in rows], dtype=np.int64)
        self.starts = np.array([FPS * (s - 1) + 1 for _, s in rows], dtype=np.int64)
        self.clip_ids = np.array([clip_id(r, s) for r, s in rows], dtype=np.int64)
        ids = [
            f"{self.folders[r].relative_to(self.base)}/Data_{s:03d}-{s + 1:03d}" for r, s in rows
        ]
        super().__init__(
            self.recordings // 1000, ids, image_size, target_rate or sample_rate,
            SAMPLE_FRAMES * SAMPLES_PER_FRAME / sample_rate, skip_corrupt,
        )  # fmt: skip

    def _index(self, listed: list[tuple[int, int, int]], on_disk: dict[int, Path]) -> list:
        """``(recording, first second)`` per sample, in list order; counts what is missing."""
        by_recording: dict[int, set[int]] = {}
        for c, n, s in listed:
            by_recording.setdefault(recording_id(c, n), set()).add(s)
        self.folders: dict[int, Path] = {}
        self.num_missing = self.num_missing_recordings = self.num_dropped = 0
        rows, first_missing = [], None
        for rec, seconds in by_recording.items():
            if rec not in on_disk:
                self.num_missing_recordings += 1
                self.num_missing += len(seconds)
                first_missing = first_missing or f"class_{rec // 1000}/data_{rec % 1000:03d}"
                continue
            self.folders[rec] = on_disk[rec]
            usable = check_recording(on_disk[rec])
            there = {s for s in seconds if s <= usable}
            self.num_missing += len(seconds) - len(there)
            windows = sample_starts(there)
            self.num_dropped += len(there) - 2 * len(windows)
            rows += [(rec, s) for s in windows]
        if not rows:
            raise DatasetNotFoundError(
                ACIVW_NAME, self.base, ACIVW_LAYOUT, ACIVW_HOW_TO_GET,
                missing=f"any recording of the {self.split} list, e.g. {first_missing}",
            )  # fmt: skip
        if self.num_missing:
            warnings.warn(
                f"ACIVW {self.split}: {self.num_missing} of {len(listed)} listed seconds are "
                f"not on disk under {self.base} and are skipped ({self.num_missing_recordings} "
                f"of {len(by_recording)} recordings missing, the rest past video_time.txt)",
                stacklevel=3,
            )
        return rows

    def select(self, rows=None, frame: str | None = None) -> ACIVWSamples:
        """The samples ``rows`` (default: all), reading frame ``frame`` (default: the same),
        re-indexed from 0; ``clip_id`` and ``recording`` stay those of the samples."""
        out = copy.copy(self)
        rows = np.arange(len(self)) if rows is None else np.asarray(rows, dtype=np.int64)
        out.labels, out.recordings = self.labels[rows], self.recordings[rows]
        out.starts, out.clip_ids = self.starts[rows], self.clip_ids[rows]
        out.ids = [self.ids[int(i)] for i in rows]
        out.frame = self.frame if frame is None else check_choice("frame", frame, FRAMES)
        out.corrupt = set()
        return out

    def frame_paths(self, index: int, kind: str) -> list[Path]:
        """The 24 ``audio`` (.dc) or ``video`` (.bmp) files of sample ``index``."""
        folder, start = self.folders[int(self.recordings[index])], int(self.starts[index])
        name = "audio/A_{:06d}.dc" if kind == "audio" else "video/I_{:06d}.bmp"
        return [folder / name.format(f) for f in range(start, start + SAMPLE_FRAMES)]

    def read_audio(self, index: int) -> torch.Tensor:
        wave = read_dc_frames(self.frame_paths(index, "audio"), self.mic)
        wave = fit_length(resample(wave, self.source_rate, self.sample_rate), self.clip_samples)
        if self.normalize == "peak":
            peak = wave.abs().max()
            wave = wave / peak if peak > 0 else wave
        return wave

    def read_image(self, index: int) -> torch.Tensor:
        offset = {"first": 0, "middle": SAMPLE_FRAMES // 2}.get(self.frame)
        if offset is None:
            offset = int(torch.randint(SAMPLE_FRAMES, ()).item())
        img = open_image(self.frame_paths(index, "video")[offset], "a readable BMP video frame")
        if self.crop:
            return resize_center_crop(img, self.image_size)
        size = [self.image_size, self.image_size]
        return F.pil_to_tensor(
            F.resize(img, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
        )

    def __getitem__(self, index: int) -> dict:
        row, pair = self.readable(index)  # both modalities from the same (replacement) row
        return {
            **pair,
            "label": int(self.labels[row]),
            "index": index,
            "pair_id": index,
            "clip_id": int(self.clip_ids[row]),
            "recording": int(self.recordings[row]),
        }
