"""assoc_lightning: cross-modal associative representation learning with PyTorch Lightning."""

__version__ = "0.1.0"
