"""Datamodules. YAML can name a class bare (``class_path: DigitsDataModule``)."""

from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.digits import DigitsDataModule
from assoc_lightning.data.tidigits import MNISTTIDIGITSDataModule

DATAMODULES: dict[str, type[AssocDataModule]] = {
    "digits": DigitsDataModule,
    "mnist_tidigits": MNISTTIDIGITSDataModule,
}

__all__ = ["DATAMODULES", "AssocDataModule", "DigitsDataModule", "MNISTTIDIGITSDataModule"]
