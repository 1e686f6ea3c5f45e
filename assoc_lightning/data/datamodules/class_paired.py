"""Datasets that share no instances, paired within class: one mechanism, thin presets.

:class:`ClassPairedDataModule` is the mechanism. A subclass says what one split holds
(``open_split``: a labelled dataset per modality, labels in one shared class space); the
first modality gives the pair anchors, every shared class below ``num_pairs`` is paired, and
each anchor gets a random same-class item of every other modality: re-drawn every epoch in
training, fixed by the seed in validation and test. ``paired_fraction`` (1.0 down to 0.01)
keeps only that seeded, class-stratified fraction of the training anchors for the
semi-supervised experiments, while the unimodal sets (``self.unpaired``) keep every item for
the unimodal parts and the evaluation; ``unpaired_train`` streams those beside the pairs.

Presets:

- :class:`MultiPairedDataModule`: two or more named datasets (``data/datasets/registry.py``),
  each its own modality (named after the dataset unless ``names`` says otherwise), classes
  mapped to shared classes by position (``MULTI_SCENARIOS``: F-MNIST <-> MNIST, the
  GSC -> F-MNIST -> MNIST cascade).
- :class:`PairedDataModule`: its two-modality case with the modalities named ``image`` and
  ``audio`` (``SCENARIOS``: MNIST / F-MNIST / GTSRB x Speech Commands, MNIST x TIDIGITS).
- ``DigitsDataModule`` (``data/datamodules/digits.py``): the embedded default.
"""

from __future__ import annotations

import numpy as np

from assoc_lightning.data.base import SPLITS, AssocDataModule
from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.data.datasets.canvas import ImageCanvas
from assoc_lightning.data.datasets.pairing import (
    ClassPairedDataset,
    LabeledSubset,
    check_fraction,
    stratified_fraction,
)
from assoc_lightning.errors import ConfigError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMAND_WORDS = ("go", "stop", "left", "right")  # with the digits: the VAE paper's 14 GSC words


class ClassPairedDataModule(AssocDataModule):
    """The class-pairing mechanism (see the module docstring); subclasses implement
    :meth:`open_split` and set ``modalities`` (anchor first) and ``num_pairs``.

    Args:
        paired_fraction: fraction of the training anchors kept as pair anchors (1.0 .. 0.01,
            class-stratified, seeded); the unimodal sets keep every item.
        unpaired_train: also stream every training item of each modality, unpaired
            (:meth:`AssocDataModule.train_loader_with_unpaired`); off, batches are the pairs.
        canvas_grid: 0 (off) or g: :meth:`localization_dataset` gives fixed pairs whose image
            is a g x g canvas (``data/datasets/canvas.py``) holding the paired image in a
            seeded cell among ``canvas_distractors`` images of other classes, with each
            pair's ``target_cell``. Needs ``image`` as the anchor modality.
        canvas_distractors: other images per canvas (``None``: g^2 - 1, every cell full).
        **kwargs: data_dir, batch_size, eval_batch_size, num_workers, seed (AssocDataModule).
    """

    num_pairs: int = 0

    def __init__(
        self,
        paired_fraction: float = 1.0,
        unpaired_train: bool = False,
        canvas_grid: int = 0,
        canvas_distractors: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.paired_fraction = check_fraction(paired_fraction)
        self.unpaired_train = unpaired_train
        if canvas_grid < 0:
            raise ConfigError(f"canvas_grid must be 0 (off) or a grid side >= 1, got {canvas_grid}")
        self.canvas_grid = canvas_grid
        self.canvas_distractors = (
            canvas_grid * canvas_grid - 1 if canvas_distractors is None else canvas_distractors
        )
        self.localization: dict[str, ClassPairedDataset] = {}

    def open_split(self, split: str) -> dict[str, LabeledDataset]:
        """Every modality's dataset of ``split``, labelled in the shared class space."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.unpaired:
            return
        anchor_name, *partner_names = self.modalities
        if self.canvas_grid and anchor_name != "image":
            raise ConfigError(
                f"canvas_grid needs 'image' as the anchor modality, {type(self).__name__} "
                f"anchors on {anchor_name!r}"
            )
        for split in SPLITS:
            sets = self.open_split(split)
            self.unpaired[split] = sets
            anchor = sets[anchor_name]
            rows = np.flatnonzero(anchor.labels < self.num_pairs)  # anchors of paired classes
            if split == "train":
                rows = rows[
                    stratified_fraction(anchor.labels[rows], self.paired_fraction, self.seed)
                ]
            partners = {m: sets[m] for m in partner_names}
            if self.canvas_grid:
                scenes = ImageCanvas(anchor, self.canvas_grid, self.canvas_distractors, self.seed)
                self.localization[split] = ClassPairedDataset(
                    LabeledSubset(scenes, rows), partners, fixed=True, seed=self.seed
                )
            self.paired[split] = ClassPairedDataset(
                LabeledSubset(anchor, rows), partners, fixed=split != "train", seed=self.seed
            )

    def localization_dataset(self, split: str) -> ClassPairedDataset:
        """Fixed pairs of ``split`` whose images hold the source among distractors, with
        ``target_cell`` and ``grid`` (``canvas_grid`` > 0); otherwise :meth:`pair_dataset`."""
        if not self.canvas_grid:
            return self.pair_dataset(split)
        self.pair_dataset(split)  # the clear error for a split this datamodule lacks
        return self.localization[split]

    def train_dataloader(self):
        if self.unpaired_train:
            return self.train_loader_with_unpaired()
        return super().train_dataloader()


MULTI_SCENARIOS: dict[str, dict] = {
    # image <-> image (VAE associator, Table 1): F-MNIST class index k <-> MNIST digit k
    "fashion_mnist_mnist": {
        "datasets": ["fashion_mnist", "mnist"],
        "classes": {"fashion_mnist": list(range(10)), "mnist": list(range(10))},
    },
    # the cascade of Table 4: GSC -> F-MNIST -> MNIST (14 GSC words, 4 of them unpaired)
    "speech_commands_fashion_mnist_mnist": {
        "datasets": ["speech_commands", "fashion_mnist", "mnist"],
        "classes": {
            "speech_commands": list(DIGIT_WORDS),
            "fashion_mnist": list(range(10)),
            "mnist": list(range(10)),
        },
        "extra": {"speech_commands": list(COMMAND_WORDS)},
    },
}


class MultiPairedDataModule(ClassPairedDataModule):
    """Two or more named datasets, each its own modality, paired by class.

    ``classes[m]`` lists modality m's classes (a word for Speech Commands) in shared-class
    order: entry k of every list is shared class k. The first dataset gives the pair anchors.
    ``extra[m]`` classes stay unpaired in that modality's unimodal sets, labelled after the
    shared ones in modality order. ``classes``, ``extra`` and ``options`` are keyed by
    modality name (the dataset's name unless ``names`` renames it).

    Args:
        scenario: a preset from ``MULTI_SCENARIOS``; ``datasets``/``classes``/``extra``
            override it.
        datasets: dataset names (``data/datasets/registry.py``: mnist, fashion_mnist, gtsrb,
            speech_commands, tidigits, audioset).
        names: the modality name of each dataset (default: the dataset names).
        classes: per modality, its dataset's class ids in shared order.
        extra: per modality, unpaired extra classes (``None``: the scenario's).
        options: per modality, extra arguments for its dataset's reader.
        download: fetch the public datasets when missing (never by default).
        batch_size: pairs per batch.
        **kwargs: paired_fraction, unpaired_train (``ClassPairedDataModule``), data_dir,
            eval_batch_size, num_workers, seed (``AssocDataModule``).
    """

    def __init__(
        self,
        scenario: str | None = "fashion_mnist_mnist",
        datasets: list[str] | None = None,
        classes: dict[str, list[int | str]] | None = None,
        extra: dict[str, list[int | str]] | None = None,
        options: dict[str, dict] | None = None,
        download: bool = False,
        names: list[str] | None = None,
        batch_size: int = 128,
        **kwargs,
    ) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        preset = self._preset(scenario, MULTI_SCENARIOS)
        datasets = list(datasets or preset.get("datasets") or ())
        self.modalities = tuple(names or datasets)
        if len(self.modalities) != len(datasets):
            raise ConfigError(f"names {list(self.modalities)} must name each of {datasets}")
        self.sources = dict(zip(self.modalities, datasets, strict=True))
        for name in datasets:
            registry.dataset_info(name)  # an unknown name fails here, listing the known ones
        self.classes = {k: list(v) for k, v in (classes or preset.get("classes") or {}).items()}
        self.extra = {
            k: list(v) for k, v in (preset.get("extra", {}) if extra is None else extra).items()
        }
        if len(self.modalities) < 2 or set(self.classes) != set(self.modalities):
            raise ConfigError(
                f"{type(self).__name__} needs two or more datasets, each with classes "
                f"(modalities {list(self.modalities)}, classes for {sorted(self.classes)})"
            )
        num_pairs = {len(c) for c in self.classes.values()}
        if len(num_pairs) != 1:
            raise ConfigError(
                f"every dataset needs as many classes as the others, got {self.classes}"
            )
        self.num_pairs = num_pairs.pop()
        self.options, self.download = options or {}, download
        extras = [(m, c) for m in self.modalities for c in self.extra.get(m, [])]
        self.num_classes = self.num_pairs + len(extras)
        self.class_names = tuple(self.pair_names()) + tuple(f"{m}:{c}" for m, c in extras)

    @staticmethod
    def _preset(scenario: str | None, presets: dict[str, dict]) -> dict:
        if scenario and scenario not in presets:
            raise ConfigError(f"unknown scenario {scenario!r}; choose from {sorted(presets)}")
        return dict(presets[scenario]) if scenario else {}

    def pair_names(self) -> list[str]:
        """Names of the shared classes: each modality's class, joined by '/'."""
        return [
            "/".join(str(self.classes[m][k]) for m in self.modalities)
            for k in range(self.num_pairs)
        ]

    def _mapping(self, name: str) -> tuple[list[str] | None, dict[int, int]]:
        """Classes the reader must be told (by-name datasets) and its label -> shared class."""
        first = self.num_pairs + sum(
            len(self.extra.get(m, [])) for m in self.modalities[: self.modalities.index(name)]
        )
        own = self.classes[name] + self.extra.get(name, [])
        shared = list(range(self.num_pairs)) + [first + k for k in range(len(own) - self.num_pairs)]
        if registry.dataset_info(self.sources[name]).classes_by_name:
            return [str(c) for c in own], dict(enumerate(shared))
        return None, {int(c): k for c, k in zip(own, shared, strict=True)}

    def _open(self, name: str, split: str) -> LabeledDataset:
        by_name, mapping = self._mapping(name)
        source = registry.open_split(
            self.sources[name], self.data_dir, split, by_name, self.options.get(name)
        )
        subset = LabeledSubset.relabeled(source, mapping)
        subset.modality = name
        return subset

    def open_split(self, split: str) -> dict[str, LabeledDataset]:
        return {m: self._open(m, split) for m in self.modalities}

    def prepare_data(self) -> None:
        for name in self.modalities:
            if self.download:
                registry.download(self.sources[name], self.data_dir)
            self._open(name, "train")


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


class PairedDataModule(MultiPairedDataModule):
    """An image dataset and an audio dataset paired by class: the two-modality case of
    :class:`MultiPairedDataModule`, with the modalities named ``image`` and ``audio``.

    Presets (``scenario``) for the papers' combinations:

    - ``mnist_speech_commands``: MNIST digits <-> spoken "zero".."nine" (VAE associator).
    - ``fashion_mnist_speech_commands``: F-MNIST class index k <-> spoken digit k (our choice).
    - ``gtsrb_speech_commands``: GTSRB Ahead only / No vehicles / Go straight or left / Go
      straight or right <-> "go" / "stop" / "left" / "right" (``data/datasets/gtsrb.py``).
    - ``mnist_tidigits``: MNIST <-> TIDIGITS isolated digits, "oh" and "zero" both 0 (IG).

    Args:
        scenario: a preset from ``SCENARIOS``; ``image``, ``audio`` and ``pairs`` override it.
        image: image dataset name (mnist, fashion_mnist, gtsrb).
        audio: audio dataset name (speech_commands, tidigits).
        pairs: ``[image_class, audio_class]`` pairs; an audio class is a word for
            speech_commands or a digit for tidigits. Shared class k is the k-th pair.
        image_extra, audio_extra: unpaired classes kept in the unimodal sets (``None``: the
            scenario's; ``[]``: none). Labelled from ``len(pairs)`` on, images first.
        image_options, audio_options: extra arguments for the dataset readers.
        download: fetch public datasets (MNIST, Fashion-MNIST, GTSRB, Speech Commands) from
            their official sources with checksums when missing. Never by default.
        **kwargs: batch_size (128), paired_fraction, unpaired_train, data_dir,
            eval_batch_size, num_workers, seed, as for ``MultiPairedDataModule``.
    """

    def __init__(
        self,
        scenario: str | None = "mnist_speech_commands",
        image: str | None = None,
        audio: str | None = None,
        pairs: list[tuple[int, str | int]] | None = None,
        image_extra: list[int] | None = None,
        audio_extra: list[str | int] | None = None,
        image_options: dict | None = None,
        audio_options: dict | None = None,
        download: bool = False,
        **kwargs,
    ) -> None:
        preset = self._preset(scenario, SCENARIOS)
        image, audio = image or preset.get("image"), audio or preset.get("audio")
        pairs = [tuple(p) for p in (pairs or preset.get("pairs") or [])]
        if not (image and audio and pairs):
            raise ConfigError("PairedDataModule needs a scenario, or image, audio and pairs")
        for modality, name in (("image", image), ("audio", audio)):
            if registry.dataset_info(name).modality != modality:
                raise ConfigError(f"{modality}: {name!r} is not an {modality} dataset")
        extra = {
            "image": preset.get("image_extra", []) if image_extra is None else image_extra,
            "audio": preset.get("audio_extra", []) if audio_extra is None else audio_extra,
        }
        super().__init__(
            scenario=None,
            datasets=[image, audio],
            classes={"image": [i for i, _ in pairs], "audio": [a for _, a in pairs]},
            extra=extra,
            options={"image": image_options or {}, "audio": audio_options or {}},
            download=download,
            names=["image", "audio"],
            **kwargs,
        )
        self.image_name, self.audio_name, self.pairs = image, audio, pairs

    def pair_names(self) -> list[str]:
        """Names of the shared classes: the audio classes (words or digits)."""
        return [str(a) for a in self.classes["audio"]]
