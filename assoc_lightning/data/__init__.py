"""Datamodules. YAML can name a class bare (``class_path: DigitsDataModule``)."""

from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.cmcr_digits import CMCRDigitsDataModule
from assoc_lightning.data.digits import DigitsDataModule
from assoc_lightning.data.paired import PairedDataModule

DATAMODULES: dict[str, type[AssocDataModule]] = {
    "cmcr_digits": CMCRDigitsDataModule,
    "digits": DigitsDataModule,
    "paired": PairedDataModule,
}

__all__ = [
    "DATAMODULES",
    "AssocDataModule",
    "CMCRDigitsDataModule",
    "DigitsDataModule",
    "PairedDataModule",
]
