"""What methods and evaluations need from a datamodule: declared, checked, clearly refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from assoc_lightning.data import CMCRDigitsDataModule, DigitsDataModule
from assoc_lightning.data.protocols import (
    CaptionMemoryData,
    DatamoduleContractError,
    EvaluationData,
    SpaceTrainingData,
    members,
    providers,
    require,
)
from assoc_lightning.methods import CMCR
from assoc_lightning.nn.towers import ToyContrastiveSpace


def test_members_and_providers():
    assert members(CaptionMemoryData) == ["captions", "cache_dir", "fingerprint", "memory"]
    assert providers(CaptionMemoryData) == ["CMCRDataModule", "CMCRDigitsDataModule"]
    assert providers(SpaceTrainingData) == ["CMCRDigitsDataModule"]
    assert "DigitsDataModule" in providers(EvaluationData)


def test_require_names_what_is_missing_and_who_has_it():
    dm = DigitsDataModule()
    require(dm, EvaluationData, "evaluation")  # every datamodule offers the eval sets
    with pytest.raises(DatamoduleContractError) as err:
        require(dm, CaptionMemoryData, "CMCR")
    msg = str(err.value)
    assert "CMCR needs a datamodule with CaptionMemoryData" in msg
    assert "DigitsDataModule lacks captions, cache_dir, fingerprint, memory" in msg
    assert "Datamodules that have it: CMCRDataModule, CMCRDigitsDataModule" in msg
    require(CMCRDigitsDataModule(), CaptionMemoryData, "CMCR")
    with pytest.raises(DatamoduleContractError, match="no datamodule lacks"):
        require(None, EvaluationData, "evaluation")


def test_cmcr_refuses_a_datamodule_without_captions_in_setup():
    model = CMCR(ToyContrastiveSpace("image"), ToyContrastiveSpace("audio"))
    model.trainer = SimpleNamespace(datamodule=DigitsDataModule())  # what setup reads
    with pytest.raises(DatamoduleContractError, match="CMCRDigitsDataModule"):
        CMCR.setup(model, "fit")
