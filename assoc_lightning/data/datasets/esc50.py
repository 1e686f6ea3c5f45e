"""ESC-50 (environmental sound classification): 2,000 5-s clips, 50 classes, 5 official folds.

Layout (``<data_dir>/ESC-50-master/`` as GitHub's zip unpacks, ``<data_dir>/ESC-50/``, or that
folder itself): ``meta/esc50.csv`` (``filename, fold, target, category, esc10, src_file,
take``) and ``audio/{FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav`` (5 s, 44.1 kHz, mono).

Splits come from the official folds (clips of one Freesound source are in one fold): ``test``
= fold ``fold``; ``train`` and ``val`` = the four other folds, ``val`` being per class a
seeded ``val_fraction`` of them taken by whole Freesound sources (``src_file``), so no source
is in two splits. The DMC / SoundNet protocol runs the 5 folds and reports the mean accuracy
(the transfer evaluation's ``folds``, docs/evaluation.md).

Labels are the ``target`` column (0..49); with ``esc10`` only the ESC-10 clips are read and
their 10 targets are relabelled 0..9 in ascending ESC-50 target order (dog, rooster, rain,
sea_waves, crackling_fire, crying_baby, sneezing, clock_tick, helicopter, chainsaw in the
official csv). Items: ``audio`` (mono, resampled to ``sample_rate``, ``seconds`` long),
``label``, ``index`` and ``clip_id`` (one per clip: the clip's row in ``clip_names``). Clips
that are missing, whose header does not read or that are more than 1% short are skipped when
the split is opened (counted in ``num_skipped``, one warning); samples that do not read are
skipped at read time (``SkipCorruptDataset``).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np

from assoc_lightning.data.datasets.segments import ClipSegments
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import audio_info
from assoc_lightning.errors import ConfigError

NAME = "ESC-50"
FOLDERS = ("ESC-50-master", "ESC-50")
NUM_CLASSES, NUM_FOLDS, CLIP_SECONDS = 50, 5, 5.0
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")
FILE_NAME = re.compile(r"^(\d+)-(\d+)-([A-Za-z]+)-(\d+)\.wav$")
LAYOUT = f"""\
<data_dir>/{FOLDERS[0]}/meta/esc50.csv   ({", ".join(COLUMNS)})
<data_dir>/{FOLDERS[0]}/audio/{{FOLD}}-{{CLIP_ID}}-{{TAKE}}-{{TARGET}}.wav   (5 s, 44.1 kHz, mono)"""
HOW_TO_GET = (
    "download https://github.com/karolpiczak/ESC-50/archive/master.zip and unzip it into "
    f"<data_dir> (it unpacks as {FOLDERS[0]}/); nothing is downloaded for you"
)


def find_esc50(data_dir: str | Path) -> Path:
    """The dataset folder: ``<data_dir>/ESC-50-master``, ``<data_dir>/ESC-50`` or
    ``data_dir`` itself, whichever holds ``meta/esc50.csv``."""
    data_dir = Path(data_dir)
    for root in [data_dir / f for f in FOLDERS] + [data_dir]:
        if (root / "meta" / "esc50.csv").is_file():
            return root
    raise DatasetNotFoundError(
        NAME, data_dir, LAYOUT, HOW_TO_GET, missing=data_dir / FOLDERS[0] / "meta" / "esc50.csv"
    )


def read_meta(root: Path) -> list[dict]:
    """The rows of ``meta/esc50.csv`` as ``{filename, fold, target, category, esc10,
    src_file}``, checked: known columns, fold 1..5, target 0..49, and the fold and target of
    the file name agreeing with the columns (a mismatch names the line)."""
    path = root / "meta" / "esc50.csv"
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DatasetCorruptError(
                path, f"a header with the columns {COLUMNS}", f"{missing} missing"
            )
        rows = []
        for line, row in enumerate(reader, 2):
            # a short line's missing fields are None, a long line's extra ones listed under None
            row = {k: v.strip() if isinstance(v, str) else "" for k, v in row.items() if k}
            name = row["filename"]
            match = FILE_NAME.match(name)
            try:
                fold, target = int(row["fold"]), int(row["target"])
            except ValueError:
                fold = target = -1
            if (
                match is None or not 1 <= fold <= NUM_FOLDS or not 0 <= target < NUM_CLASSES
                or (int(match[1]), int(match[4])) != (fold, target)
            ):  # fmt: skip
                raise DatasetCorruptError(
                    f"{path}:{line}",
                    "{FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav with fold 1..5 and target 0..49 "
                    "matching the fold and target columns",
                    f"{name!r}, fold {row['fold']!r}, target {row['target']!r}",
                )
            rows.append({
                "filename": name, "fold": fold, "target": target,
                "category": row["category"],
                "esc10": row["esc10"].lower() in ("true", "1"),
                "src_file": row["src_file"],
            })  # fmt: skip
    return rows


def validation_sources(rows: list[dict], fraction: float, seed: int, fold: int) -> set:
    """Per class, whole Freesound sources (``src_file``) of the training folds in a seeded
    order until ``fraction`` of the class's clips are reached (at least one source, never
    all of them, when the class has two or more), as ``(target, src_file)`` pairs."""
    rng = np.random.default_rng([seed, fold])
    chosen = set()
    for target in sorted({r["target"] for r in rows}):
        clips = [r for r in rows if r["target"] == target]
        sources = sorted({r["src_file"] for r in clips})
        want = int(round(fraction * len(clips)))
        if fraction <= 0 or len(sources) < 2:
            continue
        taken, count = [], 0
        for i in rng.permutation(len(sources)):
            if (count >= want and taken) or len(taken) == len(sources) - 1:
                break
            taken.append(sources[i])
            count += sum(r["src_file"] == sources[i] for r in clips)
        chosen |= {(target, s) for s in taken}
    return chosen


def split_rows(rows: list[dict], split: str, fold: int, val_fraction: float, seed: int) -> list:
    """The rows of ``split`` for test fold ``fold``, sorted by file name."""
    if split == "test":
        rows = [r for r in rows if r["fold"] == fold]
    elif split in ("train", "val"):
        rows = [r for r in rows if r["fold"] != fold]
        val = validation_sources(rows, val_fraction, seed, fold)
        rows = [r for r in rows if ((r["target"], r["src_file"]) in val) == (split == "val")]
    else:
        raise ConfigError(f"split must be train/val/test, got {split!r}")
    return sorted(rows, key=lambda r: r["filename"])


class ESC50Clips(ClipSegments):
    """One split of one ESC-50 fold (see the module docstring).

    Args:
        data_dir: the folder holding ``ESC-50-master/`` (or it).
        split: ``train``, ``val`` or ``test``.
        fold: the official fold (1..5) that is ``test``; the other four are train and val.
        esc10: read only the ESC-10 subset, labelled 0..9 by ascending ESC-50 target.
        sample_rate: output rate (the files are 44.1 kHz; 16 kHz is the DMC / VGGish rate).
        seconds: length read from the start of each clip (at most the clips' 5 s).
        val_fraction: share of each class's training clips held out as ``val``, by source.
        seed: seed of the validation sources.
        skip_corrupt: skip unreadable files (counted) instead of raising.
    """

    dataset_name, layout, how_to_get = NAME, LAYOUT, HOW_TO_GET

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        fold: int = 1,
        esc10: bool = False,
        sample_rate: int = 16000,
        seconds: float = CLIP_SECONDS,
        val_fraction: float = 0.1,
        seed: int = 0,
        skip_corrupt: bool = True,
    ) -> None:
        if fold not in range(1, NUM_FOLDS + 1):
            raise ConfigError(f"fold must be one of 1..{NUM_FOLDS}, got {fold!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        if not 0 < seconds <= CLIP_SECONDS:
            raise ConfigError(f"seconds must be in (0, {CLIP_SECONDS}], got {seconds!r}")
        self.root = find_esc50(data_dir)
        self.sample_rate, self.seconds, self.fold = sample_rate, seconds, fold
        rows = read_meta(self.root)
        if esc10:
            rows = [r for r in rows if r["esc10"]]
        names = {r["target"]: r["category"] for r in rows}
        # ESC-10: its classes relabelled by ascending ESC-50 target; ESC-50: the official
        # targets (a class absent from a partial csv is named by its number)
        self.targets = tuple(sorted(names)) if esc10 else tuple(range(NUM_CLASSES))
        self.class_names = tuple(names.get(t, str(t)) for t in self.targets)
        relabel = {t: k for k, t in enumerate(self.targets)}
        chosen = split_rows(rows, split, fold, val_fraction, seed)
        if not chosen:
            raise ConfigError(
                f"{NAME} fold {fold}: split {split!r} is empty (val_fraction {val_fraction})"
            )
        self.audio_dir = self.root / "audio"
        clips = [(r["filename"], relabel[r["target"]]) for r in chosen]
        where = f"{NAME} fold {fold} {split}"
        super().__init__(clips, self._check, seconds, skip_corrupt, where, "clip", split)

    def _check(self, path: Path) -> list[float]:
        """``[0.0]``: one segment, the clip's start (``seconds`` long)."""
        if not path.is_file():
            raise DatasetCorruptError(
                path, "an audio file listed in meta/esc50.csv", "no such file"
            )
        frames, rate, _ = audio_info(path)
        if frames < 0.99 * self.seconds * rate:
            raise DatasetCorruptError(path, f"{self.seconds} s of audio", f"{frames / rate:.2f} s")
        return [0.0]
