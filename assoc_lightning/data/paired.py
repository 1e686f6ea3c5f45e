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

``MultiPairedDataModule`` pairs two or more datasets that are each their own modality, named
after the dataset (image<->image F-MNIST<->MNIST, the GSC/F-MNIST/MNIST cascade; presets in
``MULTI_SCENARIOS``). With ``unpaired_train`` any of these datamodules also streams every
training item of each modality, unpaired, beside the pairs (see :func:`train_loader_with_unpaired`).
"""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

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


def train_loader_with_unpaired(dm: AssocDataModule) -> CombinedLoader:
    """The training pairs and every training item of each modality, unpaired, in one loader.

    Batches are ``{"paired": <pair batch>, "unpaired_<modality>": <item batch>, ...}``; an epoch
    is the longest stream and shorter ones restart (``max_size_cycle``), so methods that train
    on unimodal data (the VAE associator's phase 1) see all of it whatever ``paired_fraction``
    is. A stream smaller than one batch keeps its last, short batch instead of none.
    """
    streams = {"paired": dm.paired["train"]}
    streams.update({f"unpaired_{m}": dm.unpaired["train"][m] for m in dm.modalities})
    loaders = {
        name: DataLoader(
            ds,
            batch_size=dm.batch_size,
            shuffle=True,
            drop_last=len(ds) >= dm.batch_size,
            num_workers=dm.num_workers,
            persistent_workers=dm.num_workers > 0,
        )
        for name, ds in streams.items()
    }
    return CombinedLoader(loaders, mode="max_size_cycle")


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
        unpaired_train: also stream every training item of each modality, unpaired
            (:func:`train_loader_with_unpaired`); off, training batches are the pairs alone.
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
        unpaired_train: bool = False,
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
        self.unpaired_train = unpaired_train
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

    def train_dataloader(self):
        if self.unpaired_train:
            return train_loader_with_unpaired(self)
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


class MultiClassPairedDataset(Dataset):
    """Each anchor item with one same-class partner from every other modality.

    Like ``ClassPairedDataset`` for any modality names: partners re-drawn on every access
    (``fixed=False``) or drawn once from ``seed``. Item: every modality, ``label``, ``index`` =
    ``pair_id`` = the anchor's index, and ``<modality>_index`` for each partner.
    """

    def __init__(
        self,
        anchor: LabeledDataset,
        partners: dict[str, LabeledDataset],
        fixed: bool,
        seed: int = 0,
    ) -> None:
        self.anchor, self.partners = anchor, partners
        classes = np.unique(anchor.labels).tolist()
        self.by_class = {
            m: {c: np.flatnonzero(ds.labels == c) for c in classes} for m, ds in partners.items()
        }
        for m, by_class in self.by_class.items():
            empty = [c for c, idx in by_class.items() if idx.size == 0]
            if empty:
                raise ValueError(f"classes {empty} have anchors but no {m} items to pair with")
        self.partner = None
        if fixed:
            rng = np.random.default_rng(seed)
            self.partner = {
                m: np.array([rng.choice(self.by_class[m][int(c)]) for c in anchor.labels])
                for m in partners
            }

    def __len__(self) -> int:
        return len(self.anchor)

    def __getitem__(self, index: int) -> dict:
        label = int(self.anchor.labels[index])
        item = {self.anchor.modality: self.anchor.load(index)}
        for m, ds in self.partners.items():
            if self.partner is not None:
                j = int(self.partner[m][index])
            else:
                candidates = self.by_class[m][label]
                j = int(candidates[torch.randint(len(candidates), ()).item()])
            item[m], item[f"{m}_index"] = ds.load(j), j
        return {**item, "label": label, "index": index, "pair_id": index}


class MultiPairedDataModule(AssocDataModule):
    """Two or more datasets, each its own modality named after the dataset, paired by class.

    ``classes[name]`` lists each dataset's classes in shared-class order: entry k of every list
    is shared class k. The first dataset gives the pair anchors (``paired_fraction`` of its
    training items, class-stratified); every other modality contributes a random item of the
    same class. ``extra[name]`` classes stay unpaired in that modality's unimodal sets,
    labelled after the shared ones in dataset order.

    Args:
        scenario: a preset from ``MULTI_SCENARIOS``; ``datasets``/``classes``/``extra``
            override it.
        datasets: dataset names (mnist, fashion_mnist, gtsrb, speech_commands, tidigits), each
            becoming the modality of that name.
        classes: per dataset, its class ids (a word for speech_commands) in shared order.
        extra: per dataset, unpaired extra classes (``None``: the scenario's).
        paired_fraction: fraction of the anchor dataset's training items used as anchors.
        unpaired_train: also stream every training item of each modality, unpaired.
        options: per dataset, extra arguments for its reader.
        download: fetch the public datasets when missing (never by default).
        data_dir, batch_size, eval_batch_size, num_workers, seed: see AssocDataModule.
    """

    def __init__(
        self,
        scenario: str | None = "fashion_mnist_mnist",
        datasets: list[str] | None = None,
        classes: dict[str, list[int | str]] | None = None,
        extra: dict[str, list[int | str]] | None = None,
        paired_fraction: float = 1.0,
        unpaired_train: bool = False,
        options: dict[str, dict] | None = None,
        download: bool = False,
        data_dir: str | None = None,
        batch_size: int = 128,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(data_dir, batch_size, eval_batch_size, num_workers, seed)
        if scenario and scenario not in MULTI_SCENARIOS:
            raise ValueError(
                f"unknown scenario {scenario!r}; choose from {sorted(MULTI_SCENARIOS)}"
            )
        preset = MULTI_SCENARIOS[scenario] if scenario else {}
        self.modalities = tuple(datasets or preset.get("datasets") or ())
        self.classes = {k: list(v) for k, v in (classes or preset.get("classes") or {}).items()}
        self.extra = {
            k: list(v) for k, v in (preset.get("extra", {}) if extra is None else extra).items()
        }
        if len(self.modalities) < 2 or set(self.classes) != set(self.modalities):
            raise ValueError("MultiPairedDataModule needs two or more datasets, each with classes")
        num_pairs = {len(c) for c in self.classes.values()}
        if len(num_pairs) != 1:
            raise ValueError(
                f"every dataset needs as many classes as the others, got {self.classes}"
            )
        if not 0.0 < paired_fraction <= 1.0:
            raise ValueError(f"paired_fraction must be in (0, 1], got {paired_fraction}")
        self.num_pairs = num_pairs.pop()
        self.paired_fraction, self.unpaired_train = paired_fraction, unpaired_train
        self.options, self.download = options or {}, download
        extras = [(m, c) for m in self.modalities for c in self.extra.get(m, [])]
        self.num_classes = self.num_pairs + len(extras)
        self.class_names = tuple(
            "/".join(str(self.classes[m][k]) for m in self.modalities)
            for k in range(self.num_pairs)
        ) + tuple(f"{m}:{c}" for m, c in extras)

    def _mapping(self, name: str) -> tuple[list[str] | None, dict[int, int]]:
        """Words to read (speech_commands) and the reader's label -> shared class."""
        first = self.num_pairs + sum(
            len(self.extra.get(m, [])) for m in self.modalities[: self.modalities.index(name)]
        )
        own = self.classes[name] + self.extra.get(name, [])
        shared = list(range(self.num_pairs)) + [first + k for k in range(len(own) - self.num_pairs)]
        if name == "speech_commands":
            return [str(c) for c in own], dict(enumerate(shared))
        return None, {int(c): k for c, k in zip(own, shared, strict=True)}

    def _open(self, name: str, split: str) -> LabeledDataset:
        words, mapping = self._mapping(name)
        kind = "audio" if name in ("speech_commands", "tidigits") else "image"
        source = open_source(kind, name, self.data_dir, split, words, self.options.get(name))
        subset = RelabeledSubset(source, mapping)
        subset.modality = name
        return subset

    def prepare_data(self) -> None:
        for name in self.modalities:
            if self.download:
                from assoc_lightning.data.download import download

                download(name, self.data_dir)
            self._open(name, "train")

    def setup(self, stage: str | None = None) -> None:
        if self.unpaired:
            return
        anchor_name = self.modalities[0]
        for split in SPLITS:
            sets = {m: self._open(m, split) for m in self.modalities}
            self.unpaired[split] = sets
            anchor = sets[anchor_name]
            rows = np.flatnonzero(anchor.labels < self.num_pairs)
            if split == "train" and self.paired_fraction < 1.0:
                rows = rows[
                    stratified_fraction(anchor.labels[rows], self.paired_fraction, self.seed)
                ]
            anchors = AnchorSubset(anchor, rows)
            partners = {m: sets[m] for m in self.modalities[1:]}
            self.paired[split] = MultiClassPairedDataset(
                anchors, partners, fixed=split != "train", seed=self.seed
            )

    def train_dataloader(self):
        if self.unpaired_train:
            return train_loader_with_unpaired(self)
        return super().train_dataloader()
