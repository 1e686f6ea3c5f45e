"""Kinetics-400 as unpaired images and sounds: one frame and two seconds of audio from the
middle of each clip, extracted once into shards (240k videos are not decoded every epoch).

Two layouts are read (``layout: auto`` finds either, preferring the first):

- CVDF (``cvdfoundation/kinetics-dataset``): flat ``k400/{train,val,test}/*.mp4`` named
  ``<youtube_id>_<start:06d>_<end:06d>.mp4``, labels in ``k400/annotations/<split>.csv``
  (``label,youtube_id,time_start,time_end,split[,is_cc]``); a file of the same name in
  ``k400/replacement/replacement_for_corrupted_k400/`` is preferred (the fixed copies).
- class folders (torchvision ``Kinetics``, CVDF's ``arrange_by_classes.py``):
  ``<root>/{train,val,test}/<class>/<video>.mp4``.

Classes are the sorted labels of all annotation csvs (or the sorted class folders of all
splits), so label ids are the same in a partial copy. csv rows without a video are skipped
when the index is built; clips without an audio stream, truncated or undecodable are skipped
at extraction; all are counted in the manifest and reported in one warning.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch

from assoc_lightning.data.datasets.extraction import MANIFEST, SkipItem, SourceItem, build_shards
from assoc_lightning.data.datasets.shards import ShardItems, ShardStream, open_shards
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.image import resize_center_crop
from assoc_lightning.data.io.shards import AUDIO_EXT, IMAGE_FORMATS, encode_audio, encode_image
from assoc_lightning.data.io.video import MissingStreamError, read_middle
from assoc_lightning.errors import ConfigError

NAME = "Kinetics-400"
SPLITS = ("train", "val", "test")
LAYOUTS = ("auto", "cvdf", "folders")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm")
CSV_COLUMNS = ("youtube_id", "time_start", "time_end")  # and label (absent: unlabelled)
REPLACEMENTS = ("replacement/replacement_for_corrupted_k400", "replacement")
BASES = ("", "k400", "kinetics400", "kinetics400/k400", "kinetics-dataset/k400")
CVDF_STEM = re.compile(r"^(.{11})_\d{6}_\d{6}$")
SHARDS_DIR = "kinetics400_shards"
JPEG_QUALITY = 90
LAYOUT = """\
CVDF: <root>/k400/{train,val,test}/<youtube_id>_<start:06d>_<end:06d>.mp4   (flat)
      <root>/k400/annotations/{train,val,test}.csv   (label,youtube_id,time_start,time_end,split)
      <root>/k400/replacement/replacement_for_corrupted_k400/*.mp4   (optional, preferred)
class folders: <root>/{train,val,test}/<class>/<video>.mp4
(<root> may also be the k400 folder itself, or <data_dir>/kinetics400)"""
HOW_TO_GET = (
    "Kinetics-400 is not downloaded for you: fetch it yourself, e.g. with the CVDF scripts "
    "(https://github.com/cvdfoundation/kinetics-dataset: k400_downloader.sh, "
    "k400_extractor.sh), then run `assoc extract kinetics --root <that folder>`"
)
REASONS = {
    "missing": "csv row without a video",
    "no_audio": "no audio stream",
    "corrupt": "truncated or undecodable",
}


# ------------------------------------------------------------------------------------ index
def find_kinetics(root: str | os.PathLike, split: str, layout: str = "auto") -> tuple[str, Path]:
    """``(layout, base)`` of the copy under ``root`` holding ``split``."""
    if split not in SPLITS:
        raise ConfigError(f"Kinetics-400 split must be one of {SPLITS}, got {split!r}")
    if layout not in LAYOUTS:
        raise ConfigError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    root = Path(root).expanduser()
    bases = [root / b for b in BASES]
    for kind in ("cvdf", "folders") if layout == "auto" else (layout,):
        for base in bases + ([b / "videos" for b in bases] if kind == "folders" else []):
            if kind == "cvdf" and (base / "annotations" / f"{split}.csv").is_file():
                return kind, base
            if kind == "folders" and (base / split).is_dir() and _class_dirs(base / split):
                return kind, base
    raise DatasetNotFoundError(NAME, root, LAYOUT, HOW_TO_GET, missing=f"the {split} split")


def _class_dirs(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def read_annotations(path: Path) -> list[tuple[str, str, int, int]]:
    """``(label, youtube_id, time_start, time_end)`` rows of a CVDF annotation csv (label
    ``""`` where the csv has none, as in the first releases' test csv)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        if not set(CSV_COLUMNS) <= set(reader.fieldnames or ()):
            found = f"header {reader.fieldnames}"
            raise DatasetCorruptError(
                path, f"csv columns label,{','.join(CSV_COLUMNS)}[,split,...]", found
            )
        rows = []
        for line, row in enumerate(reader, start=2):
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (TypeError, ValueError) as err:
                raise DatasetCorruptError(
                    path, "integer time_start, time_end", f"line {line}: {row}"
                ) from err
            label = (row.get("label") or "").strip()
            rows.append((label, row["youtube_id"].strip(), start, end))
    return rows


def _videos(folder: Path) -> dict[str, Path]:
    """File name -> path of the videos directly in ``folder`` (none when it is absent)."""
    if not folder.is_dir():
        return {}
    return {
        e.name: Path(e.path)
        for e in os.scandir(folder)
        if e.name.lower().endswith(VIDEO_EXTENSIONS)
    }


def video_id(path: Path) -> str:
    """The YouTube id of a CVDF name, else the file's stem."""
    match = CVDF_STEM.match(path.stem)
    return match.group(1) if match else path.stem


class KineticsIndex:
    """The clips of one split present on disk, labelled.

    Attributes: ``layout``, ``base``, ``classes`` (sorted names), ``clips``
    (:class:`SourceItem` ``(video id, label, path)``, sorted by id; label -1 for rows of a
    csv without labels), ``missing`` (csv rows without a video, as skip records).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", layout: str = "auto") -> None:
        self.split = split
        self.layout, self.base = find_kinetics(root, split, layout)
        self.missing: list[dict] = []
        if self.layout == "cvdf":
            self.classes = sorted({r[0] for s in SPLITS for r in self._annotations(s)} - {""})
            self.clips = self._cvdf_clips()
        else:
            self.classes = sorted(
                {c for s in SPLITS if (self.base / s).is_dir() for c in _class_dirs(self.base / s)}
            )
            self.clips = self._folder_clips()
        self.clips.sort(key=lambda c: (c.id, c.path))
        if not self.clips:
            raise DatasetNotFoundError(
                NAME, self.base, LAYOUT, HOW_TO_GET, missing=f"any video of the {split} split"
            )

    def _annotations(self, split: str) -> list[tuple[str, str, int, int]]:
        path = self.base / "annotations" / f"{split}.csv"
        return read_annotations(path) if path.is_file() else []

    def _cvdf_clips(self) -> list[SourceItem]:
        found = _videos(self.base / self.split)
        fixed = {}
        for sub in reversed(REPLACEMENTS):
            fixed.update(_videos(self.base / sub))
        by_id: dict[str, list[Path]] = {}
        for path in found.values():
            by_id.setdefault(video_id(path), []).append(path)
        label_of = {name: i for i, name in enumerate(self.classes)} | {"": -1}
        clips = []
        for label, ytid, start, end in self._annotations(self.split):
            name = f"{ytid}_{start:06d}_{end:06d}.mp4"
            path = fixed.get(name) or found.get(name)
            if path is None and len(by_id.get(ytid, ())) == 1:
                path = by_id[ytid][0]  # another extension or naming, one file for this id
            if path is None:
                self.missing.append({"id": ytid, "reason": "missing", "detail": name})
            else:
                clips.append(SourceItem(ytid, label_of[label], str(path)))
        return clips

    def _folder_clips(self) -> list[SourceItem]:
        clips = []
        for label, name in enumerate(self.classes):
            for path in _videos(self.base / self.split / name).values():
                clips.append(SourceItem(video_id(path), label, str(path)))
        return clips

    def fingerprint(self) -> str:
        """A hash of the clips (ids, labels, paths under the base): same clips, same shards."""
        text = "\n".join(
            f"{c.id}\t{c.label}\t{os.path.relpath(c.path, self.base)}" for c in self.clips
        )
        return hashlib.sha1("\n".join([*self.classes, text]).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------- decoding
def decode_clip(
    path: str | os.PathLike,
    image_size: int = 224,
    sample_rate: int = 22050,
    clip_seconds: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The middle frame (uint8 ``[3, S, S]``: shorter side resized, centre-cropped) and the
    middle ``clip_seconds`` of audio (mono float32 at ``sample_rate``) of a clip."""
    frame, wave = read_middle(path, sample_rate, clip_seconds)
    return resize_center_crop(frame, image_size), wave


def encode_clip(
    item: SourceItem,
    image_size: int = 224,
    sample_rate: int = 22050,
    clip_seconds: float = 2.0,
    image_format: str = "jpg",
    jpeg_quality: int = JPEG_QUALITY,
) -> dict[str, bytes]:
    """A clip's shard members (frame, audio); clips that cannot be used raise SkipItem."""
    try:
        image, wave = decode_clip(item.path, image_size, sample_rate, clip_seconds)
    except MissingStreamError as err:
        raise SkipItem("no_audio" if err.stream == "audio" else "corrupt", str(err.path)) from err
    except DatasetCorruptError as err:
        raise SkipItem("corrupt", f"{err.path}: {str(err).splitlines()[-1]}") from err
    return {
        image_format: encode_image(image, image_format, jpeg_quality),
        AUDIO_EXT: encode_audio(wave),
    }


# ------------------------------------------------------------------------------- extraction
def extract_kinetics(
    root: str | os.PathLike,
    out: str | os.PathLike,
    split: str = "train",
    workers: int = 4,
    max_items: int | None = None,
    shard_size: int = 1000,
    image_size: int = 224,
    sample_rate: int = 22050,
    clip_seconds: float = 2.0,
    image_format: str = "jpg",
    layout: str = "auto",
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Extract one split into ``<out>/<split>/`` shards; return the manifest.

    Clips are taken in a seeded random order (so each shard mixes classes, and
    ``max_items`` takes a random subset: the first ``max_items`` of that order; a later run
    with more reuses the full shards). Resumable after a kill; see ``build_shards``.
    """
    if image_format not in IMAGE_FORMATS:
        raise ConfigError(
            f"image_format must be one of {sorted(IMAGE_FORMATS)}, got {image_format!r}"
        )
    if max_items is not None and max_items < 1:
        raise ConfigError(f"max_items must be >= 1, got {max_items}")
    index = KineticsIndex(root, split, layout)
    order = torch.randperm(len(index.clips), generator=torch.Generator().manual_seed(seed))
    items = [index.clips[i] for i in order.tolist()][:max_items]
    decode = {"image_size": image_size, "sample_rate": sample_rate, "clip_seconds": clip_seconds}
    settings = {
        "dataset": "kinetics400", "split": split, "clips": index.fingerprint(), "seed": seed,
        "shard_size": shard_size, "image_format": image_format, "jpeg_quality": JPEG_QUALITY, **decode,
    }  # fmt: skip
    extra = {
        "dataset": "kinetics400", "split": split, "layout": index.layout, "source": str(index.base),
        "classes": index.classes, "members": {"image": image_format, "audio": AUDIO_EXT}, **decode,
    }  # fmt: skip
    missing = index.missing if max_items is None else []
    manifest = build_shards(
        Path(out) / split,
        items,
        partial(encode_clip, image_format=image_format, **decode),
        settings,
        extra,
        shard_size=shard_size,
        workers=workers,
        pre_skipped=missing,
        progress=progress or (lambda msg: None),
    )
    warn_skipped(manifest, Path(out) / split / MANIFEST)
    return manifest


def warn_skipped(manifest: dict, where: Path) -> None:
    """One warning summing up what an extraction skipped, and why."""
    counts = manifest.get("skipped", {})
    if not counts:
        return
    total = sum(counts.values())
    parts = ", ".join(f"{REASONS.get(reason, reason)}: {n}" for reason, n in sorted(counts.items()))
    warnings.warn(
        f"{NAME} {manifest['split']}: skipped {total} of {total + manifest['num_samples']} "
        f"clips ({parts}); they are listed in {where}",
        stacklevel=3,
    )


# ---------------------------------------------------------------------------------- reading
def kinetics_shards_dir(
    data_dir: str | os.PathLike, split: str, shards_dir: str | None = None
) -> Path:
    """The folder of ``split``'s shards: ``<shards_dir or data_dir/kinetics400_shards>/<split>``,
    or ``shards_dir`` itself when it holds that split's manifest."""
    base = Path(shards_dir).expanduser() if shards_dir else Path(data_dir) / SHARDS_DIR
    folder = base / split
    own = base / MANIFEST  # shards_dir may be one split's folder itself
    if not (folder / MANIFEST).is_file() and own.is_file():
        folder = base if json.loads(own.read_text()).get("split") == split else folder
    if not (folder / MANIFEST).is_file():
        expected = f"<shards_dir>/{split}/{{manifest.json,index.npz,shard-NNNNNN.tar}}"
        how = (
            f"extract them once: `assoc extract kinetics --root <your Kinetics-400 copy> --out "
            f"{base} --split {split}` (an unfinished extraction resumes). {HOW_TO_GET}"
        )
        raise DatasetNotFoundError(f"{NAME} shards", base, expected, how, missing=folder / MANIFEST)
    return folder


def open_kinetics(
    data_dir: str | os.PathLike,
    split: str,
    modality: str,
    shards_dir: str | None = None,
    access: str = "random",
    seed: int = 0,
    shuffle: bool = True,
    shuffle_window: int = 1000,
    remainder: str = "pad",
    rank: int | None = None,
    world_size: int | None = None,
) -> ShardItems | ShardStream:
    """One modality of a split's extracted shards: ``{"image"|"audio", "label", "index"}``.

    ``access: random`` (default) gives a map-style labelled dataset (:class:`ShardItems`,
    one seek per item): what subsets, ``ConcatDataset``, ``shuffle=True`` loaders,
    Lightning's DistributedSampler and the evaluation sets take. ``stream`` gives an
    IterableDataset (:class:`ShardStream`) that reads shards in order, split over ranks and
    workers itself and shuffled with ``seed`` (the other options are its own), for slow
    storage; its loader must not be given ``shuffle`` or a sampler.
    """
    if modality not in ("image", "audio"):
        raise ConfigError(f"modality must be image or audio, got {modality!r}")
    folder = kinetics_shards_dir(data_dir, split, shards_dir)
    ext = json.loads((folder / MANIFEST).read_text())["members"][modality]
    if access != "stream":
        return open_shards(folder, modality, ext, access)
    return open_shards(
        folder, modality, ext, access, seed=seed, shuffle=shuffle,
        shuffle_window=shuffle_window, remainder=remainder, rank=rank, world_size=world_size,
    )  # fmt: skip
