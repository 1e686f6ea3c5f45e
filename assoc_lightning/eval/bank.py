"""Feature bank: embed an eval set on every rank, gather, drop sampler padding, check the count.

The distributed sampler pads each rank's shard to equal length by repeating items; features
are therefore kept with their dataset index, gathered from all ranks, de-duplicated by index
and sorted, and the final count is checked against the dataset size. Features live on the CPU
in fp32 from the moment they leave the model. :func:`balanced_embeddings` draws equal numbers
of items per modality from gathered features (the IG paper's evaluations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from lightning.pytorch.utilities import move_data_to_device
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from assoc_lightning.errors import RunError
from assoc_lightning.utils.dist import gather_rows, rank, world_size


@dataclass
class Features:
    """Embeddings of one modality of one split, ordered by dataset index."""

    embeddings: torch.Tensor  # [N, D] or [N, S, D] (S samples per input)
    labels: torch.Tensor  # [N]
    indices: torch.Tensor  # [N], sorted, unique


def merge_shards(
    shards: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], expected: int
) -> Features:
    """Concatenate per-rank ``(indices, embeddings, labels)``, drop repeated indices, sort, check."""
    idx = torch.cat([s[0] for s in shards])
    emb = torch.cat([s[1] for s in shards])
    lab = torch.cat([s[2] for s in shards])
    order = torch.argsort(idx, stable=True)
    idx, emb, lab = idx[order], emb[order], lab[order]
    keep = torch.ones_like(idx, dtype=torch.bool)
    keep[1:] = idx[1:] != idx[:-1]
    idx, emb, lab = idx[keep], emb[keep], lab[keep]
    if idx.numel() != expected:
        raise RunError(
            f"evaluation gathered {idx.numel()} distinct items but the dataset has {expected}; "
            "an eval loader must visit every item exactly once per rank shard (no drop_last, "
            "no limit_*_batches on evaluation sets)"
        )
    return Features(emb, lab, idx)


@torch.no_grad()
def collect_features(
    module,
    dataset: Dataset,
    modalities: Sequence[str],
    batch_size: int = 256,
    num_workers: int = 0,
    num_samples: int = 0,
    seed: int = 0,
    space: str = "features",
) -> dict[str, Features]:
    """Embed ``dataset`` with ``module.embed`` (or ``embed_samples`` if ``num_samples > 0``;
    ``seed`` then fixes each item's samples independently of batching and ranks;
    ``space="retrieval"``: ``module.retrieval_embed``, the space a method retrieves in).

    Items carry ``index`` and ``label``; every modality in ``modalities`` is read from the same
    items (one for a single-modality eval set, both for a paired one). Call on every rank:
    each rank embeds its shard, then all ranks receive all features.
    """
    sampler = None
    if world_size() > 1:
        sampler = DistributedSampler(dataset, num_replicas=world_size(), rank=rank(), shuffle=False)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers)
    was_training = module.training
    module.eval()
    idx, lab = [], []
    emb: dict[str, list[torch.Tensor]] = {m: [] for m in modalities}
    try:
        for batch in loader:
            batch = move_data_to_device(batch, module.device)
            if space == "retrieval":
                out = module.retrieval_embed(batch)
            elif num_samples > 0:
                out = module.embed_samples(batch, num_samples, seed=seed)
            else:
                out = module.embed(batch)
            for m in modalities:
                emb[m].append(out[m].float().cpu())
            idx.append(batch["index"].cpu())
            lab.append(batch["label"].cpu())
    finally:
        module.train(was_training)
    # padded tensor gathers (utils/dist.py: gather_rows), never pickled
    all_idx, all_lab = gather_rows(torch.cat(idx)), gather_rows(torch.cat(lab))
    out = {}
    for m in modalities:
        shards = zip(all_idx, gather_rows(torch.cat(emb[m])), all_lab, strict=True)
        out[m] = merge_shards(list(shards), len(dataset))
    return out


def balanced_subset(
    n_per_modality: dict[str, int], limit: int | None, seed: int
) -> dict[str, np.ndarray]:
    """Seeded equal-size index subsets per modality (size: the smallest modality, or ``limit``)."""
    n = min(n_per_modality.values())
    if limit is not None:
        n = min(n, limit)
    rng = np.random.default_rng(seed)
    return {m: np.sort(rng.choice(total, n, replace=False)) for m, total in n_per_modality.items()}


def balanced_embeddings(
    features: dict[str, Features], limit: int | None, seed: int, all_samples: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Equal numbers of inputs per modality (see :func:`balanced_subset`), as fp64 arrays:
    ``(embeddings, labels, modality names)``. With ``all_samples`` every sampled embedding of
    an input is a row; otherwise one per input (the first sample)."""
    subset = balanced_subset({m: len(f.indices) for m, f in features.items()}, limit, seed)
    embs, labels, mods = [], [], []
    for m, rows in subset.items():
        emb = features[m].embeddings[torch.as_tensor(rows)]
        lab = features[m].labels[torch.as_tensor(rows)]
        if emb.dim() == 3 and all_samples:
            lab = lab.repeat_interleave(emb.size(1))
            emb = emb.reshape(-1, emb.size(-1))
        elif emb.dim() == 3:
            emb = emb[:, 0]
        embs.append(emb.double().numpy())
        labels.append(lab.numpy())
        mods += [m] * len(lab)
    return np.concatenate(embs), np.concatenate(labels), np.array(mods)
