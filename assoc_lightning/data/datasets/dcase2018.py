"""DCASE 2018 Task 1A (TUT Urban Acoustic Scenes 2018, development): 2-s segments of 10-s scenes.

Layout (``<data_dir>/TUT-urban-acoustic-scenes-2018-development/`` or that folder itself):
``meta.csv`` and ``evaluation_setup/fold1_{train,evaluate,test}.txt`` (``.csv`` too),
tab-separated, header line optional; train/evaluate lines are ``filename<TAB>scene_label``,
test lines ``filename`` only (the label then comes from ``meta.csv``); audio
``audio/<scene>-<city>-<location>-<segment>-a.wav`` (10 s, 48 kHz, 24-bit, binaural).

Splits (fold 1, the only one): ``train`` = ``fold1_train`` minus the validation locations;
``val`` = a seeded, location-disjoint part of ``fold1_train`` (per scene, ``val_fraction`` of
its recording locations); ``test`` = ``fold1_evaluate`` (``test_list: test`` reads the same
clips from ``fold1_test`` with labels from ``meta.csv``). Fold 1's train and evaluate sets are
themselves split by recording location, so no location is in two splits.

Every clip is downmixed (or one ``channel`` kept), resampled to ``sample_rate`` (22,050 Hz by
default, the BMA-Memory / ACIVW baseline's) and cut into ``segment_seconds`` pieces (5 of 2 s);
items are segments: ``audio``, ``label`` (position in :data:`SCENES`), ``index`` and
``clip_id`` (the clip's row in :attr:`DCASE2018Segments.clip_names`), so segment scores can be
averaged per clip. Clips that are missing or whose header does not read are skipped when the
split is opened (counted in ``num_skipped``, one warning); a segment whose samples do not read is skipped at
read time (``SkipCorruptDataset``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from assoc_lightning.data.datasets.segments import ClipSegments
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import audio_info
from assoc_lightning.errors import ConfigError

NAME = "DCASE 2018 Task 1A (TUT Urban Acoustic Scenes 2018 development)"
FOLDER = "TUT-urban-acoustic-scenes-2018-development"
# the order of the DCASE 2018 task description (and dcase_util); label k is SCENES[k]
SCENES = (
    "airport", "shopping_mall", "metro_station", "street_pedestrian", "public_square",
    "street_traffic", "tram", "bus", "metro", "park",
)  # fmt: skip
LAYOUT = f"""\
<data_dir>/{FOLDER}/meta.csv     (filename, scene_label, identifier, source_label; tab-separated)
<data_dir>/{FOLDER}/evaluation_setup/fold1_train.txt      (filename<TAB>scene_label)
<data_dir>/{FOLDER}/evaluation_setup/fold1_evaluate.txt   (filename<TAB>scene_label)
<data_dir>/{FOLDER}/audio/<scene>-<city>-<location>-<segment>-a.wav   (10 s, 48 kHz)"""
HOW_TO_GET = (
    "download TUT Urban Acoustic Scenes 2018, Development dataset from Zenodo "
    "(https://zenodo.org/record/1228142: the .doc, .meta and .audio.1-13 zips) and unzip "
    f"them into one folder {FOLDER}/; nothing is downloaded for you"
)
TEST_LISTS = ("evaluate", "test")


def find_dcase2018(data_dir: str | Path) -> Path:
    """The dataset folder: ``<data_dir>/TUT-urban-acoustic-scenes-2018-development`` or
    ``data_dir`` itself when it holds ``meta.csv``."""
    data_dir = Path(data_dir)
    for root in (data_dir / FOLDER, data_dir):
        if (root / "meta.csv").is_file():
            return root
    raise DatasetNotFoundError(NAME, data_dir, LAYOUT, HOW_TO_GET, missing=data_dir / FOLDER)


def read_rows(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of a tab-separated DCASE list; blank lines and a header line
    (first field ``filename``) are skipped."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = [(n, [c.strip() for c in r]) for n, r in enumerate(csv.reader(f, delimiter="\t"), 1)]
    rows = [(n, r) for n, r in rows if r and r[0]]
    if rows and rows[0][1][0].lower() == "filename":
        rows = rows[1:]
    return rows


def location_of(filename: str) -> str:
    """``<city>-<location>`` from ``audio/<scene>-<city>-<location>-<segment>-<device>.wav``."""
    parts = Path(filename).stem.split("-")
    return "-".join(parts[1:3]) if len(parts) >= 5 else Path(filename).stem


def read_meta(root: Path) -> dict[str, tuple[str, str]]:
    """``filename -> (scene label, recording location)`` from ``meta.csv``."""
    meta = {}
    for _, row in read_rows(root / "meta.csv"):
        label = row[1] if len(row) > 1 else ""
        meta[row[0]] = (label, row[2] if len(row) > 2 and row[2] else location_of(row[0]))
    return meta


def setup_file(root: Path, part: str) -> Path:
    """``evaluation_setup/fold1_<part>.txt`` (or ``.csv``)."""
    for ext in ("txt", "csv"):
        path = root / "evaluation_setup" / f"fold1_{part}.{ext}"
        if path.is_file():
            return path
    raise DatasetNotFoundError(
        NAME, root, LAYOUT, HOW_TO_GET, missing=root / "evaluation_setup" / f"fold1_{part}.txt"
    )


def read_setup(root: Path, part: str, meta: dict) -> list[tuple[str, int, str]]:
    """``(filename, label, location)`` of every line of ``fold1_<part>``, in file order."""
    path = setup_file(root, part)
    out = []
    for line, row in read_rows(path):
        name = row[0]
        label = row[1] if len(row) > 1 and row[1] else meta.get(name, ("", ""))[0]
        if label not in SCENES:
            found = f"scene {label!r}" if label else "no scene (and none in meta.csv)"
            raise DatasetCorruptError(f"{path}:{line}", f"one of the scenes {SCENES}", found)
        out.append((name, SCENES.index(label), meta.get(name, ("", location_of(name)))[1]))
    return out


def validation_locations(clips: list[tuple[str, int, str]], fraction: float, seed: int) -> set:
    """Per scene, a seeded ``fraction`` of its recording locations (at least one when the
    scene has two or more), as ``(label, location)`` pairs."""
    rng = np.random.default_rng(seed)
    chosen = set()
    for label in range(len(SCENES)):
        places = sorted({loc for _, lab, loc in clips if lab == label})
        n = int(round(fraction * len(places)))
        if fraction > 0 and len(places) > 1:
            n = min(max(n, 1), len(places) - 1)
        chosen |= {(label, places[i]) for i in rng.permutation(len(places))[:n]}
    return chosen


def split_clips(
    root: Path, split: str, val_fraction: float, seed: int, test_list: str
) -> list[tuple[str, int]]:
    """``(filename, label)`` of the clips of ``split``, sorted by filename."""
    meta = read_meta(root)
    if split == "test":
        clips = read_setup(root, test_list, meta)
    elif split in ("train", "val"):
        clips = read_setup(root, "train", meta)
        val = validation_locations(clips, val_fraction, seed)
        clips = [c for c in clips if ((c[1], c[2]) in val) == (split == "val")]
    else:
        raise ConfigError(f"split must be train/val/test, got {split!r}")
    return sorted({(name, label) for name, label, _ in clips})


class DCASE2018Segments(ClipSegments):
    """One split of DCASE 2018 Task 1A as fixed-length segments (see the module docstring).

    Args:
        data_dir: the folder holding ``TUT-urban-acoustic-scenes-2018-development/`` (or it).
        split: ``train``, ``val`` or ``test``.
        sample_rate: output rate (the files are 48 kHz).
        segment_seconds: segment length; a clip gives ``floor(duration / segment_seconds)``
            segments (5 of 2 s), a last piece short by under 1% is zero-padded.
        channel: ``None`` averages the two channels; 0 or 1 keeps one.
        val_fraction: share of each scene's fold-1 training locations held out as ``val``.
        seed: seed of the validation locations.
        test_list: ``evaluate`` (labels inline) or ``test`` (labels from ``meta.csv``).
        skip_corrupt: skip unreadable files (counted) instead of raising.
    """

    class_names = SCENES
    dataset_name, layout, how_to_get = NAME, LAYOUT, HOW_TO_GET

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        sample_rate: int = 22050,
        segment_seconds: float = 2.0,
        channel: int | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        test_list: str = "evaluate",
        skip_corrupt: bool = True,
    ) -> None:
        if test_list not in TEST_LISTS:
            raise ConfigError(f"test_list must be one of {TEST_LISTS}, got {test_list!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        if segment_seconds <= 0:
            raise ConfigError(f"segment_seconds must be positive, got {segment_seconds!r}")
        self.root = find_dcase2018(data_dir)
        self.sample_rate, self.segment_seconds, self.channel = sample_rate, segment_seconds, channel
        clips = split_clips(self.root, split, val_fraction, seed, test_list)
        if not clips:
            raise ConfigError(f"{NAME}: split {split!r} is empty (val_fraction {val_fraction})")
        self.audio_dir = self.root
        where = f"{NAME} {split}"
        super().__init__(clips, self._starts, segment_seconds, skip_corrupt, where, "clip", split)

    def _starts(self, path: Path) -> list[float]:
        """Start times of the clip's whole segments."""
        if not path.is_file():
            raise DatasetCorruptError(path, "an audio file listed in the setup", "no such file")
        frames, rate, _ = audio_info(path)
        count = int(frames / (self.segment_seconds * rate) + 0.01)
        if count < 1:
            raise DatasetCorruptError(
                path, f"at least {self.segment_seconds} s of audio", f"{frames / rate:.2f} s"
            )
        return [k * self.segment_seconds for k in range(count)]
