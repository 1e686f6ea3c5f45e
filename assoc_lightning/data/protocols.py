"""What a method or an evaluation may ask of a datamodule, declared instead of discovered.

Each need is a ``typing.Protocol``; whoever needs it calls :func:`require` in ``setup`` (or
before evaluating) and gets one clear error naming the missing members and the datamodules
that have them, instead of an ``AttributeError`` deep inside a run. This module is the
contract only: methods and evaluations may import it, it imports nothing of the data layer
(the datamodules that satisfy a protocol are looked up when the error is written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from assoc_lightning.errors import AssocError


class DatamoduleContractError(AssocError, TypeError):
    """A datamodule lacks what the method or evaluation using it needs."""


class EvaluationData(Protocol):
    """What the evaluation callbacks read: single-modality eval sets and fixed pairs."""

    modalities: tuple[str, ...]
    num_classes: int
    eval_batch_size: int
    num_workers: int
    data_dir: Path

    def eval_dataset(self, split: str, modality: str) -> Dataset: ...

    def pair_dataset(self, split: str) -> Dataset: ...


class CaptionMemoryData(Protocol):
    """C-MCR's data: captions (the overlapping modality), unpaired memories, a cache folder
    and a fingerprint that changes whenever the captions or the memories do."""

    captions: list[str]
    cache_dir: Path
    fingerprint: str

    def memory(self, modality: str) -> Dataset: ...


class SpaceTrainingData(Protocol):
    """Data to train locally built stand-in towers (C-MCR's offline default)."""

    def space_training_data(
        self, modality: str
    ) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]: ...


def members(protocol: type) -> list[str]:
    """The attribute and method names a protocol declares, in declaration order."""
    names = list(getattr(protocol, "__annotations__", {}))
    names += [n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")]
    return names


def _class_has(cls: type, name: str) -> bool:
    return hasattr(cls, name) or any(
        name in vars(k).get("__annotations__", {}) for k in cls.__mro__
    )


def providers(protocol: type) -> list[str]:
    """Names of the project's datamodule classes that declare every member of ``protocol``."""
    from assoc_lightning.data import DATAMODULES  # the contract never imports the data layer

    return sorted(
        cls.__name__
        for cls in set(DATAMODULES.values())
        if all(_class_has(cls, m) for m in members(protocol))
    )


def require(datamodule: Any, protocol: type, who: str) -> None:
    """Raise :class:`DatamoduleContractError` unless ``datamodule`` has every member of
    ``protocol``; ``who`` (e.g. ``"CMCR"``) is named in the message."""
    missing = [
        m for m in members(protocol) if not (hasattr(type(datamodule), m) or hasattr(datamodule, m))
    ]
    if datamodule is not None and not missing:
        return
    have = type(datamodule).__name__ if datamodule is not None else "no datamodule"
    offered = ", ".join(providers(protocol)) or "none yet"
    raise DatamoduleContractError(
        f"{who} needs a datamodule with {protocol.__name__} "
        f"({', '.join(members(protocol))}); {have} lacks {', '.join(missing or members(protocol))}. "
        f"Datamodules that have it: {offered}."
    )


__all__ = [
    "CaptionMemoryData",
    "DatamoduleContractError",
    "EvaluationData",
    "SpaceTrainingData",
    "members",
    "providers",
    "require",
]
