"""Reader for the Google Speech Commands folder layout (also used by the embedded digits).

Layout: ``<root>/<word>/<speaker>_nohash_<n>.wav`` with ``validation_list.txt`` and
``testing_list.txt`` naming the validation and test clips (``word/file.wav``); training is
everything else. ``_background_noise_`` is never a word. Clips are 16 kHz mono; shorter ones
are zero-padded at the end and longer ones cropped to ``clip_samples``; a clip at another rate
is corrupt (``data/io/audio.py`` reads every clip).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from assoc_lightning.data.datasets.base import SkipCorruptDataset
from assoc_lightning.data.errors import DatasetNotFoundError
from assoc_lightning.data.io.audio import read_audio
from assoc_lightning.errors import ConfigError

LAYOUT = """\
<root>/<word>/<speaker>_nohash_<n>.wav   (16 kHz mono PCM)
<root>/validation_list.txt               (one word/file.wav per line)
<root>/testing_list.txt"""
NOISE_DIR = "_background_noise_"


def find_speech_commands(root: str | Path) -> Path:
    """The Speech Commands folder under ``root``: torchaudio's
    ``SpeechCommands/speech_commands_v0.02``, a bare ``speech_commands_v0.02``, or ``root``."""
    root = Path(root)
    for candidate in (
        root / "SpeechCommands" / "speech_commands_v0.02",
        root / "speech_commands_v0.02",
        root,
    ):
        if (candidate / "validation_list.txt").is_file():
            return candidate
    raise DatasetNotFoundError(
        "speech_commands",
        root,
        "<root>/SpeechCommands/speech_commands_v0.02/\n" + LAYOUT,
        "http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz (or `download: true`)",
    )


def read_list(path: Path, root: Path, name: str) -> set[str]:
    if not path.is_file():
        raise DatasetNotFoundError(
            name, root, LAYOUT, "see the dataset's documentation", missing=path
        )
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def split_files(
    root: Path, split: str, words: Sequence[str], name: str = "speech_commands"
) -> list[str]:
    """Relative paths (``word/file.wav``) of ``split`` restricted to ``words``, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(name, root, LAYOUT, "see the dataset's documentation")
    val = read_list(root / "validation_list.txt", root, name)
    test = read_list(root / "testing_list.txt", root, name)
    files = []
    for word in words:
        wdir = root / word
        if not wdir.is_dir():
            raise DatasetNotFoundError(
                name, root, LAYOUT, "see the dataset's documentation", missing=wdir
            )
        found = [f"{word}/{p.name}" for p in wdir.glob("*.wav") if "_nohash_" in p.name]
        if not found:
            raise DatasetNotFoundError(
                name, root, LAYOUT, "see the dataset's documentation",
                missing=f"any <speaker>_nohash_<n>.wav in {wdir}",
            )  # fmt: skip
        files += found
    if split == "val":
        chosen = [f for f in files if f in val]
    elif split == "test":
        chosen = [f for f in files if f in test]
    elif split == "train":
        chosen = [f for f in files if f not in val and f not in test]
    else:
        raise ConfigError(f"split must be train/val/test, got {split!r}")
    return sorted(chosen)


def speaker_of(relpath: str) -> str:
    return Path(relpath).name.split("_nohash_")[0]


class SpeechCommandsClips(SkipCorruptDataset):
    """One split of a Speech-Commands-layout folder, labelled by position in ``words``.

    Corrupt clips are skipped, counted and warned about (see ``SkipCorruptDataset``).
    """

    modality = "audio"

    def __init__(
        self,
        root: str | Path,
        split: str,
        words: Sequence[str],
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        name: str = "speech_commands",
        skip_corrupt: bool = True,
    ) -> None:
        self.root = Path(root)
        self.files = split_files(self.root, split, words, name)
        index = {w: i for i, w in enumerate(words)}
        super().__init__([index[f.split("/")[0]] for f in self.files], skip_corrupt)
        self.sample_rate = sample_rate
        self.clip_samples = int(round(sample_rate * clip_seconds))
        self.speakers = [speaker_of(f) for f in self.files]

    def read(self, index: int) -> torch.Tensor:
        path = self.root / self.files[index]
        return read_audio(path, self.sample_rate, self.clip_samples, resample_rate=False)


def download_speech_commands(root: str | Path) -> None:
    """Speech Commands v0.02 into ``<root>/SpeechCommands/speech_commands_v0.02`` through
    torchaudio (official URL, checksum)."""
    from torchaudio.datasets import SPEECHCOMMANDS

    SPEECHCOMMANDS(str(root), url="speech_commands_v0.02", download=True)
