"""Zero-shot audio <-> image retrieval sets: AVE and Flickr-SoundNet (C-MCR's Table 1).

Each set is a list of fixed pairs, one per row: the row's image and the row's audio, with
instance-level relevance (a query's only positive is its own pair). :class:`AVPairs` yields
``{"image", "audio", "label", "index", "pair_id"}`` with ``index`` = ``pair_id`` = the row;
:meth:`AVPairs.view` gives the single-modality :class:`LabeledDataset` of the same rows and
indices for the evaluation callbacks.

Our choices where the paper is silent: an AVE video is represented by the frame at the middle
of its event segment ``[start, end)`` (the middle of the whole clip for ``0&0`` rows) and by
its full audio track; images are uint8 ``[3, S, S]`` (shorter side resized bicubically,
centre crop; the tower's processor normalizes), audio is mono float32 at ``sample_rate``
(48 kHz, CLAP's rate) fitted to ``clip_seconds`` (AVE: zero-padded/cropped; Flickr-SoundNet:
looped when shorter, as LVS does, then cropped).

Rows whose files are absent are dropped when the index is built (``num_missing``, one
warning); an undecodable file is skipped at read time and counted (``num_corrupt``): the pair
and both views share one set of corrupt rows, so a row found corrupt for one modality is
skipped for the other too (within one process).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from assoc_lightning.data.audioset import fit_length, read_wav, resample
from assoc_lightning.data.base import SPLITS, AssocDataModule, SkipCorruptDataset
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.image_folder import open_image, resize_center_crop

VIDEO_HINT = "pip install 'assoc_lightning[video]'"

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

FLICKR_NAME = "Flickr-SoundNet"
FLICKR_LAYOUT = """\
LVS 250-pair test (hche11/Localizing-Visual-Sounds-the-Hard-Way):
  <root>/flickr_soundnet/metadata/flickr_test.csv   (rows <id>,<n>)
  <root>/flickr_soundnet/frames/<id>.jpg
  <root>/flickr_soundnet/audio/<id>.wav
Senocak et al. annotated set:
  <root>/flickr_soundnet/Dataset/Data/<sub>/<id>.jpg + <id>.wav
  <root>/flickr_soundnet/test_list.txt (or Dataset/test_list.txt; entries <id>.jpg)
(or <root> itself is the flickr_soundnet folder)"""
FLICKR_HOW_TO_GET = (
    "Senocak et al., 'Learning to Localize Sound Source in Visual Scenes' (CVPR 2018): "
    "https://github.com/ardasnck/learning_to_localize_sound_source ; the 250-pair test set: "
    "https://github.com/hche11/Localizing-Visual-Sounds-the-Hard-Way"
)
FLICKR_LAYOUTS = ("auto", "lvs", "senocak")


# --------------------------------------------------------------------------- decoding
def import_av():
    """PyAV, imported on first use (an optional dependency)."""
    try:
        import av
    except ImportError as err:
        raise ImportError(f"reading mp4 files needs PyAV: {VIDEO_HINT}") from err
    return av


def _open_av(av, path: Path):
    """An open container holding both a video and an audio stream (else corrupt)."""
    container = av.open(str(path))
    n_video, n_audio = len(container.streams.video), len(container.streams.audio)
    if not n_video or not n_audio:
        container.close()  # (touching its streams after this would crash PyAV)
        found = f"{n_video} video and {n_audio} audio streams"
        raise DatasetCorruptError(path, "a video and an audio stream", found)
    return container


def _seconds(value, time_base) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


def _frame_at(container, stream, target: float):
    """The last decoded frame starting at or before ``target`` seconds (the first frame when
    ``target`` precedes all, the last one when it is past the end)."""
    best = None
    for frame in container.decode(stream):
        time = frame.time if frame.time is not None else 0.0
        if time > target + 1e-6:
            return best if best is not None else frame
        best = frame
    return best


def read_video_frame(path: str | os.PathLike, at: float | None = None) -> Image.Image:
    """The RGB frame shown ``at`` seconds after the video's start (``None``: the middle)."""
    path = Path(path)
    av = import_av()  # outside the try: a missing PyAV is not a corrupt file
    try:
        with _open_av(av, path) as container:
            stream = container.streams.video[0]
            start = _seconds(stream.start_time, stream.time_base) or 0.0
            if at is None:
                duration = _seconds(stream.duration, stream.time_base)
                if not duration and container.duration:
                    duration = container.duration / 1_000_000  # av.time_base
                at = (duration or 0.0) / 2
            target = start + max(at, 0.0)
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            frame = _frame_at(container, stream, target)
            if frame is None or (frame.time or 0.0) > target + 1e-6:  # seek overshot
                container.seek(stream.start_time or 0, stream=stream, backward=True)
                frame = _frame_at(container, stream, target)
            if frame is None:
                raise DatasetCorruptError(path, "at least one video frame", "none decoded")
            return frame.to_image()
    except DatasetCorruptError:
        raise
    except Exception as err:  # PyAV raises FFmpegError subclasses, OSError, ValueError
        raise DatasetCorruptError(
            path, "a decodable mp4 video stream", f"{type(err).__name__}: {err}"
        ) from err


def read_audio_track(path: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    """The whole audio track, mixed to mono (channel mean), resampled to ``sample_rate``."""
    path = Path(path)
    av = import_av()
    try:
        with _open_av(av, path) as container:
            stream = container.streams.audio[0]
            to_float = av.AudioResampler(format="fltp")  # planar float, same layout and rate
            chunks, rate = [], None
            for frame in container.decode(stream):
                for out in to_float.resample(frame):
                    rate = out.sample_rate
                    chunks.append(out.to_ndarray().mean(axis=0))
            for out in to_float.resample(None):
                chunks.append(out.to_ndarray().mean(axis=0))
    except DatasetCorruptError:
        raise
    except Exception as err:  # PyAV raises FFmpegError subclasses, OSError, ValueError
        raise DatasetCorruptError(
            path, "a decodable mp4 audio stream", f"{type(err).__name__}: {err}"
        ) from err
    if not chunks or rate is None:
        raise DatasetCorruptError(path, "at least one audio frame", "none decoded")
    wave = torch.from_numpy(np.concatenate(chunks).astype(np.float32))
    return resample(wave, rate, sample_rate)


# --------------------------------------------------------------------------- pairs
class AVPairs(SkipCorruptDataset):
    """Fixed image-audio pairs, one per row; subclasses implement ``read_image``/``read_audio``.

    Item: ``{"image": uint8 [3, S, S], "audio": float32 [clip_seconds * sample_rate],
    "label", "index", "pair_id"}`` with ``index`` = ``pair_id`` = the row. When a corrupt row
    is replaced by the next readable one, image, audio and label all come from that row.
    """

    modality = "pair"

    def __init__(
        self,
        labels: Sequence[int],
        ids: Sequence[str],
        image_size: int,
        sample_rate: int,
        clip_seconds: float,
        skip_corrupt: bool,
    ) -> None:
        super().__init__(labels, skip_corrupt)
        self.ids = list(ids)
        self.image_size, self.sample_rate = image_size, sample_rate
        self.clip_samples = int(round(sample_rate * clip_seconds))

    def read_image(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def read_audio(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def read(self, index: int) -> dict:
        return {"image": self.read_image(index), "audio": self.read_audio(index)}

    def __getitem__(self, index: int) -> dict:
        row, pair = self.readable(index)  # both modalities from the same (replacement) row
        return {**pair, "label": int(self.labels[row]), "index": index, "pair_id": index}

    def view(self, modality: str) -> PairView:
        """The rows' ``image`` or ``audio`` alone, same indices and labels, shared corrupt set."""
        return PairView(self, modality)


class PairView(SkipCorruptDataset):
    """One modality of an :class:`AVPairs` (decodes only that modality)."""

    def __init__(self, pairs: AVPairs, modality: str) -> None:
        if modality not in ("image", "audio"):
            raise ValueError(f"modality must be image or audio, got {modality!r}")
        super().__init__(pairs.labels, pairs.skip_corrupt)
        self.pairs, self.modality = pairs, modality
        self.corrupt = pairs.corrupt  # one set of corrupt rows for the pairs and both views

    def read(self, index: int) -> torch.Tensor:
        reader = self.pairs.read_image if self.modality == "image" else self.pairs.read_audio
        return reader(index)


def _warn_missing(name: str, missing: int, kept: int, where: Path) -> None:
    if missing:
        warnings.warn(
            f"{name}: {missing} of {missing + kept} listed pairs have no file under {where} "
            "and are skipped (the videos come from YouTube/Flickr, copies are partial)",
            stacklevel=3,
        )


# --------------------------------------------------------------------------- AVE
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
            raise ValueError(f"split must be one of {list(AVE_LISTS)}, got {split!r}")
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
        _warn_missing(f"AVE {split}", self.num_missing, len(self.rows), self.videos)

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


# --------------------------------------------------------------------------- Flickr-SoundNet
def find_flickr(root: str | os.PathLike, layout: str = "auto") -> tuple[str, Path, Path]:
    """``(layout, base, list file)`` of a Flickr-SoundNet copy under ``root``."""
    if layout not in FLICKR_LAYOUTS:
        raise ValueError(f"layout must be one of {FLICKR_LAYOUTS}, got {layout!r}")
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

    Attributes: ``ids``, ``images``, ``sounds`` (paths per pair), ``layout``, ``num_missing``.
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
    ) -> None:
        if subset not in ("list", "all"):
            raise ValueError(f"subset must be 'list' or 'all', got {subset!r}")
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
        _warn_missing(f"Flickr-SoundNet ({self.layout})", self.num_missing, len(ids), self.base)

    def read_image(self, index: int) -> torch.Tensor:
        return resize_center_crop(open_image(self.images[index]), self.image_size)

    def read_audio(self, index: int) -> torch.Tensor:
        return read_wav(self.sounds[index], self.sample_rate, self.clip_samples, fit="tile")


# --------------------------------------------------------------------------- datamodules
def _fill(dm: AssocDataModule, split: str, pairs: AVPairs) -> None:
    dm.paired[split] = pairs
    dm.unpaired[split] = {m: pairs.view(m) for m in ("image", "audio")}


class AVERetrievalDataModule(AssocDataModule):
    """AVE as fixed pairs for zero-shot retrieval (and, if wanted, training) per split.

    Fills ``paired`` and ``unpaired`` for ``train``/``val``/``test`` from the official lists.
    ``test_split="all"`` makes ``test`` every annotated video that is present (the C-MCR
    paper's protocol: 4,095 available of 4,143); the default is the official ``testSet.txt``.

    Args (besides :class:`AssocDataModule`'s): image_size, sample_rate, clip_seconds,
    skip_corrupt as in :class:`AVEPairs`; test_split: ``test`` or ``all``.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        test_split: str = "test",
        skip_corrupt: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, eval_batch_size, num_workers, seed)
        if test_split not in ("test", "all"):
            raise ValueError(f"test_split must be 'test' or 'all', got {test_split!r}")
        self.image_size, self.sample_rate = image_size, sample_rate
        self.clip_seconds, self.test_split = clip_seconds, test_split
        self.skip_corrupt = skip_corrupt

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        for split in SPLITS:
            pairs = AVEPairs(
                self.data_dir,
                self.test_split if split == "test" else split,
                self.image_size,
                self.sample_rate,
                self.clip_seconds,
                self.skip_corrupt,
            )
            _fill(self, split, pairs)
        self.class_names = pairs.categories
        self.num_classes = len(pairs.categories)


class FlickrSoundNetDataModule(AssocDataModule):
    """Flickr-SoundNet as fixed pairs for zero-shot retrieval: a ``test`` split only.

    There is no train or validation split (use ``assoc test``); ``val`` is not filled with the
    test pairs so that no model selection can silently run on the test set. Labels are all 0
    (``num_classes`` = 0: class-based evaluations do not apply).

    Args (besides :class:`AssocDataModule`'s): layout, subset, image_size, sample_rate,
    clip_seconds, skip_corrupt as in :class:`FlickrSoundNetPairs`.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        layout: str = "auto",
        subset: str = "list",
        image_size: int = 224,
        sample_rate: int = 48000,
        clip_seconds: float = 10.0,
        skip_corrupt: bool = True,
    ) -> None:
        super().__init__(data_dir, batch_size, eval_batch_size, num_workers, seed)
        self.layout, self.subset = layout, subset
        self.image_size, self.sample_rate = image_size, sample_rate
        self.clip_seconds, self.skip_corrupt = clip_seconds, skip_corrupt

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        pairs = FlickrSoundNetPairs(
            self.data_dir,
            self.layout,
            self.subset,
            self.image_size,
            self.sample_rate,
            self.clip_seconds,
            self.skip_corrupt,
        )
        _fill(self, "test", pairs)

    def _test_only(self) -> DataLoader:
        raise ValueError(
            "Flickr-SoundNet has only a test split (zero-shot retrieval): run `assoc test`, "
            "or evaluate it with val_split/final_split 'test'"
        )

    def train_dataloader(self) -> DataLoader:
        return self._test_only()

    def val_dataloader(self) -> DataLoader:
        return self._test_only()
