"""Cross-modal recognition accuracy on a method whose answers are known; the classifier cache."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.datasets.base import TensorLabeledDataset
from assoc_lightning.eval.callbacks import CrossModalRecognitionCallback
from assoc_lightning.methods import AssociativeMethod


# ---------------------------------------------------------------- recognition callback
class Prototypes(AssociativeMethod):
    """A fake generative method: translating gives the class prototype of the target
    modality for even item indices and the next class's prototype for odd ones."""

    def __init__(self, protos: dict[str, torch.Tensor]):
        super().__init__()
        self.protos = protos
        self.dummy = torch.nn.Linear(1, 1)

    def output_space(self, batch):
        return {m: batch[m] for m in self.protos if m in batch}

    def translate(self, batch, source, target):
        if source == target:
            return batch[source]
        shift = batch["index"] % 2
        return self.protos[target][(batch["label"] + shift) % 4]


def prototype_data(tmp_path):
    """Two modalities, 4 classes; class c lights block c. Modality b has no class 3."""
    protos = {}
    for m, offset in (("a", 0), ("b", 14)):
        p = torch.zeros(4, 1, 28, 28)
        for c in range(4):
            p[c, 0, offset : offset + 14, 7 * c : 7 * c + 7] = 1.0
        protos[m] = p
    g = torch.Generator().manual_seed(0)

    class DM(AssocDataModule):
        modalities, num_classes = ("a", "b"), 4

    dm = DM(data_dir=str(tmp_path), eval_batch_size=7)
    for split, n in (("train", 40), ("test", 24)):
        dm.unpaired[split] = {}
        for m in ("a", "b"):
            classes = 4 if m == "a" else 3
            labels = torch.arange(n) % classes
            x = protos[m][labels] + 0.05 * torch.rand(n, 1, 28, 28, generator=g)
            dm.unpaired[split][m] = TensorLabeledDataset(m, x, labels.tolist())
    return dm, Prototypes(protos)


def test_crossmodal_accuracy_callback_on_a_known_answer_and_classifier_cache(tmp_path):
    dm, method = prototype_data(tmp_path)
    trainer = SimpleNamespace(datamodule=dm, lightning_module=method, global_step=0, loggers=[])
    cb = CrossModalRecognitionCallback(classifier_epochs=60, cache_dir=str(tmp_path / "cache"))
    out = cb.compute(None, tmp_path, "test", trainer)
    assert out["recognition_acc/a"] == out["recognition_acc/b"] == 1.0
    assert out["recon_acc/a"] == out["recon_acc/b"] == 1.0  # identity reconstructions
    # a -> b: only classes b has (0, 1, 2) are queries; even indices hit, odd ones miss
    test_a = dm.unpaired["test"]["a"]
    queries = np.flatnonzero(test_a.labels < 3)
    assert out["crossmodal_acc/a2b"] == pytest.approx(np.mean(queries % 2 == 0))
    assert out["crossmodal_acc/b2a"] == pytest.approx(0.5)
    assert (tmp_path / "crossmodal_test_step0_a2b.png").is_file()
    assert cb.trained == ["a", "b"] and len(list((tmp_path / "cache").glob("*.pt"))) == 2
    # a second callback loads both classifiers instead of training them
    again = CrossModalRecognitionCallback(classifier_epochs=60, cache_dir=str(tmp_path / "cache"))
    assert again.compute(None, tmp_path, "test", trainer) == out and again.trained == []
    # different training data (or front-end) -> a different key -> trained anew
    dm.unpaired["train"]["a"].data = dm.unpaired["train"]["a"].data * 0.9
    again.compute(None, tmp_path, "test", trainer)
    assert again.trained == ["a"]


def test_callback_skips_methods_that_do_not_generate(tmp_path):
    dm, _ = prototype_data(tmp_path)
    trainer = SimpleNamespace(
        datamodule=dm, lightning_module=AssociativeMethod(), global_step=0, loggers=[]
    )
    assert CrossModalRecognitionCallback().compute(None, tmp_path, "test", trainer) == {}


def test_a_damaged_cached_classifier_is_trained_again(tmp_path):
    dm, method = prototype_data(tmp_path)
    trainer = SimpleNamespace(datamodule=dm, lightning_module=method, global_step=0, loggers=[])
    cache = tmp_path / "cache"
    out = CrossModalRecognitionCallback(classifier_epochs=60, cache_dir=str(cache)).compute(
        None, tmp_path, "test", trainer
    )
    for path in cache.glob("*.pt"):
        path.write_bytes(path.read_bytes()[:64])
    again = CrossModalRecognitionCallback(classifier_epochs=60, cache_dir=str(cache))
    with pytest.warns(UserWarning, match="does not load"):
        assert again.compute(None, tmp_path, "test", trainer) == out
    assert again.trained == ["a", "b"]
