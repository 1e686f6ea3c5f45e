"""TransferDataModule: any registry dataset's splits as an evaluation-only transfer set.

The transfer evaluation (``eval/callbacks/transfer.py``) embeds another data set than the
run's: this datamodule opens the registry's dataset ``dataset`` (``data/datasets/registry.py``)
split by split, on first use, and offers them as single-modality eval sets. It has no pairs
and no training loader: it is named under ``eval.transfer``, never as the run's ``data``.
"""

from __future__ import annotations

import copy

from torch.utils.data import Dataset

from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.datasets import registry
from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.errors import ConfigError

DEFAULT_SPLITS = {"train": "train", "val": "val", "test": "test"}


class RenamedModality(Dataset):
    """A labelled dataset whose items carry their sample under another modality name (a
    method trained on modalities named e.g. ``mnist`` embeds an image set as ``mnist``)."""

    def __init__(self, dataset: LabeledDataset, modality: str) -> None:
        self.dataset, self.modality = dataset, modality

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):  # labels, clip_ids, num_corrupt ... of the wrapped set
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int) -> dict:
        item = dict(self.dataset[index])
        item[self.modality] = item.pop(self.dataset.modality)
        return item


class TransferDataModule(AssocDataModule):
    """One registry dataset as a transfer set: ``eval_dataset(split, modality)`` only.

    Args:
        dataset: the registry name (``spoken_commands``, ``dcase2018``, ``mnist``, ...).
        options: keyword arguments of the dataset's opener (e.g. ``{sample_rate: 16000}``).
        classes: the classes to read, for datasets that take them by name (Speech Commands
            words); labelled by position in this list.
        modality: the name items carry their sample under (``None``: the dataset's own,
            ``audio`` or ``image``), i.e. the method's modality that embeds it.
        splits: our split name -> the dataset's (``None``: train, val and test as they are;
            leave ``val`` out for a dataset without one and set the evaluation's
            ``select_split: null``).
        data_dir: where the dataset lives or is generated (``None``: the run's datamodule's
            ``data_dir`` when the transfer evaluation attaches it, else ``$ASSOC_DATA_DIR``).
        eval_batch_size, num_workers: as ``AssocDataModule`` (``None``: the run's
            datamodule's, else 256 and 0), so features round as the run's own do.
        seed: as ``AssocDataModule``.
    """

    def __init__(
        self,
        dataset: str,
        options: dict | None = None,
        classes: list | None = None,
        modality: str | None = None,
        splits: dict[str, str] | None = None,
        data_dir: str | None = None,
        eval_batch_size: int | None = None,
        num_workers: int | None = None,
        seed: int = 0,
    ) -> None:
        batch, workers = eval_batch_size or 256, 0 if num_workers is None else num_workers
        super().__init__(data_dir, batch, batch, workers, seed)
        info = registry.dataset_info(dataset)
        self.dataset, self.name = dataset, dataset
        self.options = dict(options or {})
        self.classes = list(classes) if classes is not None else None
        self.modalities = (modality or info.modality,)
        self.splits = dict(DEFAULT_SPLITS if splits is None else splits)
        self._follow = {
            "data_dir": data_dir is None,
            "eval_batch_size": eval_batch_size is None,
            "num_workers": num_workers is None,
        }
        self._opened: dict[str, Dataset] = {}

    def attach(self, datamodule) -> None:
        """Called by the transfer evaluation with the run's datamodule: what was left unset
        follows it, so the transfer set lives (or is generated) next to the run's data."""
        for name, follow in self._follow.items():
            value = getattr(datamodule, name, None)
            if follow and value is not None and value != getattr(self, name):
                setattr(self, name, value)
                if name == "data_dir":
                    self._opened = {}

    def for_fold(self, fold: int) -> TransferDataModule:
        """This transfer set with the opener's ``fold`` option set to ``fold`` (the transfer
        evaluation's ``folds`` evaluates one copy per fold, e.g. ESC-50's five); what follows
        the run's datamodule still does."""
        other = copy.copy(self)
        other.options = {**self.options, "fold": fold}
        other._follow, other._opened = dict(self._follow), {}
        return other

    @property
    def num_classes(self) -> int:
        """The dataset's class count: ``classes``, its class names, or the labels opened."""
        if self.classes is not None:
            return len(self.classes)
        for ds in self._opened.values():
            names = getattr(ds, "class_names", None)
            if names:
                return len(names)
        return max((int(ds.labels.max()) + 1 for ds in self._opened.values()), default=0)

    def setup(self, stage: str | None = None) -> None:
        """Nothing to do: each split opens on first use (generated sets are generated then)."""

    def eval_dataset(self, split: str, modality: str) -> Dataset:
        if modality not in self.modalities:
            raise ConfigError(
                f"transfer set {self.dataset!r} holds {self.modalities[0]!r}, not {modality!r}"
            )
        if split not in self.splits:
            raise ConfigError(
                f"transfer set {self.dataset!r} has no split {split!r} (splits: {self.splits}); "
                "map one in its `splits`, or set the transfer evaluation's select_split: null"
            )
        if split not in self._opened:
            ds = registry.open_split(
                self.dataset, self.data_dir, self.splits[split], self.classes, self.options
            )
            self._opened[split] = ds if ds.modality == modality else RenamedModality(ds, modality)
        return self._opened[split]

    def pair_dataset(self, split: str) -> Dataset:
        raise ConfigError(f"transfer set {self.dataset!r} is single-modality: it has no pairs")

    def train_dataloader(self):
        raise ConfigError(
            "TransferDataModule is an evaluation set: name it under eval.transfer, not as data"
        )

    val_dataloader = test_dataloader = train_dataloader
