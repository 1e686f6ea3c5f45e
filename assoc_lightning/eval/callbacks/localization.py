"""Sound-source localization on the fixed pairs of a split, for methods that draw heat maps.

The optional promise a method makes (others are skipped with one message)::

    localize(batch) -> Tensor[N, H, W]   # per pair: where in its image its sound comes from
                                         # (higher = more likely), from both modalities

The pairs are the datamodule's ``localization_dataset(split)`` where it has one (the
embedded canvases: ``ClassPairedDataModule(canvas_grid=...)``), else ``pair_dataset(split)``.
Their items may carry, per pair:

- ``gt_map``: float ``[H', W']`` in [0, 1], the ground-truth map on the image grid (e.g. the
  Senocak consensus map, ``FlickrSoundNetPairs(gt_map=True)``); all zeros: not annotated.
  Gives ``localization/ciou`` (success rate at cIoU >= ``success_at``), ``localization/auc``
  and ``localization/ciou_mean`` (``eval/metrics/localization.py``), over annotated items.
- ``target_cell`` and ``grid`` (ints): the row-major cell of a ``grid`` x ``grid`` partition
  of the image that holds the source (the embedded check). Gives ``localization/peak_acc``.

Each rank scores its shard (per item, from the heat map resized to ``gt_map``'s grid); the
per-item scores are gathered with their dataset indices, the sampler's padded duplicates
dropped and the count checked (``eval/bank.py: merge_shards``), so only N numbers travel, not
N heat maps. A picture of the first ``num_pictures`` pairs (image, heat map overlay, ground
truth) is saved as ``<log_dir>/localization_<split>_step<N>.png`` and sent to wandb.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities import move_data_to_device, rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from assoc_lightning.errors import RunError
from assoc_lightning.eval.bank import merge_shards
from assoc_lightning.eval.callbacks.base import EmbeddingEvalCallback, evaluation_data, log_image
from assoc_lightning.eval.metrics.localization import (
    heat_map_ciou,
    peak_hits,
    success_auc,
    success_rate,
)
from assoc_lightning.eval.pictures import heatmap_overlays
from assoc_lightning.utils.dist import gather_objects, rank, world_size


@dataclass
class Shard:
    """One rank's per-item scores (NaN: not scored) and its first few pairs for the picture."""

    indices: torch.Tensor
    ciou: torch.Tensor | None = None  # fp64 [n]; NaN where gt_map is empty
    hits: torch.Tensor | None = None  # fp64 [n], 1.0 / 0.0
    examples: list[dict] = field(default_factory=list)  # {"index", "image", "heat", "gt_map"}


def _check(heat: torch.Tensor, n: int, gt: torch.Tensor | None) -> None:
    if heat.dim() != 3 or heat.size(0) != n:
        raise RunError(
            f"localize(batch) must return [N, H, W] for N={n} pairs, got {tuple(heat.shape)}"
        )
    if gt is not None and (gt.dim() != 3 or gt.size(0) != n):
        raise RunError(f"batch['gt_map'] must be [N, H, W] for N={n} pairs, got {tuple(gt.shape)}")


@torch.no_grad()
def score_shard(
    module,
    dataset: Dataset,
    batch_size: int = 256,
    num_workers: int = 0,
    top_fraction: float | None = 0.5,
    threshold: float = 0.5,
    num_pictures: int = 0,
    replicas: int = 1,
    shard: int = 0,
) -> Shard:
    """Heat maps of this rank's share of ``dataset`` (``shard`` of ``replicas``, the
    DistributedSampler's split, no shuffling) scored per item."""
    sampler = None
    if replicas > 1:
        sampler = DistributedSampler(dataset, num_replicas=replicas, rank=shard, shuffle=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    idx, cious, hits, examples = [], [], [], []
    was_training = module.training
    module.eval()
    try:
        for batch in loader:
            batch = move_data_to_device(batch, module.device)
            heat = module.localize(batch).float().cpu()
            index = batch["index"].cpu()
            gt = batch["gt_map"].float().cpu() if "gt_map" in batch else None
            _check(heat, len(index), gt)
            idx.append(index)
            if gt is not None:
                c = heat_map_ciou(heat, gt, top_fraction, threshold)
                cious.append(torch.where(gt.flatten(1).sum(1) > 0, c, torch.nan))
            if "target_cell" in batch and "grid" in batch:
                h = peak_hits(heat, batch["target_cell"].cpu(), batch["grid"].cpu())
                hits.append(h.double())
            for j in torch.nonzero(index < num_pictures).flatten().tolist():
                ex = {"index": int(index[j]), "heat": heat[j]}
                if "image" in batch:
                    ex["image"] = batch["image"][j].cpu()
                if gt is not None:
                    ex["gt_map"] = gt[j]
                if "target_cell" in batch and "grid" in batch and "image" in batch:
                    ex["box"] = cell_box(
                        int(batch["target_cell"][j]), int(batch["grid"][j]), batch["image"].shape
                    )
                examples.append(ex)
    finally:
        module.train(was_training)
    return Shard(
        torch.cat(idx) if idx else torch.zeros(0, dtype=torch.long),
        torch.cat(cious) if cious else None,
        torch.cat(hits) if hits else None,
        examples,
    )


def cell_box(cell: int, grid: int, shape: torch.Size) -> tuple[float, float, float, float]:
    """The row-major ``cell`` of a ``grid`` x ``grid`` partition of images of ``shape``
    ``[..., H, W]`` as ``(xmin, ymin, xmax, ymax)`` pixels."""
    h, w = shape[-2] / grid, shape[-1] / grid
    r, c = divmod(cell, grid)
    return (c * w, r * h, (c + 1) * w, (r + 1) * h)


def merge_scores(shards: list[Shard], expected: int) -> dict:
    """Per-item scores of every rank, by dataset index, padding duplicates dropped, count
    checked: ``{"ciou": [N] or None, "hits": [N] or None, "examples": [...] by index}``."""
    merge_shards([(s.indices, s.indices[:, None], s.indices) for s in shards], expected)
    out = {}
    for name in ("ciou", "hits"):
        scores = [getattr(s, name) for s in shards]
        if all(x is None for x in scores):
            out[name] = None
            continue
        parts = [(s.indices, x[:, None], s.indices) for s, x in zip(shards, scores, strict=True)]
        out[name] = merge_shards(parts, expected).embeddings[:, 0]
    seen = {}
    for s in shards:
        for ex in s.examples:
            seen.setdefault(ex["index"], ex)
    out["examples"] = [seen[i] for i in sorted(seen)]
    return out


class LocalizationCallback(EmbeddingEvalCallback):
    """cIoU / AUC against ground-truth maps and peak accuracy on a grid, for methods with
    ``localize(batch) -> Tensor[N, H, W]`` (see the module docstring for the batch keys).

    Args:
        top_fraction: fraction of each min-max normalized heat map kept as the predicted
            source (LVS: the top half); ``None``: pixels >= ``threshold`` instead.
        threshold: the normalized value kept when ``top_fraction`` is ``None``.
        success_at: cIoU an item needs to count as localized (0.5).
        num_pictures: pairs shown in the saved picture (0: none).
        **kwargs: when to evaluate and the seed (``EmbeddingEvalCallback``).
    """

    def __init__(
        self,
        top_fraction: float | None = 0.5,
        threshold: float = 0.5,
        success_at: float = 0.5,
        num_pictures: int = 8,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.top_fraction, self.threshold = top_fraction, threshold
        self.success_at, self.num_pictures = success_at, num_pictures

    def applies(self, trainer: Trainer) -> bool:
        if not super().applies(trainer):
            return False
        if callable(getattr(trainer.lightning_module, "localize", None)):
            return True
        if not getattr(self, "_said_skip", False):
            name = type(trainer.lightning_module).__name__
            rank_zero_info(f"{type(self).__name__}: skipped, {name} has no localize(batch)")
            self._said_skip = True
        return False

    def features(self, trainer: Trainer, pl_module: LightningModule, split: str, cache):
        dm = evaluation_data(trainer)
        scenes = getattr(dm, "localization_dataset", None)
        pairs = scenes(split) if scenes is not None else dm.pair_dataset(split)
        devices = [pl_module.device] if pl_module.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            local = score_shard(
                pl_module, pairs, dm.eval_batch_size, dm.num_workers, self.top_fraction,
                self.threshold, self.num_pictures, world_size(), rank(),
            )  # fmt: skip
        return merge_scores(gather_objects(local), len(pairs))

    def compute(self, features, log_dir: Path, split: str, trainer: Trainer) -> dict[str, float]:
        out = {}
        if features["ciou"] is not None:
            c = features["ciou"].numpy()
            scored = c[np.isfinite(c)]
            if len(scored) < len(c):
                rank_zero_warn(
                    f"localization: {len(c) - len(scored)} of {len(c)} {split} pairs have an "
                    "empty gt_map (no annotation) and are left out of cIoU / AUC"
                )
            if len(scored):
                out["localization/ciou"] = success_rate(scored, self.success_at)
                out["localization/auc"] = success_auc(scored)
                out["localization/ciou_mean"] = float(scored.mean())
        if features["hits"] is not None:
            out["localization/peak_acc"] = float(features["hits"].mean())
        if features["ciou"] is None and features["hits"] is None:
            rank_zero_info(
                f"localization: the {split} pairs carry neither gt_map nor target_cell + grid; "
                "only the picture is made"
            )
        examples = [ex for ex in features["examples"] if "image" in ex]
        if examples:
            path = Path(log_dir) / f"localization_{split}_step{trainer.global_step}.png"
            self.save_picture(examples, path)
            log_image(trainer, f"{split}/localization", path)
        return out

    @staticmethod
    def save_picture(examples: list[dict], path: Path) -> None:
        """The examples' images, heat map overlays and ground truth (maps as contours, a
        canvas's target cell as a box), titled by index."""
        images = torch.stack([ex["image"] for ex in examples])
        heat = torch.stack([ex["heat"] for ex in examples])
        gts = None
        if all("gt_map" in ex for ex in examples):
            gts = torch.stack([ex["gt_map"] for ex in examples])
        boxes = None
        if all("box" in ex for ex in examples):  # the target cell of a canvas
            boxes = [[ex["box"]] for ex in examples]
        titles = [f"#{ex['index']}" for ex in examples]
        heatmap_overlays(images, heat, path, gt_maps=gts, boxes=boxes, titles=titles)
