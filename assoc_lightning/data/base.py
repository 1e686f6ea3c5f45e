"""AssocDataModule: data_dir resolution, dict batches, loaders, and the evaluation sets.

Every dataset item is a dict with fixed keys: ``image`` and/or ``audio`` (raw waveform; the
front-end runs on the device inside the method), ``label``, ``index`` and, for pairs,
``pair_id``. Training batches are pairs; evaluation callbacks ask the datamodule for
single-modality eval sets (``eval_dataset(split, modality)``) and build their own loaders.
"""

from __future__ import annotations

import os
from pathlib import Path

from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.errors import ConfigError

SPLITS = ("train", "val", "test")
MODALITIES = ("image", "audio")


def resolve_data_dir(data_dir: str | os.PathLike | None) -> Path:
    """The argument if given, else ``$ASSOC_DATA_DIR``, else ``$XDG_CACHE_HOME/assoc/data``."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get("ASSOC_DATA_DIR"):
        return Path(os.environ["ASSOC_DATA_DIR"]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "assoc" / "data"


class AssocDataModule(LightningDataModule):
    """Base datamodule: data_dir, batch sizes, loaders, and single-modality eval sets.

    Subclasses fill ``self.paired[split]`` (a paired dataset per split) and
    ``self.unpaired[split][modality]`` (a :class:`LabeledDataset`) in ``setup``.

    Args:
        data_dir: where datasets live or are generated; ``None`` -> ``$ASSOC_DATA_DIR`` ->
            ``~/.cache/assoc/data``.
        batch_size: pairs per batch (per device) in training, and in the validation/test loss
            loops so that losses whose negatives come from the batch stay comparable.
        eval_batch_size: items per batch when evaluation callbacks embed a split.
        num_workers: DataLoader worker processes.
        seed: seed for fixed validation/test pairings and any data-side sampling.
    """

    modalities: tuple[str, ...] = MODALITIES
    num_classes: int = 0
    class_names: tuple[str, ...] = ()
    data_dir: Path
    batch_size: int
    eval_batch_size: int
    num_workers: int
    seed: int

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, value, least in (
            ("batch_size", batch_size, 1), ("eval_batch_size", eval_batch_size, 1),
            ("num_workers", num_workers, 0),
        ):  # fmt: skip
            if not isinstance(value, int) or value < least:
                raise ConfigError(f"{name} must be an integer >= {least}, got {value!r}")
        self.data_dir = resolve_data_dir(data_dir)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.paired: dict[str, Dataset] = {}
        self.unpaired: dict[str, dict[str, LabeledDataset]] = {}

    def _loader(self, dataset: Dataset, train: bool, drop_last: bool | None = None) -> DataLoader:
        """Batches of ``batch_size``: shuffled (and, unless told, full only) in training."""
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train if drop_last is None else drop_last,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.paired["train"], train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.paired["val"], train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.paired["test"], train=False)

    def train_loader_with_unpaired(
        self, unpaired: dict[str, Dataset] | None = None
    ) -> CombinedLoader:
        """The training pairs and every training item of each modality, unpaired, in one loader.

        Batches are ``{"paired": <pair batch>, "unpaired_<modality>": <item batch>, ...}``; an
        epoch is the longest stream and shorter ones restart (``max_size_cycle``), so methods
        that train on unimodal data (the VAE associator's phase 1) see all of it whatever the
        paired fraction is. A stream smaller than one batch keeps its last, short batch.
        ``unpaired`` (modality -> dataset) streams other unimodal data instead, for datamodules
        whose unpaired data are not their evaluation sets (ACIVW's Kinetics or leftover samples).
        """
        if unpaired is None:
            unpaired = {m: self.unpaired["train"][m] for m in self.modalities}
        streams = {"paired": self.paired["train"]}
        streams.update({f"unpaired_{m}": ds for m, ds in unpaired.items()})
        loaders = {
            name: self._loader(ds, train=True, drop_last=len(ds) >= self.batch_size)
            for name, ds in streams.items()
        }
        return CombinedLoader(loaders, mode="max_size_cycle")

    def pair_dataset(self, split: str) -> Dataset:
        """The fixed pairs of ``split`` (validation/test), for cross-modal retrieval."""
        if split not in self.paired:
            raise ConfigError(
                f"{type(self).__name__} has no split {split!r} (has {list(self.paired)}); "
                "set the evaluation's val_split / final_split to one it has"
            )
        return self.paired[split]

    def eval_dataset(self, split: str, modality: str) -> LabeledDataset:
        """The whole ``split`` of one modality, with evaluation transforms, for callbacks."""
        if split not in self.unpaired:
            raise ConfigError(
                f"{type(self).__name__} has no split {split!r} (has {list(self.unpaired)}); "
                "set the evaluation's val_split / final_split to one it has"
            )
        return self.unpaired[split][modality]
