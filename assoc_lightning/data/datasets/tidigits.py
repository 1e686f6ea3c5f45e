"""TIDIGITS (LDC93S10) isolated digits (paired with MNIST by ``PairedDataModule``).

Layout (LDC): ``<root>/[LDC93S10/][tidigits/]data/{adults,children}/{train,test}/<group>/<SS>/<UTT>.wav``
(an older flattened ``<root>/tidigits/{train,test}/...`` form is searched too). Isolated digits
are the two-character utterances ``[1-9zo][ab]``; ``z`` and ``o`` ("zero" and "oh") are both
mapped to class 0, as the IG paper does. The files are NIST SPHERE despite the ``.wav`` name,
shorten-compressed on the LDC discs: ``data/io/sphere.py`` decodes PCM and shorten SPHERE (our
own decoder) and RIFF.
Validation is 15% of the training speakers (seeded, speaker-disjoint); test is the official
test folder.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from assoc_lightning.data.datasets.base import SkipCorruptDataset
from assoc_lightning.data.errors import DatasetNotFoundError
from assoc_lightning.data.io.audio import fit_length, resample
from assoc_lightning.data.io.sphere import read_sphere
from assoc_lightning.errors import ConfigError
from assoc_lightning.utils.files import atomic_save

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


class TIDIGITSIsolated(SkipCorruptDataset):
    """Isolated-digit utterances of one split, as float waveforms padded to ``clip_seconds``.

    Files are decoded with :func:`assoc_lightning.data.io.sphere.read_sphere` (PCM or shorten
    SPHERE, or RIFF), resampled to ``sample_rate`` if needed, and cached as int16 ``.npy``
    under ``cache_dir`` on first read (decoding shorten in Python is slower than reading
    numpy). Corrupt files are skipped, counted and warned about.

    Args:
        root: the TIDIGITS folder (see ``LAYOUT``).
        split: ``train`` / ``val`` / ``test``; validation is ``val_fraction`` of the training
            speakers (seeded, speaker-disjoint), test the official test folder.
        sample_rate: output rate (TIDIGITS is 20 kHz).
        clip_seconds: zero-pad or crop to this length.
        cache_dir: where decoded clips are kept (``None``: no cache).
    """

    modality = "audio"

    def __init__(
        self,
        root: str | Path,
        split: str,
        sample_rate: int = 20000,
        clip_seconds: float = 1.5,
        val_fraction: float = 0.15,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        skip_corrupt: bool = True,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ConfigError(f"split must be train/val/test, got {split!r}")
        self.root = Path(root)
        dirs = find_split_dirs(self.root, "test" if split == "test" else "train")
        if not dirs:
            raise DatasetNotFoundError("TIDIGITS", self.root, LAYOUT, HOW_TO_GET)
        files = sorted(p for d in dirs for p in d.rglob("*") if _ISOLATED.match(p.name))
        if split != "test":
            speakers = sorted({speaker_of(p) for p in files})
            rng = np.random.default_rng(seed)
            n_val = int(round(val_fraction * len(speakers)))
            val = set(rng.choice(speakers, n_val, replace=False).tolist()) if n_val else set()
            files = [p for p in files if (speaker_of(p) in val) == (split == "val")]
        self.files = files
        super().__init__([label_of(_ISOLATED.match(p.name).group(1)) for p in files], skip_corrupt)
        self.sample_rate = sample_rate
        self.clip_samples = int(round(clip_seconds * sample_rate))
        self.cache_dir = Path(cache_dir) if cache_dir else None

    def _decoded(self, path: Path) -> tuple[np.ndarray, int]:
        """int16 samples and rate, through the on-disk cache when there is one.

        Cache files are written under a private name and renamed into place, so processes
        decoding the same clip at once never read or leave a half-written file; a cache file
        that does not load (damaged) is decoded again and replaced.
        """
        cached = None
        if self.cache_dir is not None:
            cached = self.cache_dir / path.relative_to(self.root).with_suffix(".npz")
            if cached.is_file():
                try:
                    with np.load(cached) as data:
                        return data["pcm"], int(data["rate"])
                except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                    pass  # damaged: decode the source again below
        wave, rate = read_sphere(path)
        pcm = np.clip(np.round(wave * 32768.0), -32768, 32767).astype(np.int16)
        if cached is not None:
            atomic_save(lambda tmp: np.savez(tmp, pcm=pcm, rate=rate), cached)
        return pcm, rate

    def read(self, index: int) -> torch.Tensor:
        pcm, rate = self._decoded(self.files[index])
        wave = torch.from_numpy(pcm.astype(np.float32) / 32768.0)
        return fit_length(resample(wave, rate, self.sample_rate), self.clip_samples)


def speaker_of(path: Path) -> str:
    """``<group>/<speaker>`` (e.g. ``man/ae``): speaker codes repeat across groups."""
    return f"{path.parent.parent.name}/{path.parent.name}"
