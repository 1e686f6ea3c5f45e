"""LightningDataModules only; each builds its splits from ``data/datasets``."""
