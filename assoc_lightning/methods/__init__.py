"""All methods, by name. YAML can name a class bare (``class_path: IGEmbedding``)."""

from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.methods.bma_memory import BMAMemory
from assoc_lightning.methods.cmcr import CMCR
from assoc_lightning.methods.dmc import DMC
from assoc_lightning.methods.ig_embedding import IGEmbedding
from assoc_lightning.methods.vae_associator import VAEAssociator

METHODS: dict[str, type[AssociativeMethod]] = {
    BMAMemory.name: BMAMemory,
    CMCR.name: CMCR,
    DMC.name: DMC,
    IGEmbedding.name: IGEmbedding,
    VAEAssociator.name: VAEAssociator,
}

__all__ = [
    "BMAMemory",
    "CMCR",
    "DMC",
    "METHODS",
    "AssociativeMethod",
    "IGEmbedding",
    "VAEAssociator",
]
