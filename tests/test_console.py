"""What a person sees: one table of headline metrics at the end, every metric behind
``--all_metrics``, the progress bar's epoch total, no known third-party noise."""

from __future__ import annotations

import logging
import warnings
from types import SimpleNamespace

from assoc_lightning.cli import main, quiet_known_noise
from assoc_lightning.eval.results import HEADLINE, ResultsWriter
from assoc_lightning.utils.progress import StepsProgressBar
from tests.conftest import ROOT, TINY_SPEAKERS


def test_headline_selection():
    keep = ["knn_top1/image", "linear_top1/audio", "retrieval/a2i_class_r1", "retrieval/i2a_map",
            "cluster_purity", "crossmodal_acc/audio2image", "localization/peak_acc",
            "transfer/spoken_commands/linear_top1", "knn_majority_top1/audio"]  # fmt: skip
    drop = ["knn_top1_k20/image", "retrieval/a2i_class_r3", "retrieval/a2i_medr",
            "knn_majority_k/audio", "localization/ciou_mean", "transfer/x/knn_k"]  # fmt: skip
    assert all(HEADLINE.search(m) for m in keep)
    assert not any(HEADLINE.search(m) for m in drop)


def test_summary_table_holds_the_newest_headline_values_per_split(caplog):
    writer = ResultsWriter()
    t = SimpleNamespace(current_epoch=3)
    with caplog.at_level("INFO"):
        writer.announce(t, "val", {"knn_top1/image": 0.5, "knn_top1_k20/image": 0.4})
        t.current_epoch = 7
        writer.announce(t, "val", {"knn_top1/image": 0.75})
        writer.announce(t, "test", {"knn_top1/image": 0.8, "linear_top1/image": 0.9})
    assert not [r for r in caplog.records if "knn_top1" in r.getMessage()]  # quiet by default
    table = writer.summary()
    assert [c.header for c in table.columns] == ["metric", "val (epoch 7)", "test (epoch 7)"]
    rows = list(zip(*[list(c.cells) for c in table.columns], strict=True))
    assert rows == [("knn_top1/image", "0.7500", "0.8000"), ("linear_top1/image", "-", "0.9000")]
    loud = ResultsWriter(verbose=True)
    with caplog.at_level("INFO"):
        loud.announce(t, "test", {"knn_top1_k20/image": 0.25})
    assert "[test] knn_top1_k20/image = 0.2500 (epoch 7)" in caplog.text


def test_epoch_total_from_max_steps():
    bar = StepsProgressBar()
    bar._trainer = SimpleNamespace(
        max_epochs=-1, max_steps=300, num_training_batches=4, accumulate_grad_batches=1
    )
    assert bar._get_train_description(74).strip() == "Epoch 74/74"
    bar._trainer.accumulate_grad_batches = 2  # 2 steps per epoch
    assert bar._get_train_description(3).strip() == "Epoch 3/149"
    bar._trainer = SimpleNamespace(max_epochs=12, max_steps=-1, num_training_batches=4)
    assert bar._get_train_description(3).strip() == "Epoch 3/11"


def test_known_noise_is_quiet(caplog):
    quiet_known_noise()
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    with caplog.at_level("INFO", logger=log.name):
        log.info("💡 Tip: For seamless cloud logging ... litlogger")
        log.info("GPU available: False")
    assert "Tip" not in caplog.text and "GPU available" in caplog.text
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        quiet_known_noise()
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1)
    assert not caught


def test_cli_prints_one_summary_table(digits_dir, tmp_path, capsys):
    main([
        "fit", "--config", str(ROOT / "experiments/ig_embedding.yaml"),
        "--data.init_args.data_dir", str(digits_dir),
        "--data.init_args.num_speakers", str(TINY_SPEAKERS),
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    out = capsys.readouterr()
    text = out.out + out.err
    assert text.count("headline metrics") == 1 and "cluster_purity" in text
    assert "[test] " not in text and "[val] " not in text
