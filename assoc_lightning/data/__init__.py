"""The data layer, in three folders: ``io/`` (format readers), ``datasets/`` (one file per
dataset, and ``registry.py`` naming them) and ``datamodules/`` (LightningDataModules).

The datamodules are importable from here, so YAML may name them bare
(``class_path: DigitsDataModule``).
"""

from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.datamodules.acivw import ACIVWDataModule
from assoc_lightning.data.datamodules.class_paired import (
    ClassPairedDataModule,
    MultiPairedDataModule,
    PairedDataModule,
)
from assoc_lightning.data.datamodules.cmcr import CMCRDataModule, CMCRDigitsDataModule
from assoc_lightning.data.datamodules.digits import DigitsDataModule
from assoc_lightning.data.datamodules.retrieval import (
    AVERetrievalDataModule,
    FlickrSoundNetDataModule,
)
from assoc_lightning.data.datamodules.video_pairs import VideoPairsDataModule

DATAMODULES: dict[str, type[AssocDataModule]] = {
    "acivw": ACIVWDataModule,
    "ave": AVERetrievalDataModule,
    "cmcr": CMCRDataModule,
    "cmcr_digits": CMCRDigitsDataModule,
    "digits": DigitsDataModule,
    "flickr_soundnet": FlickrSoundNetDataModule,
    "multi_paired": MultiPairedDataModule,
    "paired": PairedDataModule,
    "video_pairs": VideoPairsDataModule,
}

__all__ = [
    "DATAMODULES",
    "ACIVWDataModule",
    "AVERetrievalDataModule",
    "AssocDataModule",
    "CMCRDataModule",
    "CMCRDigitsDataModule",
    "ClassPairedDataModule",
    "DigitsDataModule",
    "FlickrSoundNetDataModule",
    "MultiPairedDataModule",
    "PairedDataModule",
    "VideoPairsDataModule",
]
