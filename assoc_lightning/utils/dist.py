"""Distributed helpers that are no-ops on a single process."""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping gradients for all slices.

    Used by every contrastive loss so that negatives come from the global batch. The
    local slice stays the autograd-connected tensor; gradients for other ranks' slices
    flow back through ``torch.distributed.nn.all_gather``.
    """
    if not is_distributed() or world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()), dim=0)


def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0 (equal shapes; no gradients: ids, labels)."""
    if not is_distributed() or world_size() == 1:
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def gather_objects(obj):
    """All ranks get the list of every rank's ``obj`` (picklable)."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_rows(x: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``x`` (any number of rows, the same trailing shape and dtype), as tensors:
    sizes first, then one ``all_gather`` of the rows padded to the largest count. No pickling,
    so 1M x 1024 features per rank travel as they are. ``x`` returns on its own device; the
    transfer uses the process group's (CUDA for NCCL)."""
    if not is_distributed():
        return [x]
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if dist.get_backend() == "nccl"
        else x.device
    )
    local = x.contiguous().to(device)
    count = torch.tensor([local.size(0)], device=device)
    counts = [torch.empty_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    most = int(max(c.item() for c in counts))
    padded = local  # equal counts (the DistributedSampler's shards): no padded copy
    if local.size(0) < most:
        padded = local.new_zeros((most, *local.shape[1:]))
        padded[: local.size(0)] = local
    out = [torch.empty_like(padded) for _ in range(world_size())]
    dist.all_gather(out, padded)
    return [o[: int(c.item())].to(x.device) for o, c in zip(out, counts, strict=True)]
