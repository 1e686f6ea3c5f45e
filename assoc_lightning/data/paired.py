"""Any image dataset with any audio dataset, paired within class through a class mapping.

``PairedDataModule(image=..., audio=..., pairs=...)`` reads both datasets from their real
on-disk formats and pairs them by class: ``pairs`` lists ``(image_class, audio_class)``; each
pair becomes one shared class. Training pairs are re-drawn at random every epoch; validation
and test pairs are fixed by the seed. ``paired_fraction`` (1.0 down to 0.01) keeps only that
seeded, class-stratified fraction of the training images as pair anchors for the
semi-supervised experiments, while the unpaired sets (``self.unpaired``) keep every item for
the unimodal parts and the evaluation.

Presets (``scenario``) for the papers' combinations:
- ``mnist_speech_commands``: MNIST digits <-> spoken "zero".."nine" (VAE associator, Table 1).
- ``fashion_mnist_speech_commands``: F-MNIST class index k <-> spoken digit k (our choice).
- ``gtsrb_speech_commands``: GTSRB Ahead only / No vehicles / Go straight or left / Go straight
  or right <-> "go" / "stop" / "left" / "right" (see data/gtsrb.py for the id choice).
- ``mnist_tidigits``: MNIST <-> TIDIGITS isolated digits, "oh" and "zero" both 0 (IG paper).
"""

from __future__ import annotations

import numpy as np
import torch

from assoc_lightning.data.base import SPLITS, AssocDataModule, ClassPairedDataset, LabeledDataset

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMAND_WORDS = ("go", "stop", "left", "right")  # with the digits: the VAE paper's 14 GSC words

SCENARIOS: dict[str, dict] = {
    "mnist_speech_commands": {
        "image": "mnist",
        "audio": "speech_commands",
        "pairs": [(d, w) for d, w in enumerate(DIGIT_WORDS)],
        "audio_extra": COMMAND_WORDS,
    },
    "fashion_mnist_speech_commands": {
        "image": "fashion_mnist",
        "audio": "speech_commands",
        "pairs": [(d, w) for d, w in enumerate(DIGIT_WORDS)],
        "audio_extra": COMMAND_WORDS,
    },
    "gtsrb_speech_commands": {
        "image": "gtsrb",
        "audio": "speech_commands",
        "pairs": [(35, "go"), (15, "stop"), (37, "left"), (36, "right")],
        "image_extra": [9, 1, 16, 17, 40],
        "audio_extra": DIGIT_WORDS,
    },
    "mnist_tidigits": {
        "image": "mnist",
        "audio": "tidigits",
        "pairs": [(d, d) for d in range(10)],
    },
}


class RelabeledSubset(LabeledDataset):
    """Items of ``base`` whose label is in ``mapping``, relabelled through it."""

    def __init__(self, base: LabeledDataset, mapping: dict[int, int]) -> None:
        keep = np.flatnonzero(np.isin(base.labels, list(mapping)))
        super().__init__([mapping[int(c)] for c in base.labels[keep]])
        self.modality = base.modality
        self.base, self.rows = base, keep

    def load(self, index: int) -> torch.Tensor:
        return self.base.load(int(self.rows[index]))


def stratified_fraction(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Seeded indices keeping ``fraction`` of each class (at least one item per class)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"paired_fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(rng.choice(idx, max(1, int(round(fraction * idx.size))), replace=False))
    return np.sort(np.concatenate(keep))


class AnchorSubset(LabeledDataset):
    """A subset of a labelled dataset by row indices (the paired anchors)."""

    def __init__(self, base: LabeledDataset, rows: np.ndarray) -> None:
        super().__init__(base.labels[rows])
        self.modality, self.base, self.rows = base.modality, base, rows

    def load(self, index: int) -> torch.Tensor:
        return self.base.load(int(self.rows[index]))


def open_source(kind: str, name: str, root, split: str, words=None, options: dict | None = None):
    """One split of a named dataset read from ``root``."""
    options = dict(options or {})
    if name == "mnist":
        from assoc_lightning.data.mnist import MNISTImages

        return MNISTImages(root, split, **options)
    if name == "fashion_mnist":
        from assoc_lightning.data.mnist import FashionMNISTImages

        return FashionMNISTImages(root, split, **options)
    if name == "gtsrb":
        from assoc_lightning.data.gtsrb import GTSRBImages

        return GTSRBImages(root, split, **options)
    if name == "speech_commands":
        from assoc_lightning.data.speech_commands import SpeechCommandsClips, find_speech_commands

        return SpeechCommandsClips(find_speech_commands(root), split, words, **options)
    if name == "tidigits":
        from assoc_lightning.data.tidigits import TIDIGITSIsolated

        options.setdefault("cache_dir", root / "cache" / "tidigits")
        return TIDIGITSIsolated(root / "TIDIGITS", split, **options)
    raise ValueError(f"unknown {kind} dataset {name!r}")


class PairedDataModule(AssocDataModule):
    """Pairs an image dataset with an audio dataset by class (see the module docstring).

    Args:
        scenario: a preset from ``SCENARIOS``; ``image``, ``audio`` and ``pairs`` override it.
        image: image dataset name (mnist, fashion_mnist, gtsrb).
        audio: audio dataset name (speech_commands, tidigits).
        pairs: ``[image_class, audio_class]`` pairs; an audio class is a word for
            speech_commands or a digit for tidigits. Shared class k is the k-th pair.
        image_extra, audio_extra: unpaired classes kept in the unimodal sets (``None``: the
            scenario's; ``[]``: none). Labelled from ``len(pairs)`` on, images first.
        paired_fraction: fraction of training images used as pair anchors (1.0 .. 0.01).
        image_options, audio_options: extra arguments for the dataset readers.
        download: fetch public datasets (MNIST, Fashion-MNIST, GTSRB, Speech Commands) from
            their official sources with checksums when missing. Never by default.
        data_dir, batch_size, eval_batch_size, num_workers, seed: see AssocDataModule.
    """

    def __init__(
        self,
        scenario: str | None = "mnist_speech_commands",
        image: str | None = None,
        audio: str | None = None,
        pairs: list[tuple[int, str | int]] | None = None,
        image_extra: list[int] | None = None,
        audio_extra: list[str | int] | None = None,
        paired_fraction: float = 1.0,
        image_options: dict | None = None,
        audio_options: dict | None = None,
        download: bool = False,
        data_dir: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(data_dir, batch_size, eval_batch_size, num_workers, seed)
        if scenario and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose from {sorted(SCENARIOS)}")
        preset = dict(SCENARIOS[scenario]) if scenario else {}
        self.image_name = image or preset.get("image")
        self.audio_name = audio or preset.get("audio")
        self.pairs = [tuple(p) for p in (pairs or preset.get("pairs") or [])]
        if not (self.image_name and self.audio_name and self.pairs):
            raise ValueError("PairedDataModule needs a scenario, or image, audio and pairs")
        if not 0.0 < paired_fraction <= 1.0:
            raise ValueError(f"paired_fraction must be in (0, 1], got {paired_fraction}")
        self.paired_fraction = paired_fraction
        self.image_options, self.audio_options = image_options or {}, audio_options or {}
        self.download = download
        self.image_extra = list(
            preset.get("image_extra", []) if image_extra is None else image_extra
        )
        self.audio_extra = list(
            preset.get("audio_extra", []) if audio_extra is None else audio_extra
        )
        self.num_classes = len(self.pairs) + len(self.image_extra) + len(self.audio_extra)
        self.class_names = tuple(
            [str(a) for _, a in self.pairs]
            + [f"image:{c}" for c in self.image_extra]
            + [f"audio:{c}" for c in self.audio_extra]
        )

    def _image_mapping(self) -> dict[int, int]:
        """Image label -> shared class (paired classes first, then image-only ones)."""
        classes = [int(i) for i, _ in self.pairs] + [int(c) for c in self.image_extra]
        return {c: k for k, c in enumerate(classes)}

    def _audio_mapping(self) -> tuple[list | None, dict[int, int]]:
        """Words to read (speech_commands) and audio label -> shared class."""
        first_extra = len(self.pairs) + len(self.image_extra)
        shared = list(range(len(self.pairs))) + [
            first_extra + k for k in range(len(self.audio_extra))
        ]
        classes = [a for _, a in self.pairs] + list(self.audio_extra)
        if self.audio_name == "speech_commands":
            return [str(a) for a in classes], dict(enumerate(shared))
        return None, {int(a): k for a, k in zip(classes, shared, strict=True)}

    def prepare_data(self) -> None:
        if self.download:
            from assoc_lightning.data.download import download

            download(self.image_name, self.data_dir)
            download(self.audio_name, self.data_dir)
        words, _ = self._audio_mapping()
        open_source("image", self.image_name, self.data_dir, "train", options=self.image_options)
        open_source("audio", self.audio_name, self.data_dir, "train", words, self.audio_options)

    def setup(self, stage: str | None = None) -> None:
        if self.unpaired:
            return
        words, audio_map = self._audio_mapping()
        image_map = self._image_mapping()
        for split in SPLITS:
            image = RelabeledSubset(
                open_source(
                    "image", self.image_name, self.data_dir, split, options=self.image_options
                ),
                image_map,
            )
            audio = RelabeledSubset(
                open_source(
                    "audio", self.audio_name, self.data_dir, split, words, self.audio_options
                ),
                audio_map,
            )
            self.unpaired[split] = {"image": image, "audio": audio}
            rows = np.flatnonzero(image.labels < len(self.pairs))  # images of paired classes
            if split == "train" and self.paired_fraction < 1.0:
                rows = rows[
                    stratified_fraction(image.labels[rows], self.paired_fraction, self.seed)
                ]
            anchors = AnchorSubset(image, rows)
            self.paired[split] = ClassPairedDataset(
                anchors, audio, fixed=split != "train", seed=self.seed
            )
