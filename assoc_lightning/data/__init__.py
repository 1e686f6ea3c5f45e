"""Datamodules. YAML can name a class bare (``class_path: DigitsDataModule``)."""

from assoc_lightning.data.av_retrieval import AVERetrievalDataModule, FlickrSoundNetDataModule
from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.cmcr import CMCRDataModule
from assoc_lightning.data.cmcr_digits import CMCRDigitsDataModule
from assoc_lightning.data.digits import DigitsDataModule
from assoc_lightning.data.paired import MultiPairedDataModule, PairedDataModule

DATAMODULES: dict[str, type[AssocDataModule]] = {
    "ave": AVERetrievalDataModule,
    "cmcr": CMCRDataModule,
    "cmcr_digits": CMCRDigitsDataModule,
    "digits": DigitsDataModule,
    "flickr_soundnet": FlickrSoundNetDataModule,
    "multi_paired": MultiPairedDataModule,
    "paired": PairedDataModule,
}

__all__ = [
    "DATAMODULES",
    "AVERetrievalDataModule",
    "AssocDataModule",
    "CMCRDataModule",
    "CMCRDigitsDataModule",
    "DigitsDataModule",
    "FlickrSoundNetDataModule",
    "MultiPairedDataModule",
    "PairedDataModule",
]
