"""Fixed image-audio pairs, one per row: the zero-shot retrieval sets (AVE, Flickr-SoundNet).

Each set is a list of fixed pairs: the row's image and the row's audio, with instance-level
relevance (a query's only positive is its own pair). :class:`AVPairs` yields ``{"image",
"audio", "label", "index", "pair_id"}`` with ``index`` = ``pair_id`` = the row;
:meth:`AVPairs.view` gives the single-modality dataset of the same rows and indices for the
evaluation callbacks.

Rows whose files are absent are dropped when the index is built (``num_missing``, one
warning); an undecodable file is skipped at read time and counted (``num_corrupt``): the pair
and both views share one set of corrupt rows, so a row found corrupt for one modality is
skipped for the other too (within one process).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from assoc_lightning.data.datasets.base import SkipCorruptDataset
from assoc_lightning.errors import ConfigError


class AVPairs(SkipCorruptDataset):
    """Fixed image-audio pairs, one per row; subclasses implement ``read_image``/``read_audio``.

    Item: ``{"image": uint8 [3, S, S], "audio": float32 [clip_seconds * sample_rate],
    "label", "index", "pair_id"}`` with ``index`` = ``pair_id`` = the row. When a corrupt row
    is replaced by the next readable one, image, audio and label all come from that row.
    """

    modality = "pair"

    def __init__(
        self,
        labels: Sequence[int],
        ids: Sequence[str],
        image_size: int,
        sample_rate: int,
        clip_seconds: float,
        skip_corrupt: bool,
    ) -> None:
        super().__init__(labels, skip_corrupt)
        self.ids = list(ids)
        self.image_size, self.sample_rate = image_size, sample_rate
        self.clip_samples = int(round(sample_rate * clip_seconds))

    def read_image(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def read_audio(self, index: int) -> torch.Tensor:
        raise NotImplementedError

    def read(self, index: int) -> dict:
        return {"image": self.read_image(index), "audio": self.read_audio(index)}

    def __getitem__(self, index: int) -> dict:
        row, pair = self.readable(index)  # both modalities from the same (replacement) row
        return {**pair, "label": int(self.labels[row]), "index": index, "pair_id": index}

    def view(self, modality: str) -> PairView:
        """The rows' ``image`` or ``audio`` alone, same indices and labels, shared corrupt set."""
        return PairView(self, modality)


class PairView(SkipCorruptDataset):
    """One modality of an :class:`AVPairs` (decodes only that modality)."""

    def __init__(self, pairs: AVPairs, modality: str) -> None:
        if modality not in ("image", "audio"):
            raise ConfigError(f"modality must be image or audio, got {modality!r}")
        super().__init__(pairs.labels, pairs.skip_corrupt)
        self.pairs, self.modality = pairs, modality
        self.corrupt = pairs.corrupt  # one set of corrupt rows for the pairs and both views

    def read(self, index: int) -> torch.Tensor:
        reader = self.pairs.read_image if self.modality == "image" else self.pairs.read_audio
        return reader(index)


def warn_missing(name: str, missing: int, kept: int, where: Path) -> None:
    if missing:
        warnings.warn(
            f"{name}: {missing} of {missing + kept} listed pairs have no file under {where} "
            "and are skipped (the videos come from YouTube/Flickr, copies are partial)",
            stacklevel=3,
        )
