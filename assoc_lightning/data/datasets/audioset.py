"""AudioSet clips from the PANNs on-disk layouts (wav folders or hdf5 waveform packs).

The audio is not distributed: users scrape YouTube, so every local copy is partial. Clips
listed in a segment CSV but absent on disk are skipped when the index is built, counted in
``num_missing`` and reported in one warning; a clip that is present but unreadable is skipped
at read time and counted in ``num_corrupt`` (see ``SkipCorruptDataset``).

Layout (PANNs, ``qiuqiangkong/audioset_tagging_cnn``), under ``<root>`` or ``<root>/audioset``::

    metadata/{balanced_train_segments,eval_segments,unbalanced_train_segments}.csv
    metadata/class_labels_indices.csv
    audios/balanced_train_segments/Y<YTID>.wav
    audios/eval_segments/Y<YTID>.wav
    audios/unbalanced_train_segments/unbalanced_train_segments_partNN/Y<YTID>.wav
    hdf5s/waveforms/{balanced_train,eval}.h5
    hdf5s/waveforms/unbalanced_train/unbalanced_train_partNN.h5

The metadata CSVs may also sit directly in the AudioSet folder. The wav folders need the
segment CSV (it holds the labels); an hdf5 pack carries its own ``audio_name`` (``Y<YTID>.wav``,
empty for clips PANNs could not find), ``waveform`` (int16 N x 320000), ``target`` (bool
N x 527) and attribute ``sample_rate``, so only the class index is read next to it (and only
for the class names).
"""

from __future__ import annotations

import csv
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from assoc_lightning.data.datasets.base import SkipCorruptDataset
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import fit_length, read_audio, resample
from assoc_lightning.errors import ConfigError

NAME = "AudioSet"
LAYOUT = """\
<root>/metadata/{balanced_train_segments,eval_segments,unbalanced_train_segments}.csv
<root>/metadata/class_labels_indices.csv            (index,mid,display_name; 527 classes)
and the audio in one of the PANNs forms:
<root>/audios/{balanced_train_segments,eval_segments}/Y<YTID>.wav
<root>/audios/unbalanced_train_segments/unbalanced_train_segments_partNN/Y<YTID>.wav
<root>/hdf5s/waveforms/{balanced_train,eval}.h5     (audio_name, waveform int16, target)
<root>/hdf5s/waveforms/unbalanced_train/unbalanced_train_partNN.h5
(<root> may also be <data_dir>/audioset; the CSVs may sit in <root> itself)"""
HOW_TO_GET = (
    "metadata: http://research.google.com/audioset/download.html ; the audio must be scraped "
    "from YouTube, e.g. with the scripts of https://github.com/qiuqiangkong/audioset_tagging_cnn"
)
HDF5_HINT = "pip install 'assoc_lightning[hdf5]'"
#: The official splits, and ``train`` = balanced + unbalanced (C-MCR's audio memory).
SPLIT_PARTS = {
    "balanced_train": ("balanced_train",),
    "unbalanced_train": ("unbalanced_train",),
    "eval": ("eval",),
    "train": ("balanced_train", "unbalanced_train"),
}
STORAGES = ("auto", "wav", "hdf5")
CSV_FIELDS = "YTID, start_seconds, end_seconds, positive_labels"
INT16_SCALE = 32767.0  # PANNs packs float32 * 32767 into int16


class Segment(NamedTuple):
    """One row of a segment CSV."""

    ytid: str
    start: float
    end: float
    mids: tuple[str, ...]


class _Source(NamedTuple):
    """Where a group of clips lives: a wav folder or one hdf5 pack (with its rate)."""

    kind: str  # "wav" or "hdf5"
    path: Path
    sample_rate: int


def _parse_segment(line: str) -> Segment:
    """``YTID, start, end, "mid1,mid2"`` -> Segment; ValueError when malformed."""
    parts = line.split(", ", 3)
    if len(parts) != 4:
        raise ValueError("fewer than 4 ', '-separated fields")
    ytid, start, end, labels = (p.strip() for p in parts)
    labels = labels.strip()
    if labels.startswith('"') != labels.endswith('"') or labels == '"':
        raise ValueError("unbalanced quotes around the labels")
    labels = labels.strip('"')
    mids = tuple(m.strip() for m in labels.split(","))
    if not ytid or not all(mids):
        raise ValueError("an empty YTID or MID")
    return Segment(ytid, float(start), float(end), mids)


def read_segments_csv(path: str | os.PathLike) -> list[Segment]:
    """Rows of an official segment CSV (``#`` header lines skipped, fields ``", "``-separated,
    labels a quoted comma-joined MID list); a malformed line raises naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(NAME, path.parent, LAYOUT, HOW_TO_GET, missing=path)
    segments = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                segments.append(_parse_segment(line))
            except ValueError as err:
                raise DatasetCorruptError(
                    path,
                    f'lines "{CSV_FIELDS}" with quoted MIDs',
                    f"line {n}: {line[:120]!r} ({err})",
                ) from None
    return segments


def read_class_index(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """``class_labels_indices.csv`` -> ``(mids, display_names)`` in index order (checked)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(NAME, path.parent, LAYOUT, HOW_TO_GET, missing=path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    if not rows or [h.strip() for h in rows[0]] != ["index", "mid", "display_name"]:
        found = repr(rows[0]) if rows else "an empty file"
        raise DatasetCorruptError(path, "the header 'index,mid,display_name'", found)
    mids, names = [], []
    for n, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 3 or row[0].strip() != str(len(mids)):
            raise DatasetCorruptError(
                path, f"3 fields with index {len(mids)} (indices in order)", f"line {n}: {row!r}"
            )
        mids.append(row[1].strip())
        names.append(row[2].strip())
    return mids, names


def find_audioset(root: str | os.PathLike) -> Path:
    """The AudioSet folder: ``<root>/audioset`` or ``<root>``, whichever holds the layout."""
    root = Path(root)
    for base in (root / "audioset", root):
        if any((base / d).is_dir() for d in ("metadata", "audios", "hdf5s")):
            return base
    raise DatasetNotFoundError(NAME, root, LAYOUT, HOW_TO_GET, missing=root / "metadata")


def metadata_file(base: Path, name: str) -> Path:
    """``<base>/metadata/<name>``, else ``<base>/<name>`` (the former when neither exists)."""
    for path in (base / "metadata" / name, base / name):
        if path.is_file():
            return path
    return base / "metadata" / name


def wav_dirs(base: Path, part: str) -> list[Path]:
    """The wav folders of one official split (the ``partNN`` folders for unbalanced)."""
    top = base / "audios" / f"{part}_segments"
    if part != "unbalanced_train":
        return [top] if top.is_dir() else []
    return sorted(d for d in top.glob("unbalanced_train_segments_part*") if d.is_dir())


def hdf5_packs(base: Path, part: str) -> list[Path]:
    """The hdf5 waveform packs of one official split."""
    wf = base / "hdf5s" / "waveforms"
    if part == "unbalanced_train":
        return sorted(p for p in (wf / "unbalanced_train").glob("unbalanced_train_part*.h5"))
    return [wf / f"{part}.h5"] if (wf / f"{part}.h5").is_file() else []


def import_h5py():
    """h5py, imported on first use (an optional dependency)."""
    try:
        import h5py
    except ImportError as err:
        raise ImportError(f"AudioSet hdf5 packs need h5py: {HDF5_HINT}") from err
    return h5py


class AudioSetClips(SkipCorruptDataset):
    """One AudioSet split as float32 waveforms with multi-hot targets.

    Items: ``{"audio": [clip_seconds * sample_rate] float32, "label": first positive class
    (-1 if none), "labels": multi-hot float32 [num_classes], "index": i}``. Clips are mono,
    resampled with torchaudio when the file's rate differs, zero-padded at the end when short
    and cropped when long. When a corrupt clip is replaced by the next readable one, ``label``
    and ``labels`` are the replacement's (``index`` stays ``i``).

    Args:
        root: the AudioSet folder (or the data dir holding ``audioset/``), see ``LAYOUT``.
        split: ``balanced_train``, ``unbalanced_train``, ``eval``, or ``train`` (balanced +
            unbalanced).
        sample_rate: output rate (PANNs' files are 32 kHz; CLAP wants 48 kHz).
        clip_seconds: output length.
        storage: ``wav`` folders, ``hdf5`` packs, or ``auto`` (per official split: the hdf5
            packs when present, which read faster, else the wav folders).
        skip_corrupt: skip unreadable clips (counted, warned) instead of raising.

    Attributes: ``ytids``, ``class_mids``, ``class_names``, ``num_classes``, ``num_missing``
    (listed but absent), ``storage`` (per official split), ``labels`` (first positive).
    """

    modality = "audio"

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "balanced_train",
        sample_rate: int = 32000,
        clip_seconds: float = 10.0,
        storage: str = "auto",
        skip_corrupt: bool = True,
    ) -> None:
        if split not in SPLIT_PARTS:
            raise ConfigError(f"split must be one of {list(SPLIT_PARTS)}, got {split!r}")
        if storage not in STORAGES:
            raise ConfigError(f"storage must be one of {STORAGES}, got {storage!r}")
        self.root = find_audioset(root)
        self.split, self.sample_rate = split, sample_rate
        self.clip_samples = int(round(sample_rate * clip_seconds))
        self.class_mids: tuple[str, ...] = ()
        self.class_names: tuple[str, ...] = ()
        index_csv = metadata_file(self.root, "class_labels_indices.csv")
        if index_csv.is_file():
            mids, names = read_class_index(index_csv)
            self.class_mids, self.class_names = tuple(mids), tuple(names)
        self.num_classes = len(self.class_mids)
        self.sources: list[_Source] = []
        self.storage: dict[str, str] = {}
        self.num_missing = 0
        ytids, src, rows, positives = [], [], [], []
        for part in SPLIT_PARTS[split]:
            kind = self._choose_storage(part, storage)
            self.storage[part] = kind
            add = self._index_hdf5 if kind == "hdf5" else self._index_wav
            add(part, ytids, src, rows, positives)
        if not ytids:
            raise DatasetNotFoundError(
                NAME,
                self.root,
                LAYOUT,
                HOW_TO_GET,
                missing=f"any clip of split {split!r} ({self.num_missing} listed, none on disk)",
            )
        self.ytids = np.array(ytids, dtype=np.bytes_)
        self._src = np.array(src, dtype=np.int32)
        self._row = np.array(rows, dtype=np.int64)
        self._pos_offsets = np.cumsum([0] + [len(p) for p in positives], dtype=np.int64)
        self._pos = np.concatenate([np.asarray(p, np.int16) for p in positives])
        first = [int(p[0]) if len(p) else -1 for p in positives]
        super().__init__(first, skip_corrupt)
        self._handles: dict[int, object] = {}
        self._handles_pid = os.getpid()
        if self.num_missing:
            warnings.warn(
                f"AudioSet {split}: {self.num_missing} of {self.num_missing + len(self)} listed "
                f"clips are not on disk under {self.root} and are skipped (copies scraped from "
                "YouTube are always partial)",
                stacklevel=2,
            )

    # ----------------------------------------------------------------- index building
    def _choose_storage(self, part: str, storage: str) -> str:
        """``wav`` or ``hdf5`` for one official split; ``auto`` prefers existing hdf5 packs."""
        if storage != "auto":
            return storage
        if hdf5_packs(self.root, part):
            return "hdf5"
        return "wav"

    def _class_of(self) -> dict[str, int]:
        if not self.class_mids:
            path = metadata_file(self.root, "class_labels_indices.csv")
            raise DatasetNotFoundError(NAME, self.root, LAYOUT, HOW_TO_GET, missing=path)
        return {m: i for i, m in enumerate(self.class_mids)}

    def _index_wav(self, part, ytids, src, rows, positives) -> None:
        """Rows of the segment CSV whose ``Y<YTID>.wav`` exists in the split's folders."""
        class_of = self._class_of()
        csv_path = metadata_file(self.root, f"{part}_segments.csv")
        segments = read_segments_csv(csv_path)
        found: dict[str, int] = {}
        for folder in wav_dirs(self.root, part):
            self.sources.append(_Source("wav", folder, 0))
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("Y") and entry.name.endswith(".wav"):
                        found.setdefault(entry.name[1:-4], len(self.sources) - 1)
        for seg in segments:
            if seg.ytid not in found:
                self.num_missing += 1
                continue
            unknown = [m for m in seg.mids if m not in class_of]
            if unknown:
                raise DatasetCorruptError(
                    csv_path,
                    "MIDs listed in class_labels_indices.csv",
                    f"{unknown} for {seg.ytid}",
                    "use the class index that belongs to these segment lists",
                )
            ytids.append(seg.ytid)
            src.append(found[seg.ytid])
            rows.append(-1)
            positives.append(sorted(class_of[m] for m in seg.mids))

    def _index_hdf5(self, part, ytids, src, rows, positives) -> None:
        """Named rows of every pack of one split (PANNs leaves absent clips' names empty)."""
        packs = hdf5_packs(self.root, part)
        if not packs:
            raise DatasetNotFoundError(
                NAME, self.root, LAYOUT, HOW_TO_GET, missing=self.root / "hdf5s" / "waveforms"
            )
        h5py = import_h5py()
        for pack in packs:
            try:
                with h5py.File(pack, "r") as f:
                    names = f["audio_name"][()]
                    rate = int(f.attrs["sample_rate"])
                    n, width = f["target"].shape
                    if len(names) != n or f["waveform"].shape[0] != n:
                        raise ValueError(f"{len(names)} names, {n} targets")
                    pos = self._pack_positives(f["target"], n)
            except (OSError, KeyError, ValueError) as err:
                raise DatasetCorruptError(
                    pack,
                    "a PANNs pack: audio_name (S20), waveform (int16 N x T), target (bool N x C), "
                    "attr sample_rate",
                    f"{type(err).__name__}: {err}",
                    "pack it again with audioset_tagging_cnn's pack_waveforms_to_hdf5",
                ) from err
            if self.num_classes and width != self.num_classes:
                raise DatasetCorruptError(
                    pack,
                    f"targets over the {self.num_classes} classes of the class index",
                    f"{width} target columns",
                )
            self.num_classes = width
            self.sources.append(_Source("hdf5", pack, rate))
            for r, name in enumerate(names):
                name = name.decode() if isinstance(name, bytes) else str(name)
                if not name:
                    self.num_missing += 1
                    continue
                ytids.append(name[1:-4] if name.startswith("Y") and name.endswith(".wav") else name)
                src.append(len(self.sources) - 1)
                rows.append(r)
                positives.append(pos[r])

    @staticmethod
    def _pack_positives(target, n: int, chunk: int = 65536) -> list[np.ndarray]:
        """Positive class ids per row, read in chunks (2M x 527 bools would not fit lightly)."""
        out = []
        for start in range(0, n, chunk):
            block = np.asarray(target[start : start + chunk], dtype=bool)
            rows, cols = np.nonzero(block)
            out += np.split(cols.astype(np.int16), np.searchsorted(rows, np.arange(1, len(block))))
        return out

    # ----------------------------------------------------------------- reading
    def positives(self, index: int) -> np.ndarray:
        """Class ids present in clip ``index``."""
        return self._pos[self._pos_offsets[index] : self._pos_offsets[index + 1]]

    def path_of(self, index: int) -> Path:
        """The wav file or hdf5 pack holding clip ``index``."""
        source = self.sources[self._src[index]]
        if source.kind == "wav":
            return source.path / f"Y{self.ytids[index].decode()}.wav"
        return source.path

    def _pack(self, source_id: int):
        """An open handle on a pack, one per process (opened lazily, so workers own theirs)."""
        if self._handles_pid != os.getpid():
            self._handles, self._handles_pid = {}, os.getpid()
        if source_id not in self._handles:
            self._handles[source_id] = import_h5py().File(self.sources[source_id].path, "r")
        return self._handles[source_id]

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def read(self, index: int) -> torch.Tensor:
        source = self.sources[self._src[index]]
        if source.kind == "wav":
            wave = read_audio(self.path_of(index), self.sample_rate, self.clip_samples)
        else:
            row = int(self._row[index])
            try:
                pcm = self._pack(int(self._src[index]))["waveform"][row]
            except Exception as err:  # h5py raises OSError / KeyError / ValueError
                raise DatasetCorruptError(
                    source.path, f"a readable waveform row {row}", f"{type(err).__name__}: {err}"
                ) from err
            wave = torch.from_numpy(np.asarray(pcm, dtype=np.float32) / INT16_SCALE)
            wave = fit_length(
                resample(wave, source.sample_rate, self.sample_rate), self.clip_samples
            )
        return wave

    def multi_hot(self, index: int) -> torch.Tensor:
        """``[num_classes]`` float32 with ones at the clip's classes."""
        out = torch.zeros(self.num_classes)
        out[torch.from_numpy(self.positives(index).astype(np.int64))] = 1.0
        return out

    def __getitem__(self, index: int) -> dict:
        row, audio = self.readable(index)  # the next clip's row if ``index`` is corrupt
        return {
            "audio": audio,
            "label": int(self.labels[row]),
            "labels": self.multi_hot(row),
            "index": index,
        }
