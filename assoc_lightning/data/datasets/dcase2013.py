"""DCASE 2013 scene classification, development set ("DCASE 2014" in SoundNet / DMC): 5-s
subclips of 30-s scenes, on a committed seeded 5-fold split.

Layout (``<data_dir>/scenes_stereo/`` as ``scenes_stereo.zip`` unpacks, or under
``<data_dir>/DCASE2013-acoustic-scenes-development/``, dcase_util's folder):
``scenes_stereo/<label><NN>.wav``, the label being the file stem minus its last 2 characters;
10 classes x 10 recordings, 30 s, 44.1 kHz, stereo. The set ships no folds, so ours are
committed with the package (``dcase2013_folds.json``, made once by :func:`write_fold_spec`:
per class a seeded order of its 10 recordings, dealt round-robin, so each fold holds 2
recordings of every class). It lists ``<label>01.wav .. <label>10.wav``; a copy named
otherwise gets its own spec with ``write_fold_spec(path, names)`` and ``folds_file``.

Splits: ``test`` = fold ``fold``; ``train`` and ``val`` = the four other folds, ``val`` being
per class a seeded ``val_fraction`` of their recordings (at least one), so no recording is in
two splits. Every recording is downmixed (or one ``channel`` kept), resampled to
``sample_rate`` and cut into ``num_subclips`` (60, the paper's count) ``subclip_seconds`` (5)
subclips spread evenly from its start to its end (a hop of 25/59 s = 0.424 s for 30 s), or,
with ``hop_seconds``, one every ``hop_seconds`` as long as they fit (51 at 0.5 s). Items:
``audio``, ``label`` (position in :data:`SCENES`), ``index`` and ``clip_id`` (the recording's
row in ``clip_names``, also the array ``clip_ids``), so the transfer evaluation averages
subclip scores per recording. Recordings that are missing, whose header does not read or that
are shorter than one subclip are skipped when the split is opened (``num_skipped``, one
warning); subclips whose samples do not read are skipped at read time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assoc_lightning.data.datasets.segments import ClipSegments
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import audio_info
from assoc_lightning.errors import ConfigError

NAME = "DCASE 2013 scene classification (development set)"
FOLDERS = ("DCASE2013-acoustic-scenes-development", ".")
AUDIO = "scenes_stereo"
SCENES = (
    "bus", "busystreet", "office", "openairmarket", "park", "quietstreet", "restaurant",
    "supermarket", "tube", "tubestation",
)  # fmt: skip
NUM_FOLDS = 5
SPEC = Path(__file__).with_name("dcase2013_folds.json")
# the names the committed spec lists: 10 recordings per class, numbered 01..10
DEFAULT_NAMES = tuple(f"{s}{n:02d}.wav" for s in SCENES for n in range(1, 11))
LAYOUT = f"""\
<data_dir>/{AUDIO}/<label><NN>.wav   (30 s, 44.1 kHz, stereo; label one of {", ".join(SCENES)})
(or <data_dir>/{FOLDERS[0]}/{AUDIO}/)"""
HOW_TO_GET = (
    "download scenes_stereo.zip of the IEEE AASP DCASE 2013 challenge (Task 1, public "
    "development set, http://c4dm.eecs.qmul.ac.uk/sceneseventschallenge/) and unzip it into "
    "<data_dir>; nothing is downloaded for you"
)


def label_of(name: str) -> str:
    """The scene of ``<label><NN>.wav``: the stem minus its last 2 characters."""
    return Path(name).stem[:-2]


def make_fold_spec(
    names: Sequence[str] = DEFAULT_NAMES, num_folds: int = NUM_FOLDS, seed: int = 0
) -> dict[str, list[str]]:
    """A seeded stratified fold assignment: per class (in :data:`SCENES` order) its sorted
    recordings in a seeded order, dealt round-robin to folds ``1..num_folds``."""
    rng = np.random.default_rng(seed)
    folds: dict[str, list[str]] = {str(f): [] for f in range(1, num_folds + 1)}
    for scene in SCENES:
        mine = sorted(n for n in names if label_of(n) == scene)
        for k, i in enumerate(rng.permutation(len(mine))):
            folds[str(k % num_folds + 1)].append(mine[i])
    return {f: sorted(v) for f, v in folds.items()}


def write_fold_spec(
    path: str | Path = SPEC, names: Sequence[str] = DEFAULT_NAMES, seed: int = 0
) -> Path:
    """Write :func:`make_fold_spec` as json: how the committed ``dcase2013_folds.json`` was
    made (``write_fold_spec()``), and how to make one for a copy named otherwise
    (``write_fold_spec(path, sorted(p.name for p in Path(".../scenes_stereo").glob("*.wav")))``).
    """
    spec = {
        "dataset": NAME, "made_by": f"{__name__}.make_fold_spec", "seed": seed,
        "folds": make_fold_spec(names, NUM_FOLDS, seed),
    }  # fmt: skip
    Path(path).write_text(json.dumps(spec, indent=1) + "\n")
    return Path(path)


def read_fold_spec(path: str | Path = SPEC) -> dict[str, int]:
    """``file name -> fold`` from a spec file, checked: folds 1..5, each name once, a known
    scene in every name."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{NAME}: no fold spec at {path} (write one with write_fold_spec)")
    try:
        folds = json.loads(path.read_text())["folds"]
        assignment = [(name, int(f)) for f, names in folds.items() for name in names]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise DatasetCorruptError(path, '{"folds": {"1": [file names], ...}}', repr(err)) from err
    out = dict(assignment)
    bad = [n for n, f in assignment if label_of(n) not in SCENES or not 1 <= f <= NUM_FOLDS]
    if bad or len(out) != len(assignment):
        found = f"{bad[0]!r} (scene or fold unknown)" if bad else "a file in two folds"
        raise DatasetCorruptError(path, f"<scene><NN>.wav names in folds 1..{NUM_FOLDS}", found)
    return out


def find_dcase2013(data_dir: str | Path) -> Path:
    """The folder holding ``scenes_stereo/``: ``<data_dir>`` or
    ``<data_dir>/DCASE2013-acoustic-scenes-development``."""
    data_dir = Path(data_dir)
    for root in (data_dir / FOLDERS[0], data_dir):
        if (root / AUDIO).is_dir():
            return root
    raise DatasetNotFoundError(NAME, data_dir, LAYOUT, HOW_TO_GET, missing=data_dir / AUDIO)


def validation_recordings(names: list[str], fraction: float, seed: int, fold: int) -> set:
    """Per scene, a seeded ``fraction`` of its training recordings (at least one, never all,
    when it has two or more)."""
    rng = np.random.default_rng([seed, fold])
    chosen = set()
    for scene in SCENES:
        mine = sorted(n for n in names if label_of(n) == scene)
        n = int(round(fraction * len(mine)))
        if fraction > 0 and len(mine) > 1:
            n = min(max(n, 1), len(mine) - 1)
        chosen |= {mine[i] for i in rng.permutation(len(mine))[:n]}
    return chosen


def subclip_offsets(seconds: float, length: float, count: int, hop: float | None) -> list[float]:
    """Start times of the subclips of a ``seconds``-long recording: ``count`` spread evenly
    from 0 to ``seconds - length``, or one every ``hop`` while they fit."""
    span = seconds - length
    if span < -0.01 * length:
        return []
    if hop is None:
        return np.linspace(0.0, max(span, 0.0), count).tolist() if span > 0 else [0.0]
    return [k * hop for k in range(int(max(span, 0.0) / hop + 1e-6) + 1)]


class DCASE2013Subclips(ClipSegments):
    """One split of one fold of the DCASE 2013 scenes as 5-s subclips (module docstring).

    Args:
        data_dir: the folder holding ``scenes_stereo/`` (or dcase_util's folder of it).
        split: ``train``, ``val`` or ``test``.
        fold: the fold (1..5) that is ``test``; the other four are train and val.
        sample_rate: output rate (the files are 44.1 kHz; 16 kHz is the DMC / VGGish rate).
        subclip_seconds: subclip length.
        num_subclips: subclips per recording, spread evenly over it (with ``hop_seconds``
            ``None``).
        hop_seconds: a fixed hop instead (as many subclips as fit: 51 at 0.5 s).
        channel: ``None`` averages the two channels; 0 or 1 keeps one.
        val_fraction: share of each scene's training recordings held out as ``val``.
        seed: seed of the validation recordings.
        folds_file: a fold spec of :func:`write_fold_spec` (``None``: the committed one).
        skip_corrupt: skip unreadable files (counted) instead of raising.
    """

    class_names = SCENES
    dataset_name, layout, how_to_get = NAME, LAYOUT, HOW_TO_GET

    def __init__(
        self,
        data_dir: str | Path,
        split: str,
        fold: int = 1,
        sample_rate: int = 16000,
        subclip_seconds: float = 5.0,
        num_subclips: int = 60,
        hop_seconds: float | None = None,
        channel: int | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        folds_file: str | None = None,
        skip_corrupt: bool = True,
    ) -> None:
        if fold not in range(1, NUM_FOLDS + 1):
            raise ConfigError(f"fold must be one of 1..{NUM_FOLDS}, got {fold!r}")
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        if (
            subclip_seconds <= 0
            or num_subclips < 1
            or (hop_seconds is not None and hop_seconds <= 0)
        ):
            raise ConfigError(
                "subclip_seconds and hop_seconds must be positive and num_subclips >= 1, got "
                f"{subclip_seconds!r}, {hop_seconds!r}, {num_subclips!r}"
            )
        self.root = find_dcase2013(data_dir)
        self.fold, self.sample_rate, self.channel = fold, sample_rate, channel
        self.subclip_seconds, self.num_subclips, self.hop_seconds = (
            subclip_seconds, num_subclips, hop_seconds,
        )  # fmt: skip
        names = self._recordings(split, folds_file or SPEC, val_fraction, seed)
        if not names:
            raise ConfigError(f"{NAME} fold {fold}: split {split!r} is empty")
        self.audio_dir = self.root / AUDIO
        clips = [(name, SCENES.index(label_of(name))) for name in names]
        where = f"{NAME} fold {fold} {split}"
        super().__init__(
            clips, self._offsets, subclip_seconds, skip_corrupt, where, "recording", split
        )

    def _recordings(self, split: str, spec: str | Path, val_fraction: float, seed: int) -> list:
        """The sorted file names of ``split``; every wav of the folder must be in the spec."""
        folds = read_fold_spec(spec)
        unknown = sorted(p.name for p in (self.root / AUDIO).glob("*.wav") if p.name not in folds)
        if unknown:
            raise DatasetCorruptError(
                spec, f"every recording of {self.root / AUDIO} in the fold spec",
                f"{len(unknown)} not listed, e.g. {unknown[:3]}",
                "make a spec for this copy with dcase2013.write_fold_spec(path, names) and "
                "pass it as folds_file",
            )  # fmt: skip
        if split == "test":
            return sorted(n for n, f in folds.items() if f == self.fold)
        if split not in ("train", "val"):
            raise ConfigError(f"split must be train/val/test, got {split!r}")
        train = sorted(n for n, f in folds.items() if f != self.fold)
        val = validation_recordings(train, val_fraction, seed, self.fold)
        return [n for n in train if (n in val) == (split == "val")]

    def _offsets(self, path: Path) -> list[float]:
        if not path.is_file():
            raise DatasetCorruptError(path, "a recording listed in the fold spec", "no such file")
        frames, rate, _ = audio_info(path)
        starts = subclip_offsets(frames / rate, self.subclip_seconds, self.num_subclips,
                                 self.hop_seconds)  # fmt: skip
        if not starts:
            raise DatasetCorruptError(
                path, f"at least {self.subclip_seconds} s of audio", f"{frames / rate:.2f} s"
            )
        return starts
