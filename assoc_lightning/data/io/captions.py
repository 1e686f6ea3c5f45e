"""Caption texts for C-MCR (the overlapping modality between CLIP and CLAP).

:func:`read_captions` reads and concatenates caption files in their released formats:

- ``.txt``: one caption per line;
- ``.json``: COCO captions (``annotations[*].caption``) or MSR-VTT (``sentences[*].caption``);
- ``.csv``: AudioCaps (``audiocap_id,youtube_id,start_time,caption``) or Clotho
  (``file_name,caption_1..caption_5``; the five captions of a row in order);
- ``.tsv``: Conceptual Captions (``caption<TAB>url``, no header);
- glob patterns (``captions/*.csv``), expanded in sorted order.

Whitespace is normalized (runs of spaces, tabs and newlines become one space, ends stripped)
and empty captions dropped. Exact duplicates are removed, keeping the first occurrence in
reading order: this de-duplication is our choice (the C-MCR paper does not say; COCO and
Clotho repeat some captions verbatim, and a repeated text would only weight its embedding
twice in the memory lookups). ``deduplicate=False`` keeps them.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError

NAME = "captions"
LAYOUT = """\
<file>.txt    one caption per line
<file>.json   COCO captions_{train,val}2017.json (annotations[*].caption) or MSR-VTT
              (sentences[*].caption)
<file>.csv    AudioCaps {train,val,test}.csv (audiocap_id,youtube_id,start_time,caption) or
              Clotho clotho_captions_*.csv (file_name,caption_1..caption_5)
<file>.tsv    Conceptual Captions (caption<TAB>url)"""
HOW_TO_GET = (
    "COCO: https://cocodataset.org/#download ; AudioCaps: https://github.com/cdjkim/audiocaps ; "
    "Clotho: https://zenodo.org/record/4783391 ; CC3M: https://ai.google.com/research/ConceptualCaptions"
)
_GLOB = re.compile(r"[*?\[]")
_CLOTHO_COL = re.compile(r"^caption_(\d+)$")


def normalize(text: str) -> str:
    """Collapse whitespace runs to one space and strip the ends."""
    return " ".join(text.split())


def _json_captions(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetCorruptError(path, "a JSON file", f"{type(err).__name__}: {err}") from err
    for key in ("annotations", "sentences"):  # COCO, MSR-VTT
        if isinstance(data, dict) and isinstance(data.get(key), list):
            try:
                return [str(a["caption"]) for a in data[key]]
            except (KeyError, TypeError) as err:
                raise DatasetCorruptError(
                    path, f"{key}[*] objects with a 'caption' field", f"{type(err).__name__}: {err}"
                ) from err
    found = f"top-level keys {sorted(data)[:8]}" if isinstance(data, dict) else type(data).__name__
    raise DatasetCorruptError(path, "COCO 'annotations' or MSR-VTT 'sentences'", found)


def _csv_captions(path: Path) -> list[str]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if "caption" in header:  # AudioCaps
            cols = [header.index("caption")]
        else:  # Clotho: caption_1 .. caption_5
            numbered = [
                (int(m.group(1)), i) for i, h in enumerate(header) if (m := _CLOTHO_COL.match(h))
            ]
            cols = [i for _, i in sorted(numbered)]
        if not cols:
            raise DatasetCorruptError(
                path, "an AudioCaps 'caption' column or Clotho 'caption_1..5' columns", repr(header)
            )
        out = []
        for row in reader:
            if not row:
                continue
            if len(row) < len(header):
                raise DatasetCorruptError(
                    path, f"{len(header)} fields per row", f"line {reader.line_num}: {row!r}"
                )
            out += [row[i] for i in cols]
    return out


def read_caption_file(path: str | os.PathLike) -> list[str]:
    """The raw captions of one file, by its suffix (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(NAME, path.parent, LAYOUT, HOW_TO_GET, missing=path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _json_captions(path)
    if suffix == ".csv":
        return _csv_captions(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DatasetCorruptError(path, "a UTF-8 text file", str(err)) from err
    if suffix == ".txt":
        return lines
    if suffix == ".tsv":
        return [line.split("\t", 1)[0] for line in lines]
    raise DatasetCorruptError(path, "a .txt, .json, .csv or .tsv caption file", f"{suffix!r}")


def expand(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Paths in order, with glob patterns expanded (sorted); a pattern matching nothing raises."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for p in paths:
        if _GLOB.search(str(p)):
            matches = sorted(glob.glob(str(p), recursive=True))
            if not matches:
                raise DatasetNotFoundError(
                    NAME, Path(p).parent, LAYOUT, HOW_TO_GET, missing=f"any file matching {p}"
                )
            out += [Path(m) for m in matches]
        else:
            out.append(Path(p))
    return out


def unique(texts: Iterable[str]) -> list[str]:
    """Texts without exact repeats, in first-occurrence order."""
    return list(dict.fromkeys(texts))


def read_captions(
    paths: str | os.PathLike | Sequence[str | os.PathLike], deduplicate: bool = True
) -> list[str]:
    """Captions of every file in ``paths`` (files or glob patterns), whitespace-normalized,
    empty ones dropped, exact duplicates removed (first occurrence kept) unless told not to."""
    texts = [t for path in expand(paths) for t in map(normalize, read_caption_file(path)) if t]
    return unique(texts) if deduplicate else texts
