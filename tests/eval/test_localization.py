"""Localization: cIoU, success rate, AUC and peak accuracy on tiny maps computed by hand; the
callback end to end on a method whose heat maps are known, on 1 and (simulated) 4 ranks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from torch.utils.data import Dataset

from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.eval.callbacks.localization import (
    LocalizationCallback,
    merge_scores,
    score_shard,
)
from assoc_lightning.eval.metrics.localization import (
    binarize,
    ciou,
    heat_map_ciou,
    peak_accuracy,
    peak_cells,
    success_auc,
    success_rate,
)
from assoc_lightning.eval.pictures import heatmap_overlays
from assoc_lightning.methods.base import AssociativeMethod

# the consensus map of tests/data/io/test_boxes.py (three annotators on a 4 x 4 grid)
G = torch.tensor(
    [[0.5, 1.0, 0.5, 0.0], [0.5, 1.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.5]]
)


def test_ciou_by_hand():
    top_left = torch.zeros(4, 4, dtype=torch.bool)
    top_left[:2, :2] = True  # covers 0.5 + 1 + 0.5 + 1 = 3 of sum(g) = 4.5, nothing outside
    bottom = torch.zeros(4, 4, dtype=torch.bool)
    bottom[3] = True  # covers 0.5, and 3 pixels where g = 0
    out = ciou(torch.stack([top_left, bottom]), torch.stack([G, G]))
    assert out.dtype == torch.float64
    assert out.tolist() == pytest.approx([3 / 4.5, 0.5 / (4.5 + 3)])


def test_binarize_top_half_like_lvs_and_threshold_mode():
    # 5 values 0..4: the value at rank int(5 * 0.5) = 2 is 0.5 after min-max; above it: 3, 4
    assert binarize(torch.arange(5.0).view(1, 1, 5))[0, 0].tolist() == [0, 0, 0, 1, 1]
    # 4 values: rank 2 is 2/3, only the maximum lies above it (LVS keeps strictly above)
    assert binarize(torch.arange(4.0).view(1, 2, 2)).sum() == 1
    # three pixels tie at the maximum: they stay positive (LVS keeps pixels already at 1)
    assert binarize(torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])).sum() == 3
    assert binarize(torch.full((1, 3, 3), 7.0)).sum() == 0  # a flat map marks nothing
    thr = binarize(torch.arange(5.0).view(1, 1, 5), top_fraction=None, threshold=0.5)
    assert thr[0, 0].tolist() == [0, 0, 1, 1, 1]  # normalized >= 0.5


def test_heat_map_ciou_resizes_bilinearly_before_thresholding():
    # [[1, 0], [0, 0]] upsampled to 4 x 4 (half-pixel centres) is the outer product of
    # [1, .75, .25, 0] with itself; the rank-8 value is .1875, so 6 pixels stay: the
    # top-left 2 x 2 (inside g) and (0, 2), (2, 0) (outside): cIoU = 4 / (4 + 2)
    gt = torch.zeros(1, 4, 4)
    gt[0, :2, :2] = 1.0
    heat = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    assert heat_map_ciou(heat, gt).item() == pytest.approx(2 / 3)


def test_success_rate_and_auc_by_hand():
    cious = np.array([0.0, 0.5, 1.0])
    assert success_rate(cious) == pytest.approx(2 / 3)  # >= 0.5 counts
    # rates: 1 at t = 0, 2/3 for t in 0.05..0.5, 1/3 for t in 0.55..1.0 (trapezoids of 0.05)
    by_hand = (1 + 2 / 3) / 2 * 0.05 + 9 * 0.05 * 2 / 3 + (2 / 3 + 1 / 3) / 2 * 0.05 + 9 * 0.05 / 3
    assert success_auc(cious) == pytest.approx(by_hand) == pytest.approx(0.5166666667)
    assert success_auc(np.ones(4)) == pytest.approx(1.0)
    assert success_auc(np.zeros(4)) == pytest.approx(0.025)  # only t = 0 is met


def test_peak_accuracy_on_a_grid():
    heat = torch.zeros(3, 4, 4)
    heat[0, 0, 3] = 1  # cell 1 of a 2 x 2 grid
    heat[1, 3, 0] = 1  # cell 2
    heat[2, 2, 2] = 1  # cell 3
    assert peak_cells(heat, 2).tolist() == [1, 2, 3]
    assert peak_accuracy(heat, torch.tensor([1, 2, 0]), torch.tensor([2, 2, 2])) == pytest.approx(
        2 / 3
    )
    odd = torch.zeros(1, 5, 5)
    odd[0, 2, 3] = 1  # 5 x 5 map, 2 x 2 grid: row 2 * 2 // 5 = 0, column 3 * 2 // 5 = 1
    assert peak_cells(odd, 2).tolist() == [1]
    ties = torch.ones(1, 4, 4)  # ties: the first maximum in row-major order
    assert peak_cells(ties, 2).tolist() == [0]


# ---------------------------------------------------------------- the callback
class QuadrantPairs(Dataset):
    """Six pairs on 8 x 8 images, 2 x 2 grid: pair i's source is quadrant i % 4 (its
    ``gt_map`` and ``target_cell``); pair 5 is not annotated (``gt_map`` all zeros)."""

    def __len__(self):
        return 6

    def __getitem__(self, i):
        gt = quadrant(i % 4) if i < 5 else torch.zeros(8, 8)
        image = torch.full((3, 8, 8), 40 * i, dtype=torch.uint8)
        return {"image": image, "audio": torch.zeros(4), "gt_map": gt, "target_cell": i % 4,
                "grid": 2, "label": 0, "index": i, "pair_id": i}  # fmt: skip


def quadrant(q: int) -> torch.Tensor:
    m = torch.zeros(8, 8)
    r, c = divmod(q, 2)
    m[4 * r : 4 * r + 4, 4 * c : 4 * c + 4] = 1.0
    return m


class Quadrants(AssociativeMethod):
    """Heat maps known in advance: even pairs light their own quadrant, odd ones the next."""

    name = "quadrants"

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def localize(self, batch):
        shift = batch["index"] % 2
        return torch.stack([quadrant(int(q)) for q in (batch["target_cell"] + shift) % 4])

    def compute_losses(self, batch):
        return {"loss": self.w * 0}


class PairsDM(AssocDataModule):
    def __init__(self):
        super().__init__(batch_size=4, eval_batch_size=4)

    def setup(self, stage=None):
        self.paired["test"] = QuadrantPairs()


def test_callback_end_to_end_picture_and_results(tmp_path):
    trainer = Trainer(
        callbacks=[LocalizationCallback(num_pictures=3)], default_root_dir=tmp_path, logger=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    with pytest.warns(UserWarning, match="1 of 6 test pairs have an empty gt_map"):
        trainer.test(Quadrants(), datamodule=PairsDM(), verbose=False)
    lines = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()]
    metrics = {r["metric"]: r["value"] for r in lines}
    # cIoU 1 for pairs 0, 2, 4 and 0 for 1, 3 (pair 5 left out): 3 / 5 succeed;
    # AUC = (1 + .6) / 2 * .05 + .6 * .95; the peaks hit for the even pairs, 3 of 6
    assert metrics == pytest.approx({
        "localization/ciou": 0.6, "localization/auc": 0.61, "localization/ciou_mean": 0.6,
        "localization/peak_acc": 0.5,
    })  # fmt: skip
    assert all(r["method"] == "quadrants" and r["split"] == "test" for r in lines)
    assert (tmp_path / "localization_test_step0.png").stat().st_size > 0


def test_ranks_scores_are_merged_without_sampler_padding():
    dm, method = PairsDM(), Quadrants()
    dm.setup()
    pairs = dm.pair_dataset("test")
    one = merge_scores([score_shard(method, pairs, 4, num_pictures=2)], len(pairs))
    # 4 ranks: 8 slots for 6 pairs, the sampler repeats pairs 0 and 1
    shards = [score_shard(method, pairs, 2, num_pictures=2, replicas=4, shard=r) for r in range(4)]
    assert sum(len(s.indices) for s in shards) == 8
    four = merge_scores(shards, len(pairs))
    assert torch.equal(one["hits"], four["hits"]) and four["hits"].tolist() == [1, 0, 1, 0, 1, 0]
    assert torch.allclose(one["ciou"], four["ciou"], equal_nan=True)
    assert [ex["index"] for ex in four["examples"]] == [0, 1]
    with pytest.raises(RuntimeError, match="gathered 4 distinct items but the dataset has 6"):
        merge_scores(shards[:2], len(pairs))


def test_method_without_localize_is_skipped_once(tmp_path, caplog):
    class NoMaps(Quadrants):
        localize = None

    trainer = Trainer(
        callbacks=[LocalizationCallback()], default_root_dir=tmp_path, logger=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    with caplog.at_level("INFO"):
        trainer.test(NoMaps(), datamodule=PairsDM(), verbose=False)
    assert "skipped, NoMaps has no localize(batch)" in caplog.text
    assert not (tmp_path / "results.jsonl").exists()


def test_overlay_picture_written(tmp_path):
    images = torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8)
    heat = torch.rand(2, 4, 4)
    gts = torch.stack([quadrant(0), quadrant(3)])
    path = tmp_path / "pics" / "overlay.png"
    heatmap_overlays(images, heat, path, gt_maps=gts, boxes=[[(0, 0, 8, 8)], []], titles=["a", "b"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    floats = tmp_path / "floats.png"
    heatmap_overlays(torch.randn(1, 3, 16, 16), heat[:1], floats)
    assert floats.stat().st_size > 0
