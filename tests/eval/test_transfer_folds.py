"""The transfer evaluation's fold mean (ESC-50 / DCASE 2013 run once per fold through
TransferDataModule.for_fold) and its linear-SVM classifier, checked against scikit-learn and
against one-fold runs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from assoc_lightning.data.datamodules.transfer import TransferDataModule
from assoc_lightning.eval.callbacks import TransferEvalCallback
from tests.eval.test_transfer import C_GRID, K_GRID, Segments, clip_top1, run
from tests.fixtures.dcase2013 import make_dcase2013
from tests.fixtures.esc50 import make_esc50

KEYS = ("knn_top1", "knn_k", "knn_clip_top1", "linear_top1", "linear_clip_top1")


@pytest.mark.parametrize("select", [True, False], ids=["C_on_val", "grid_middle"])
def test_linear_svm_matches_scikit_learn_with_clip_level_mean_scores(tmp_path, select):
    data = Segments()
    cb = TransferEvalCallback(
        data, name="blobs", k_grid=K_GRID, c_grid=C_GRID, classifier="linear_svm",
        select_split="val" if select else None,
    )  # fmt: skip
    got = run(cb, tmp_path)
    (xtr, ytr, _), (xva, yva, _), (xte, yte, cte) = (
        data.split(s) for s in ("train", "val", "test")
    )
    svms = {
        c: make_pipeline(StandardScaler(), LinearSVC(C=c, random_state=0)).fit(xtr, ytr)
        for c in C_GRID
    }
    c = max(C_GRID, key=lambda c: (svms[c].score(xva, yva), -C_GRID.index(c))) if select else 1.0
    assert got["transfer/blobs/linear_top1"] == pytest.approx(svms[c].score(xte, yte), abs=1e-9)
    clip = clip_top1(svms[c].decision_function(xte), yte, cte)
    assert got["transfer/blobs/linear_clip_top1"] == pytest.approx(clip, abs=1e-9)
    logistic = run(TransferEvalCallback(data, name="blobs", k_grid=K_GRID), tmp_path / "lr")
    assert logistic["transfer/blobs/knn_top1"] == got["transfer/blobs/knn_top1"]  # kNN as before


def test_fold_mean_over_the_five_esc50_folds_matches_one_fold_runs(tmp_path):
    make_esc50(tmp_path / "data", seconds=0.5, noise=0.5)  # noisy: the folds' numbers differ
    options = {"seconds": 0.005, "sample_rate": 44100}  # 220 samples, as read: a hard task

    def transfer(**kw):
        opts = {**options, **kw.pop("options", {})}
        data = TransferDataModule("esc50", options=opts, data_dir=str(tmp_path / "data"))
        return TransferEvalCallback(data, k_grid=(1, 3), classifier="linear_svm", **kw)

    got = run(transfer(folds=[1, 2, 3, 4, 5]), tmp_path / "folds")
    per_fold = {f"transfer/esc50/fold{f}/{k}" for f in range(1, 6) for k in KEYS}
    assert set(got) == per_fold | {f"transfer/esc50/{k}" for k in KEYS if k != "knn_k"}
    for key in ("knn_top1", "linear_top1", "linear_clip_top1"):
        folds = [got[f"transfer/esc50/fold{f}/{key}"] for f in range(1, 6)]
        assert got[f"transfer/esc50/{key}"] == pytest.approx(np.mean(folds))
    assert len({got[f"transfer/esc50/fold{f}/knn_top1"] for f in range(1, 6)}) > 1
    one = run(transfer(options={"fold": 2}), tmp_path / "fold2")
    assert one == pytest.approx(
        {k.replace("fold2/", ""): v for k, v in got.items() if "fold2/" in k}
    )


def test_dcase2013_folds_report_recording_level_means_and_folds_need_for_fold(tmp_path):
    make_dcase2013(tmp_path / "data")
    data = TransferDataModule(
        "dcase2013", options={"subclip_seconds": 0.004, "sample_rate": 44100, "num_subclips": 3},
        data_dir=str(tmp_path / "data"),
    )  # fmt: skip
    cb = TransferEvalCallback(data, k_grid=(1, 3), c_grid=(0.1,), max_iter=200, folds=[1, 2])
    got = run(cb, tmp_path / "run")  # separable: one small C keeps L-BFGS short
    assert (
        got["transfer/dcase2013/knn_clip_top1"] == 1.0 == got["transfer/dcase2013/fold2/knn_top1"]
    )
    assert "transfer/dcase2013/fold1/linear_clip_top1" in got
    assert cb.data_for(2).eval_dataset("test", "audio").fold == 2  # re-opened per fold
    assert data.options == {"subclip_seconds": 0.004, "sample_rate": 44100, "num_subclips": 3}
    with pytest.raises(ValueError, match="for_fold"):
        run(TransferEvalCallback(Segments(), name="blobs", folds=[1]), tmp_path / "no")
    with pytest.raises(ValueError, match="classifier must be one of"):
        TransferEvalCallback(data, classifier="rbf")
