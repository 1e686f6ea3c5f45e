"""Frozen pre-trained contrastive towers: the base (``base.py``), Hugging Face local-directory
loading (``hf.py``), CLIP (``clip.py``), CLAP (``clap.py``) and the locally trained stand-in
spaces of the offline default (``toy.py``). Their embedding caches live in ``features/``."""

from assoc_lightning.nn.towers.base import FrozenTower
from assoc_lightning.nn.towers.clap import CLAPTower
from assoc_lightning.nn.towers.clip import ClipImageTransform, CLIPTower
from assoc_lightning.nn.towers.hf import (
    TowerDependencyError,
    TowerNotFoundError,
    missing_tower_files,
)
from assoc_lightning.nn.towers.toy import ToyContrastiveSpace

__all__ = [
    "CLAPTower",
    "CLIPTower",
    "ClipImageTransform",
    "FrozenTower",
    "TowerDependencyError",
    "TowerNotFoundError",
    "ToyContrastiveSpace",
    "missing_tower_files",
]
