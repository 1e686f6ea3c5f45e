"""ACIVW as a datamodule for BMA-Memory: 2-s sound-image pairs on the official split, a paired
fraction, and unpaired streams (external unimodal sets such as Kinetics, or the training
samples not kept as pairs). Samples and their views come from ``data/datasets/acivw.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from assoc_lightning.data.base import SPLITS, AssocDataModule
from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.acivw import (
    ACIVW_CLASSES,
    CODE_SAMPLE_RATE,
    FRAMES,
    NORMALIZE,
    ACIVWSamples,
    check_choice,
)
from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.data.datasets.pairing import (
    LabeledSubset,
    check_fraction,
    stratified_fraction,
)
from assoc_lightning.errors import ConfigError


@dataclass
class UnpairedSource:
    """An external unimodal dataset for an unpaired stream: a registry name
    (``data/datasets/registry.py``), its reader's options, and at most ``max_items`` of its
    training split (a seeded random subset; ``None``: all)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    max_items: int | None = None


class ACIVWDataModule(AssocDataModule):
    """ACIVW 2-s samples as fixed sound-image pairs (train/val/test: the official lists).

    ``paired`` holds each split's samples (training: the kept fraction), ``unpaired`` each
    split's single-modality views (every sample, deterministic frame) for the evaluations.
    With an unpaired stream, training batches are ``{"paired", "unpaired_audio",
    "unpaired_image"}`` (the streams given) from one ``max_size_cycle`` CombinedLoader.

    Args:
        data_dir: holds ``ACIVW/class_K/data_NNN/`` (or is the ACIVW folder itself).
        batch_size: pairs per batch (256, the paper's); also the unpaired streams' batch.
        sample_rate: the rate of the raw DualCam samples (12,288 Hz: 1024 per frame at 12 fps,
            the authors' code; the papers say 12.8 kHz).
        target_rate: resample the audio to this rate (``None``: keep ``sample_rate``). Set an
            external audio source to the same rate and length.
        image_size: side of the square images (224, the paper's).
        frame: ``middle``, ``first`` or ``random`` frame of the 2-s window; ``random`` only in
            the training pairs and streams (evaluation sets use ``middle``).
        crop: centre-crop instead of resizing the 4:3 frame to a square.
        mic: the microphone read (0, the authors').
        normalize: ``peak`` (per sample, the authors' loader) or ``none``.
        paired_fraction: class-stratified seeded fraction of the training samples kept as
            pairs (1.0 .. 0.01; the paper's Table 5 uses 0.2).
        unpaired_audio, unpaired_image: external unimodal sources for the unpaired streams
            (e.g. ``{name: kinetics_audio, max_items: 50000}``).
        unpaired_from_acivw: stream the training samples not kept as pairs as unpaired sounds
            and images (needs ``paired_fraction < 1``); with an external source too, both.
        lists_dir: split lists to use instead of the shipped official ones.
        skip_corrupt: replace an unreadable sample by the next readable one (warned).
        **kwargs: eval_batch_size, num_workers, seed (AssocDataModule).
    """

    modalities = ("image", "audio")
    num_classes = len(ACIVW_CLASSES)
    class_names = ACIVW_CLASSES

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 256,
        sample_rate: int = CODE_SAMPLE_RATE,
        target_rate: int | None = None,
        image_size: int = 224,
        frame: str = "middle",
        crop: bool = False,
        mic: int = 0,
        normalize: str = "peak",
        paired_fraction: float = 1.0,
        unpaired_audio: UnpairedSource | None = None,
        unpaired_image: UnpairedSource | None = None,
        unpaired_from_acivw: bool = False,
        lists_dir: str | None = None,
        skip_corrupt: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, batch_size=batch_size, **kwargs)
        self.frame = check_choice("frame", frame, FRAMES)
        self.sample_options = {
            "sample_rate": sample_rate,
            "target_rate": target_rate,
            "image_size": image_size,
            "crop": crop,
            "mic": mic,
            "normalize": check_choice("normalize", normalize, NORMALIZE),
            "lists_dir": lists_dir,
            "skip_corrupt": skip_corrupt,
        }
        self.paired_fraction = check_fraction(paired_fraction)
        if unpaired_from_acivw and self.paired_fraction == 1.0:
            raise ConfigError(
                "unpaired_from_acivw needs paired_fraction < 1: with every training sample "
                "kept as a pair, none is left to stream unpaired"
            )
        self.unpaired_from_acivw = unpaired_from_acivw
        self.sources = {
            m: self._check_source(m, s)
            for m, s in (("audio", unpaired_audio), ("image", unpaired_image))
            if s is not None
        }
        self.streams: dict[str, Dataset] = {}

    @staticmethod
    def _check_source(modality: str, source: UnpairedSource | dict) -> UnpairedSource:
        if isinstance(source, dict):
            source = UnpairedSource(**source)
        info = registry.dataset_info(source.name)  # unknown names fail here, listing known ones
        if info.modality != modality:
            raise ConfigError(f"unpaired_{modality}: {source.name!r} is not an {modality} dataset")
        if source.max_items is not None and source.max_items < 1:
            raise ConfigError(f"unpaired_{modality}.max_items must be >= 1 or null")
        return source

    def _open_source(self, modality: str) -> LabeledDataset:
        """The external source's training split, cut to ``max_items`` (seeded)."""
        source = self.sources[modality]
        ds = registry.open_split(source.name, self.data_dir, "train", None, source.options)
        if source.max_items is not None and source.max_items < len(ds):
            rng = np.random.default_rng(self.seed)
            ds = LabeledSubset(ds, np.sort(rng.choice(len(ds), source.max_items, replace=False)))
        return ds

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        eval_frame = "middle" if self.frame == "random" else self.frame
        for split in SPLITS:
            samples = ACIVWSamples(self.data_dir, split, frame=eval_frame, **self.sample_options)
            self.paired[split] = samples
            self.unpaired[split] = {m: samples.view(m) for m in self.modalities}
        train = self.paired["train"].select(frame=self.frame)
        keep = stratified_fraction(train.labels, self.paired_fraction, self.seed)
        self.paired["train"] = train.select(keep)
        rest = train.select(np.setdiff1d(np.arange(len(train)), keep))
        for m in self.modalities:
            parts = [rest.view(m)] if self.unpaired_from_acivw and len(rest) else []
            parts += [self._open_source(m)] if m in self.sources else []
            if parts:
                self.streams[m] = parts[0] if len(parts) == 1 else ConcatDataset(parts)

    def train_dataloader(self):
        if self.streams:
            return self.train_loader_with_unpaired(self.streams)
        return super().train_dataloader()
