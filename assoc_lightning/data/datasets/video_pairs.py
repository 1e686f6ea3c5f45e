"""Audio-visual pairs cut from videos: frame j of a video with the audio chunk aligned to it.

DMC (docs/methods.md, "DMC") pairs every image frame of a video with the ``clip_seconds``
(5 s) of sound aligned to it: frame j with the audio ``[j * clip_seconds, (j + 1) *
clip_seconds)`` seconds into the video. A :class:`VideoChunks` dataset has one row per
(video, chunk j) and yields ``{"image": uint8 [3, S, S], "audio": float32 [clip_seconds *
sample_rate], "label", "index": the row, "pair_id": the video's id}``: every frame of a video
shares its ``pair_id`` (so a method drawing negatives "from another video" draws them by
``pair_id``), and ids differ between videos and between splits. ``frames="fixed"`` keeps one
row per video (its middle chunk, ``(chunks - 1) // 2``): the fixed pairs of the evaluation
sets. Three sources, each read through the project's own reader of that dataset
(docs/datasets.md, "Video pairs"):

- ``flickr_soundnet``: the SoundNet-Flickr training videos as the SoundNet release and the
  DMC code keep them: a folder of pre-extracted frames per video and one audio file per video
  (``FLICKR_VIDEOS_LAYOUT``). Frame j is the j-th image file of the folder in natural order
  (``2.jpg`` before ``10.jpg``); unlabelled (label 0, as the Flickr-SoundNet retrieval pairs).
- ``audioset``: AudioSet segments whose *videos* were scraped (``AUDIOSET_VIDEOS_LAYOUT``):
  the PANNs copies hold audio only, and an AudioSet copy without a ``videos/`` folder stops
  with "dataset not found" saying so. Labels and segments come from the official CSVs
  (``data/datasets/audioset.py``); a segment of ``end - start`` seconds has
  ``floor((end - start) / clip_seconds)`` chunks (two 5-s chunks of a 10-s segment), frame j
  is the frame shown at the chunk's middle ``(j + 1/2) * clip_seconds`` and its audio the
  mp4's own track over the chunk (``data/io/video.py``). Label: the first positive class.
- ``kinetics``: the Kinetics-400 shards of ``assoc extract kinetics``
  (``data/datasets/kinetics.py``), which hold one frame per clip (the middle one) and the
  audio centred on it: one chunk per clip. The shards keep the ``clip_seconds`` they were
  extracted with (2 s by default); when it differs from the pairs', the audio is zero-padded
  or cropped around its centre with one warning saying how to extract 5-s shards
  (``--clip_seconds 5``). Frames of another size are resized, audio of another rate resampled.

Missing files are left out when a source is indexed (``num_missing``, one warning); a file that
does not decode is skipped at read time and counted (``num_corrupt``, see
``data/datasets/base.py``): a pair and both of its single-modality views share one set of
corrupt rows, and a replacement row brings its own image, audio, label and ``pair_id``.
"""

from __future__ import annotations

import functools
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from assoc_lightning.data.datasets import audioset as aset
from assoc_lightning.data.datasets.av_pairs import PairView
from assoc_lightning.data.datasets.base import SkipCorruptDataset
from assoc_lightning.data.datasets.flickr_soundnet import FLICKR_NAME
from assoc_lightning.data.datasets.kinetics import NAME as KINETICS_NAME
from assoc_lightning.data.datasets.kinetics import VIDEO_EXTENSIONS, kinetics_shards_dir
from assoc_lightning.data.datasets.shards import ShardIndex
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import audio_info, read_audio, resample
from assoc_lightning.data.io.image import IMAGE_EXTENSIONS, open_image, resize_center_crop
from assoc_lightning.data.io.shards import AUDIO_EXT
from assoc_lightning.data.io.video import read_audio_segment, read_video_frame
from assoc_lightning.errors import ConfigError

FRAMES = ("all", "fixed")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".flac", ".ogg")
FLICKR_VIDEOS_NAME = f"{FLICKR_NAME} training videos"
FLICKR_VIDEOS_LAYOUT = """\
<root>/soundnet/frames/<any sub-folders>/<video>/<frame>.jpg   (one folder of frames per video,
    SoundNet's <id>.mp4/ folders; frame j = the j-th file in natural order, 5 s apart)
<root>/soundnet/mp3/<the same sub-folders>/<video>.mp3   (or .wav/.flac/.ogg; the name may keep
    or drop the folder's .mp4; the folder may also be named audio/)
(<root>/soundnet may also be <root>/flickr_soundnet/soundnet, or <root> itself)"""
FLICKR_VIDEOS_HOW_TO_GET = (
    "the SoundNet Flickr videos (Aytar et al., NeurIPS 2016): frames_public.tar.gz and "
    "mp3_public.tar.gz from http://soundnet.csail.mit.edu/ (the DMC code's data_download.txt "
    "points there)"
)
AUDIOSET_VIDEOS_NAME = "AudioSet videos"
AUDIOSET_VIDEOS_LAYOUT = f"""\
{aset.LAYOUT.splitlines()[0]}
{aset.LAYOUT.splitlines()[1]}
and the scraped videos (the PANNs audios/ and hdf5s/ hold no frames, so they cannot pair):
<root>/videos/{{balanced_train_segments,eval_segments}}/Y<YTID>.mp4   (or .mkv/.webm)
<root>/videos/unbalanced_train_segments/unbalanced_train_segments_partNN/Y<YTID>.mp4
(each file holds its segment, start_seconds .. end_seconds; <root> may be <data_dir>/audioset)"""
AUDIOSET_VIDEOS_HOW_TO_GET = (
    f"{aset.HOW_TO_GET}, keeping the video stream (e.g. yt-dlp with ffmpeg -ss <start> -t 10, "
    "saved as videos/<part>_segments/Y<YTID>.mp4)"
)


class Video(NamedTuple):
    """One video of a source.

    ``uid`` is its ``pair_id`` (unique within the source, all splits together), ``name`` what
    the source calls it, ``chunks`` its number of frames (= audio chunks), ``media`` where its
    frames and sound are, in the terms of the :class:`VideoChunks` subclass that reads it.
    """

    uid: int
    name: str
    label: int
    chunks: int
    media: tuple


class VideoChunks(SkipCorruptDataset):
    """(video, chunk) rows of some videos; subclasses implement :meth:`frame` and :meth:`chunk`.

    Args:
        videos: the videos (all of one split).
        frames: ``all`` (a row per chunk: training) or ``fixed`` (a row per video, its middle
            chunk: the fixed evaluation pairs).
        image_size: side of the square uint8 image.
        sample_rate: audio output rate.
        clip_seconds: the chunk length; frame j pairs with ``[j, j + 1) * clip_seconds``.
        skip_corrupt: skip undecodable files (counted, warned) instead of raising.

    Attributes: ``videos``, ``video_rows`` / ``chunk_rows`` (per row: position in ``videos``,
    chunk j), ``pair_ids`` (per row), ``num_videos``.
    """

    modality = "pair"

    def __init__(
        self,
        videos: Sequence[Video],
        frames: str = "all",
        image_size: int = 256,
        sample_rate: int = 16000,
        clip_seconds: float = 5.0,
        skip_corrupt: bool = True,
    ) -> None:
        if frames not in FRAMES:
            raise ConfigError(f"frames must be one of {FRAMES}, got {frames!r}")
        check_clip(image_size, sample_rate, clip_seconds)
        self.videos = list(videos)
        counts = np.array([v.chunks for v in self.videos], dtype=np.int64)
        if frames == "all":
            self.video_rows = np.repeat(np.arange(len(counts)), counts)
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]]) if len(counts) else counts
            self.chunk_rows = np.arange(len(self.video_rows)) - np.repeat(starts, counts)
        else:
            self.video_rows = np.arange(len(counts))
            self.chunk_rows = (counts - 1) // 2
        uids = np.array([v.uid for v in self.videos], dtype=np.int64)
        labels = np.array([v.label for v in self.videos], dtype=np.int64)
        self.pair_ids = uids[self.video_rows] if len(uids) else uids
        super().__init__(labels[self.video_rows] if len(labels) else labels, skip_corrupt)
        self.frames = frames
        self.image_size, self.sample_rate, self.clip_seconds = image_size, sample_rate, clip_seconds
        self.clip_samples = int(round(sample_rate * clip_seconds))

    @property
    def num_videos(self) -> int:
        return len(self.videos)

    def frame(self, video: Video, j: int) -> torch.Tensor:
        """Frame ``j`` of ``video``: uint8 ``[3, S, S]``."""
        raise NotImplementedError

    def chunk(self, video: Video, j: int) -> torch.Tensor:
        """Audio chunk ``j`` of ``video``: float32 ``[clip_samples]``."""
        raise NotImplementedError

    def _at(self, index: int) -> tuple[Video, int]:
        return self.videos[int(self.video_rows[index])], int(self.chunk_rows[index])

    def read_image(self, index: int) -> torch.Tensor:
        return self.frame(*self._at(index))

    def read_audio(self, index: int) -> torch.Tensor:
        return self.chunk(*self._at(index))

    def read(self, index: int) -> dict:
        return {"image": self.read_image(index), "audio": self.read_audio(index)}

    def __getitem__(self, index: int) -> dict:
        row, pair = self.readable(index)  # both modalities from the same (replacement) row
        return {
            **pair,
            "label": int(self.labels[row]),
            "index": index,
            "pair_id": int(self.pair_ids[row]),
        }

    def view(self, modality: str) -> PairView:
        """The rows' ``image`` or ``audio`` alone, same indices and labels, shared corrupt set."""
        return PairView(self, modality)


def check_clip(image_size: int, sample_rate: int, clip_seconds: float) -> None:
    for name, value in (
        ("image_size", image_size), ("sample_rate", sample_rate), ("clip_seconds", clip_seconds)
    ):  # fmt: skip
        if not value > 0:
            raise ConfigError(f"{name} must be positive, got {value!r}")


def natural_key(name: str) -> list:
    """Sort key putting ``2.jpg`` before ``10.jpg``."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


class VideoSource(NamedTuple):
    """An indexed source: its training pool, its official evaluation split if it has one,
    its classes, and the dataset class (with its reader's options) that reads its videos."""

    name: str
    pool: list[Video]  # the training videos; val (and test without ``test``) are held out
    test: list[Video] | None  # the source's official evaluation split, if it has one
    class_names: tuple[str, ...]
    num_classes: int
    chunks: Callable[..., VideoChunks]  # chunks(videos, frames) -> VideoChunks
    num_missing: int = 0


def warn_missing(name: str, missing: int, total: int, what: str) -> None:
    """One warning: ``missing`` of ``total`` ``what`` (e.g. "frame folders have no audio
    file under X") were left out."""
    if missing:
        warnings.warn(
            f"{name}: {missing} of {total} {what} and are skipped (the videos come from "
            "YouTube/Flickr, copies are partial)",
            stacklevel=3,
        )


# ------------------------------------------------------------------------- flickr_soundnet
def find_soundnet(root: str | os.PathLike) -> tuple[Path, Path]:
    """``(frames folder, audio folder)`` of the SoundNet-Flickr training videos under ``root``."""
    root = Path(root)
    for base in (root / "soundnet", root / "flickr_soundnet" / "soundnet", root):
        audio = next((base / d for d in ("mp3", "audio") if (base / d).is_dir()), None)
        if (base / "frames").is_dir() and audio is not None:
            return base / "frames", audio
    raise DatasetNotFoundError(
        FLICKR_VIDEOS_NAME, root, FLICKR_VIDEOS_LAYOUT, FLICKR_VIDEOS_HOW_TO_GET,
        missing=root / "soundnet" / "frames",
    )  # fmt: skip


def _sound_files(audio_dir: Path) -> dict[str, str]:
    """Relative path without extension (``videos/1/abc.mp4`` of ``abc.mp4.mp3``) -> file."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(audio_dir, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, audio_dir)
        for f in filenames:
            stem, ext = os.path.splitext(f)
            if ext.lower() in AUDIO_EXTENSIONS and not f.startswith("."):
                key = stem if rel == "." else f"{rel}/{stem}".replace(os.sep, "/")
                found.setdefault(key, os.path.join(dirpath, f))
    return found


def index_flickr_videos(root: str | os.PathLike) -> tuple[list[tuple[str, tuple]], int, Path]:
    """``([(video name, (audio file, frame files...)), ...] sorted by name, missing, frames
    folder)``: every folder of frames under ``frames/`` with an audio file of the same name."""
    frames_dir, audio_dir = find_soundnet(root)
    sounds = _sound_files(audio_dir)
    videos, missing = [], 0
    for dirpath, dirnames, filenames in os.walk(frames_dir, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        images = sorted(
            (f for f in filenames
             if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS),
            key=natural_key,
        )  # fmt: skip
        rel = os.path.relpath(dirpath, frames_dir).replace(os.sep, "/")
        if not images or rel == ".":
            continue  # not a video folder (frames lying directly in frames/ belong to none)
        stem, ext = os.path.splitext(rel)
        sound = sounds.get(rel) or (sounds.get(stem) if ext.lower() in VIDEO_EXTENSIONS else None)
        if sound is None:
            missing += 1
            continue
        videos.append((rel, (sound, *(os.path.join(dirpath, f) for f in images))))
    videos.sort()
    if not videos:
        raise DatasetNotFoundError(
            FLICKR_VIDEOS_NAME, frames_dir.parent, FLICKR_VIDEOS_LAYOUT, FLICKR_VIDEOS_HOW_TO_GET,
            missing=f"any folder of frames with its audio file ({missing} without audio)",
        )  # fmt: skip
    return videos, missing, frames_dir


class FlickrVideoChunks(VideoChunks):
    """SoundNet-Flickr videos: ``media`` = (audio file, frame files in order).

    Chunk j is read from ``j * clip_seconds`` into the audio file (mono, resampled); a chunk
    the audio does not reach is silence (zero-padded where it ends inside the chunk), as the
    DMC code pads a short track to the frames' length.
    """

    def frame(self, video: Video, j: int) -> torch.Tensor:
        return resize_center_crop(open_image(video.media[1 + j]), self.image_size)

    def chunk(self, video: Video, j: int) -> torch.Tensor:
        path, offset = video.media[0], j * self.clip_seconds
        frames, rate, _ = audio_info(path)
        if offset * rate >= frames:  # the track ends before this frame's chunk
            return torch.zeros(self.clip_samples)
        return read_audio(path, self.sample_rate, self.clip_samples, offset_seconds=offset)


def open_flickr_videos(data_dir: str | os.PathLike, reader: dict, options: dict) -> VideoSource:
    """The SoundNet-Flickr training videos: every video in the pool, unlabelled (label 0)."""
    listed, missing, frames_dir = index_flickr_videos(data_dir)
    where = frames_dir.parent
    what = f"frame folders under {where} have no audio file"
    warn_missing(FLICKR_VIDEOS_NAME, missing, missing + len(listed), what)
    pool = [Video(i, name, 0, len(media) - 1, media) for i, (name, media) in enumerate(listed)]
    return VideoSource(
        "flickr_soundnet", pool, None, (), 0, _bind(FlickrVideoChunks, reader), missing
    )


# -------------------------------------------------------------------------------- audioset
def video_dirs(base: Path, part: str) -> list[Path]:
    """The video folders of one official AudioSet split (``partNN`` ones for unbalanced)."""
    top = base / "videos" / f"{part}_segments"
    if part != "unbalanced_train":
        return [top] if top.is_dir() else []
    return sorted(d for d in top.glob("unbalanced_train_segments_part*") if d.is_dir())


def _audioset_videos(base: Path, part: str, class_of: dict, clip_seconds: float, first_uid: int):
    """``(videos of the part on disk with at least one chunk, listed segments without one)``."""
    found: dict[str, str] = {}
    for folder in video_dirs(base, part):
        with os.scandir(folder) as entries:
            for e in entries:
                stem, ext = os.path.splitext(e.name)
                if stem.startswith("Y") and ext.lower() in VIDEO_EXTENSIONS:
                    found.setdefault(stem[1:], e.path)
    csv_path = aset.metadata_file(base, f"{part}_segments.csv")
    videos, missing = [], 0
    for seg in aset.read_segments_csv(csv_path):
        chunks = math.floor((seg.end - seg.start) / clip_seconds + 1e-6)
        if seg.ytid not in found or chunks < 1:
            missing += 1
            continue
        unknown = [m for m in seg.mids if m not in class_of]
        if unknown:
            raise DatasetCorruptError(
                csv_path, "MIDs listed in class_labels_indices.csv", f"{unknown} for {seg.ytid}",
                "use the class index that belongs to these segment lists",
            )  # fmt: skip
        label = min(class_of[m] for m in seg.mids)  # the first positive class, as AudioSetClips
        uid = first_uid + len(videos)
        videos.append(Video(uid, seg.ytid, label, chunks, (found[seg.ytid],)))
    return videos, missing


class AudioSetVideoChunks(VideoChunks):
    """AudioSet segment videos: ``media`` = (mp4 path,). Frame j is the frame shown at the
    chunk's middle, its audio the file's own track over the chunk (zero-padded where short)."""

    def frame(self, video: Video, j: int) -> torch.Tensor:
        image = read_video_frame(video.media[0], at=(j + 0.5) * self.clip_seconds)
        return resize_center_crop(image, self.image_size)

    def chunk(self, video: Video, j: int) -> torch.Tensor:
        start = j * self.clip_seconds
        return read_audio_segment(video.media[0], self.sample_rate, start, self.clip_seconds)


def open_audioset_videos(data_dir: str | os.PathLike, reader: dict, options: dict) -> VideoSource:
    """AudioSet segments with scraped videos: the pool is ``options["audioset_split"]``
    (``balanced_train``, ``unbalanced_train`` or ``train`` = both), the official test split is
    ``eval``. A segment shorter than one chunk counts as missing."""
    train_split = options.get("audioset_split", "balanced_train")
    if train_split not in aset.SPLIT_PARTS or train_split == "eval":
        choices = [s for s in aset.SPLIT_PARTS if s != "eval"]
        raise ConfigError(f"audioset_split must be one of {choices}, got {train_split!r}")
    base = aset.find_audioset(data_dir)
    if not (base / "videos").is_dir():
        raise DatasetNotFoundError(
            AUDIOSET_VIDEOS_NAME, base, AUDIOSET_VIDEOS_LAYOUT, AUDIOSET_VIDEOS_HOW_TO_GET,
            missing=f"{base / 'videos'} (this AudioSet copy holds audio only: audio-visual "
            "pairs need the videos)",
        )  # fmt: skip
    mids, names = aset.read_class_index(aset.metadata_file(base, "class_labels_indices.csv"))
    class_of = {m: i for i, m in enumerate(mids)}
    parts: dict[str, list[Video]] = {}
    missing = 0
    for part in (*aset.SPLIT_PARTS[train_split], "eval"):
        uid = sum(len(v) for v in parts.values())
        parts[part], lost = _audioset_videos(base, part, class_of, reader["clip_seconds"], uid)
        missing += lost
    total = sum(len(v) for v in parts.values())
    what = f"listed segments have no video under {base / 'videos'} or are shorter than a chunk"
    warn_missing(AUDIOSET_VIDEOS_NAME, missing, missing + total, what)
    pool = [v for p in aset.SPLIT_PARTS[train_split] for v in parts[p]]
    for split, videos in ((train_split, pool), ("eval", parts["eval"])):
        if not videos:
            raise DatasetNotFoundError(
                AUDIOSET_VIDEOS_NAME, base, AUDIOSET_VIDEOS_LAYOUT, AUDIOSET_VIDEOS_HOW_TO_GET,
                missing=f"any video of split {split!r} at least {reader['clip_seconds']} s long",
            )  # fmt: skip
    return VideoSource(
        "audioset", pool, parts["eval"], tuple(names), len(names),
        _bind(AudioSetVideoChunks, reader), missing,
    )  # fmt: skip


# -------------------------------------------------------------------------------- kinetics
class KineticsShardChunks(VideoChunks):
    """Kinetics-400 shard samples: ``media`` = (shard split, row); one chunk per clip.

    Args:
        shards: shard split -> its :class:`ShardIndex` (``train``, ``val``).
        **kwargs: as :class:`VideoChunks`.
    """

    def __init__(self, videos, frames="all", *, shards: dict[str, ShardIndex], **kwargs) -> None:
        super().__init__(videos, frames, **kwargs)
        self.shards = shards

    def frame(self, video: Video, j: int) -> torch.Tensor:
        index = self.shards[video.media[0]]
        image = index.read(video.media[1], index.manifest["members"]["image"])
        if tuple(image.shape[-2:]) != (self.image_size, self.image_size):
            image = resize_center_crop(F.to_pil_image(image), self.image_size)
        return image

    def chunk(self, video: Video, j: int) -> torch.Tensor:
        index = self.shards[video.media[0]]
        wave = resample(index.read(video.media[1], AUDIO_EXT), index.manifest["sample_rate"],
                        self.sample_rate)  # fmt: skip
        return fit_centred(wave, self.clip_samples)


def fit_centred(wave: torch.Tensor, num_samples: int) -> torch.Tensor:
    """``wave`` cropped or zero-padded to ``num_samples`` around its centre (the shards' audio
    is centred on their frame, so the frame stays at the middle of the chunk)."""
    if wave.numel() >= num_samples:
        start = (wave.numel() - num_samples) // 2
        return wave[start : start + num_samples].contiguous()
    out = wave.new_zeros(num_samples)
    start = (num_samples - wave.numel()) // 2
    out[start : start + wave.numel()] = wave
    return out


def open_kinetics_shards(data_dir: str | os.PathLike, reader: dict, options: dict) -> VideoSource:
    """The extracted Kinetics-400 shards (under ``options["shards_dir"]``, else
    ``<data_dir>/kinetics400_shards``): the pool is ``train``, the official test split the
    ``val`` shards (the split Kinetics results are reported on)."""
    shards_dir, clip_seconds = options.get("shards_dir"), reader["clip_seconds"]
    shards = {s: ShardIndex(kinetics_shards_dir(data_dir, s, shards_dir)) for s in ("train", "val")}
    classes = tuple(shards["train"].manifest.get("classes", ()))
    extracted = {s: float(i.manifest.get("clip_seconds", 0.0)) for s, i in shards.items()}
    other = {s: x for s, x in extracted.items() if not math.isclose(x, clip_seconds)}
    if other:  # one warning for the source
        held = ", ".join(f"{s}: {x:g} s" for s, x in other.items())
        warnings.warn(
            f"{KINETICS_NAME} shards under {shards['train'].folder.parent} hold less or more "
            f"audio per clip than the pairs' {clip_seconds:g} s ({held}, their extraction's "
            "clip_seconds), so each clip's audio is zero-padded or cropped around its centre. "
            f"For real {clip_seconds:g}-s chunks extract shards with `assoc extract kinetics "
            f"--clip_seconds {clip_seconds:g} --out <another folder>` and pass that folder as "
            "shards_dir",
            stacklevel=3,
        )
    videos: dict[str, list[Video]] = {}
    uid = 0
    for split, index in shards.items():
        ids = index.arrays["id"]
        videos[split] = [
            Video(uid + r, str(ids[r]), int(index.labels[r]), 1, (split, r))
            for r in range(len(index))
        ]
        uid += len(index)
    return VideoSource(
        "kinetics", videos["train"], videos["val"], classes, len(classes),
        _bind(KineticsShardChunks, {**reader, "shards": shards}),
    )  # fmt: skip


# --------------------------------------------------------------------------- sources, splits
def _bind(cls: type[VideoChunks], options: dict) -> Callable[..., VideoChunks]:
    """``chunks(videos, frames)`` making ``cls`` with the source's reader options."""
    return functools.partial(cls, **options)


#: source name -> opener(data_dir, reader options, source options) -> VideoSource
VIDEO_SOURCES: dict[str, Callable[..., VideoSource]] = {
    "flickr_soundnet": open_flickr_videos,
    "audioset": open_audioset_videos,
    "kinetics": open_kinetics_shards,
}


def open_video_source(
    source: str,
    data_dir: str | os.PathLike,
    image_size: int = 256,
    sample_rate: int = 16000,
    clip_seconds: float = 5.0,
    skip_corrupt: bool = True,
    **options,
) -> VideoSource:
    """Index ``source`` under ``data_dir`` (see the module docstring); its pairs read images
    of ``image_size`` and ``clip_seconds`` of audio at ``sample_rate``. ``options``: the
    source's own (``audioset_split`` for audioset, ``shards_dir`` for kinetics)."""
    if source not in VIDEO_SOURCES:
        raise ConfigError(f"source must be one of {sorted(VIDEO_SOURCES)}, got {source!r}")
    check_clip(image_size, sample_rate, clip_seconds)
    reader = {
        "image_size": image_size, "sample_rate": sample_rate, "clip_seconds": clip_seconds,
        "skip_corrupt": skip_corrupt,
    }  # fmt: skip
    return VIDEO_SOURCES[source](Path(data_dir), reader, options)


def check_split(val_fraction: float, test_fraction: float, max_train_videos: int | None) -> None:
    """ConfigError unless the fractions are in [0, 1) and ``max_train_videos`` is >= 1 or None."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
    if max_train_videos is not None and max_train_videos < 1:
        raise ConfigError(f"max_train_videos must be >= 1 or None, got {max_train_videos!r}")


def split_videos(
    source: VideoSource,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    seed: int = 0,
    max_train_videos: int | None = None,
) -> dict[str, list[Video]]:
    """``train`` / ``val`` / ``test`` videos, disjoint by video.

    The pool's videos (sorted by name) are put in a ``seed``-ed random order; the first
    ``round(val_fraction * n)`` (at least one when the fraction is positive) are ``val``, the
    next ``round(test_fraction * n)`` are ``test`` unless the source has an official
    evaluation split (then that is ``test`` and ``test_fraction`` is unused), the rest are
    ``train``, of which ``max_train_videos`` (``None``: all) are kept, the first ones of the
    same order, so val and test do not change with it.
    """
    check_split(val_fraction, test_fraction, max_train_videos)
    n = len(source.pool)

    def count(fraction: float) -> int:
        return max(1, round(fraction * n)) if fraction > 0 else 0

    n_val = count(val_fraction)
    n_test = count(test_fraction) if source.test is None else 0
    if n_val + n_test >= n:
        raise ConfigError(
            f"{source.name}: {n} training videos cannot give {n_val} validation and {n_test} "
            "test videos and leave some to train on; lower val_fraction / test_fraction"
        )
    order = np.random.default_rng(seed).permutation(n)
    pick = lambda rows: [source.pool[i] for i in sorted(rows)]  # noqa: E731
    train = order[n_val + n_test :]
    if max_train_videos is not None:
        train = train[:max_train_videos]
    return {
        "train": pick(train),
        "val": pick(order[:n_val]),
        "test": source.test if source.test is not None else pick(order[n_val : n_val + n_test]),
    }
