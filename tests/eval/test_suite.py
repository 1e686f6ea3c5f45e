"""EvaluationSuite: children as typed arguments with their own defaults, one shared feature
cache (each split embedded once per evaluation), and the same numbers as standalone callbacks."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from lightning.pytorch import Trainer

from assoc_lightning.cli import main
from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.datasets.base import TensorLabeledDataset
from assoc_lightning.data.datasets.pairing import ClassPairedDataset
from assoc_lightning.eval.callbacks import (
    EvaluationSuite,
    KNNCallback,
    LinearProbeCallback,
    RetrievalCallback,
)
from assoc_lightning.methods.base import AssociativeMethod
from tests.conftest import ROOT


class Blobs(AssocDataModule):
    """Two modalities of 3-d points around one centre per class, fixed pairs per split
    (``num_classes`` 0: the same points declared unlabelled, as SoundNet-Flickr videos)."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__(batch_size=8, eval_batch_size=1024)
        self.num_classes = num_classes

    def setup(self, stage=None):
        g = torch.Generator().manual_seed(0)
        centres = torch.eye(3) * 4
        for split, n in (("train", 30), ("val", 12), ("test", 12)):
            labels = [i % 3 for i in range(n)]
            sets = {
                m: TensorLabeledDataset(m, centres[labels] + torch.randn(n, 3, generator=g), labels)
                for m in ("image", "audio")
            }
            self.unpaired[split] = sets
            self.paired[split] = ClassPairedDataset(sets["image"], {"audio": sets["audio"]}, True)


class Counting(AssociativeMethod):
    """embed = the input; counts its calls."""

    name = "counting"

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.calls = 0

    def embed(self, batch):
        self.calls += 1
        return {m: batch[m] + 0 * self.w for m in ("image", "audio") if m in batch}

    def compute_losses(self, batch):
        return {"loss": self.w * 0}


def run_test(callbacks, tmp_path, num_classes: int = 3):
    method = Counting()
    trainer = Trainer(
        callbacks=callbacks, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.test(method, datamodule=Blobs(num_classes), verbose=False)
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    return method.calls, {json.loads(x)["metric"]: json.loads(x)["value"] for x in lines}


def test_children_share_one_cache_and_match_standalone_callbacks(tmp_path):
    suite = EvaluationSuite(KNNCallback(ks=(5,)), LinearProbeCallback(), RetrievalCallback())
    calls, metrics = run_test([suite], tmp_path / "suite")
    # train, val and test of each modality once, plus the test pairs: 7 embeds for 3 children
    assert calls == 7
    alone_calls, alone = run_test(
        [KNNCallback(ks=(5,)), LinearProbeCallback(), RetrievalCallback()], tmp_path / "alone"
    )
    assert alone_calls == 13  # each standalone callback embeds what it reads itself
    assert metrics == alone and metrics["knn_top1/image"] == pytest.approx(1.0)


def test_label_based_children_skip_unlabelled_data_with_one_message(tmp_path, caplog):
    suite = EvaluationSuite(KNNCallback(ks=(5,)), LinearProbeCallback(), RetrievalCallback())
    with caplog.at_level("INFO"):
        calls, metrics = run_test([suite], tmp_path, num_classes=0)
    # the test pairs (retrieval and its examples), each modality once more for the t-SNE
    assert calls == 3 and metrics and all(k.startswith("retrieval/") for k in metrics)
    skipped = [r.message for r in caplog.records if "unlabelled" in r.message]
    assert len(skipped) == 2 and any("KNNCallback" in m for m in skipped)


def test_switched_off_children_do_not_run(tmp_path):
    suite = EvaluationSuite(knn=None, linear_probe=None, tsne=None)
    calls, metrics = run_test([suite], tmp_path)
    assert calls == 1 and all(k.startswith("retrieval/") for k in metrics)
    kinds = [type(p).__name__.removeprefix("LazyInstance_") for p in suite.parts]
    assert kinds == ["RetrievalCallback", "RetrievalExamplesCallback"]


def test_print_config_shows_every_childs_defaults_and_yaml_sets_them(capsys, tmp_path):
    config = tmp_path / "eval.yaml"
    config.write_text("eval:\n  knn:\n    bank_chunk: 4096\n  linear_probe: null\n")
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(ROOT / "experiments/cmcr.yaml"), "--config", str(config),
              "--eval.retrieval.ks", "[1, 3]", "--print_config"])  # fmt: skip
    suite = yaml.safe_load(capsys.readouterr().out)["eval"]
    assert suite["knn"]["init_args"]["bank_chunk"] == 4096
    assert suite["knn"]["init_args"]["majority_k_grid"] == [7, 9, 11, 13, 15]
    assert suite["linear_probe"] is None
    assert suite["retrieval"]["init_args"]["ks"] == [1, 3]
    assert suite["retrieval"]["init_args"]["final_split"] == "test"
