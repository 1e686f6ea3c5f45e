"""TIDIGITS (LDC93S10) isolated digits (paired with MNIST by ``PairedDataModule``).

Layout (LDC): ``<root>/[LDC93S10/][tidigits/]data/{adults,children}/{train,test}/<group>/<SS>/<UTT>.wav``
(an older flattened ``<root>/tidigits/{train,test}/...`` form is searched too). Isolated digits
are the two-character utterances ``[1-9zo][ab]``; ``z`` and ``o`` ("zero" and "oh") are both
mapped to class 0, as the IG paper does. The files are NIST SPHERE despite the ``.wav`` name:
PCM SPHERE and RIFF are read with soundfile; shorten-compressed SPHERE (as on the LDC discs)
needs the shorten decoder of the real-datasets issue and is reported clearly until then.
Validation is 15% of the training speakers (seeded, speaker-disjoint); test is the official
test folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from assoc_lightning.data.base import LabeledDataset
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError

LAYOUT = """\
<root>/LDC93S10/data/adults/{train,test}/{man,woman}/<SS>/<digit><a|b>.wav
<root>/LDC93S10/data/children/{train,test}/{boy,girl}/<SS>/<digit><a|b>.wav
  (<digit> in 1-9, z, o; NIST SPHERE or RIFF, 20 kHz 16-bit)"""
HOW_TO_GET = (
    "TIDIGITS is licensed by the LDC (catalog LDC93S10): https://catalog.ldc.upenn.edu/LDC93S10"
)
_ISOLATED = re.compile(r"^([1-9zo])[ab]\.wav$", re.IGNORECASE)


def label_of(token: str) -> int:
    return 0 if token.lower() in "zo" else int(token)


def find_split_dirs(root: Path, split: str) -> list[Path]:
    """Every ``.../{adults,children}/<split>`` (or flattened ``.../<split>``) folder under root."""
    found = []
    for base in (root, root / "LDC93S10", root / "tidigits", root / "LDC93S10" / "tidigits"):
        for sub in (base / "data" / "adults", base / "data" / "children", base):
            if (sub / split).is_dir() and any((sub / split).rglob("*.wav")):
                found.append(sub / split)
    return sorted(set(found))


class TIDIGITSIsolated(LabeledDataset):
    """Isolated-digit utterances of one split, resampled-free (20 kHz) and padded to ``clip_seconds``."""

    modality = "audio"

    def __init__(
        self,
        root: str | Path,
        split: str,
        clip_seconds: float = 1.5,
        val_fraction: float = 0.15,
        seed: int = 0,
    ) -> None:
        self.root = Path(root)
        dirs = find_split_dirs(self.root, "test" if split == "test" else "train")
        if not dirs:
            raise DatasetNotFoundError("TIDIGITS", self.root, LAYOUT, HOW_TO_GET)
        files = sorted(p for d in dirs for p in d.rglob("*") if _ISOLATED.match(p.name))
        if split != "test":
            speakers = sorted({p.parent.name + "/" + p.parent.parent.name for p in files})
            rng = np.random.default_rng(seed)
            val = set(
                rng.choice(
                    speakers, int(round(val_fraction * len(speakers))), replace=False
                ).tolist()
            )
            keep = (lambda s: s in val) if split == "val" else (lambda s: s not in val)
            files = [p for p in files if keep(p.parent.name + "/" + p.parent.parent.name)]
        self.files = files
        super().__init__([label_of(_ISOLATED.match(p.name).group(1)) for p in files])
        self.sample_rate = 20000
        self.clip_samples = int(round(clip_seconds * self.sample_rate))

    def load(self, index: int) -> torch.Tensor:
        path = self.files[index]
        head = path.read_bytes()[:1024]
        if head.startswith(b"NIST_1A") and b"shorten" in head:
            raise DatasetCorruptError(
                path, "PCM SPHERE or RIFF audio", "shorten-compressed SPHERE",
                "decompress the corpus first (e.g. `sph2pipe -f wav`); the built-in shorten "
                "decoder arrives with the real-datasets issue",
            )  # fmt: skip
        try:
            wave, sr = sf.read(path, dtype="float32", always_2d=True)
        except Exception as err:
            raise DatasetCorruptError(
                path, "a SPHERE or WAV file", f"{type(err).__name__}: {err}"
            ) from err
        out = np.zeros(self.clip_samples, np.float32)
        n = min(self.clip_samples, len(wave))
        out[:n] = wave[:n, 0]
        return torch.from_numpy(out)
