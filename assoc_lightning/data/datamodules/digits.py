"""The embedded default as a datamodule: spoken and handwritten digits, paired by class."""

from __future__ import annotations

from pathlib import Path

from assoc_lightning.data.datamodules.class_paired import ClassPairedDataModule
from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.data.datasets.digits import (
    MIN_SPEAKERS,
    WORDS,
    digits_split,
    ensure_spoken_digits,
    ensure_unseen_digits,
)
from assoc_lightning.errors import ConfigError


class DigitsDataModule(ClassPairedDataModule):
    """Paired spoken/handwritten digits, offline; the default for every method.

    Training pairs each image with a random same-digit clip (re-drawn every epoch);
    validation and test use one fixed seeded pairing. How the data are made:
    ``data/datasets/digits.py`` (and docs/datasets.md).

    Args:
        num_speakers: synthetic talkers; each says all ten digits once.
        generation_seed: seed for the talkers and the speaker split (changes the data).
        test_voices: ``"seen"``: the test split's talkers are new speakers drawn like the
            training ones (speaker-disjoint); ``"unseen"``: ``unseen_speakers`` talkers whose
            voice-variant family no training talker has (generated on first use, ~10 s).
            Validation always uses the speaker-disjoint talkers.
        unseen_speakers: talkers of the unseen-family test split.
        **kwargs: paired_fraction (of the training images used as pair anchors),
            unpaired_train (``ClassPairedDataModule``), data_dir, batch_size, eval_batch_size,
            num_workers, seed (``AssocDataModule``).
    """

    num_classes = 10
    num_pairs = 10
    class_names = WORDS

    def __init__(
        self,
        num_speakers: int = 240,
        generation_seed: int = 0,
        test_voices: str = "seen",
        unseen_speakers: int = 40,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if test_voices not in ("seen", "unseen") or unseen_speakers < 1:
            raise ConfigError(
                f"test_voices must be 'seen' or 'unseen' (got {test_voices!r}) and "
                f"unseen_speakers at least 1 (got {unseen_speakers})"
            )
        self.test_voices, self.unseen_speakers = test_voices, unseen_speakers
        if num_speakers < MIN_SPEAKERS:
            raise ConfigError(
                f"num_speakers must be at least {MIN_SPEAKERS} (one talker in each of the "
                f"speaker-disjoint val and test splits), got {num_speakers}"
            )
        self.num_speakers = num_speakers
        self.generation_seed = generation_seed

    @property
    def audio_root(self) -> Path:
        return self.data_dir / f"spoken_digits_s{self.generation_seed}_n{self.num_speakers}"

    @property
    def unseen_root(self) -> Path:
        return self.audio_root.with_name(f"{self.audio_root.name}_unseen{self.unseen_speakers}")

    def prepare_data(self) -> None:
        ensure_spoken_digits(self.audio_root, self.num_speakers, self.generation_seed)
        if self.test_voices == "unseen":
            ensure_unseen_digits(
                self.unseen_root, self.num_speakers, self.generation_seed, self.unseen_speakers
            )

    def open_split(self, split: str) -> dict[str, LabeledDataset]:
        if split == "test" and self.test_voices == "unseen":
            return digits_split(self.audio_root, split, self.unseen_root)
        return digits_split(self.audio_root, split)
