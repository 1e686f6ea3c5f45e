"""BMA-Memory's bimodal key-value memory: two slot matrices addressed with key-value switching.

An image feature addresses the image memory ``M_v`` (the key) and reads the sound memory
``M_s`` (the value); a sound feature the reverse (Lee, Kim, Ro, CVPR 2022, Eq. 1-3). The
weights are a softmax over the cosine similarities to the key's slots divided by a
temperature; the read-out is the weighted sum of the value's raw rows (the LMC-Memory pattern
the paper follows), or of L2-normalized rows with ``normalize_read``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BimodalMemory(nn.Module):
    """Two learnable memories, one per modality, ``[num_slots, dim]`` each.

    Args:
        num_slots: slots per memory (the paper: 1000; its Fig. 6 saturates at >= 500).
        dim: slot width, equal to the encoders' feature width (512).
        temperature: addressing temperature tau_m (0.1).
        init_std: slots start as N(0, init_std^2) (LMC-Memory: N(0, 1)).
        normalize_read: read L2-normalized value rows instead of the raw ones.
        modalities: the two memories' names (key-value switching pairs them).
    """

    def __init__(
        self,
        num_slots: int = 1000,
        dim: int = 512,
        temperature: float = 0.1,
        init_std: float = 1.0,
        normalize_read: bool = False,
        modalities: tuple[str, str] = ("image", "audio"),
    ) -> None:
        super().__init__()
        if num_slots < 1 or dim < 1 or temperature <= 0:
            raise ValueError(
                f"num_slots and dim must be >= 1 and temperature > 0, got {num_slots}, "
                f"{dim}, {temperature}"
            )
        self.temperature = temperature
        self.normalize_read = normalize_read
        self.modalities = tuple(modalities)
        self.slots = nn.ParameterDict(
            {m: nn.Parameter(torch.randn(num_slots, dim) * init_std) for m in self.modalities}
        )

    def other(self, modality: str) -> str:
        """The memory paired with ``modality``'s (its value under key-value switching)."""
        a, b = self.modalities
        return b if modality == a else a

    def address(self, query: torch.Tensor, key: str) -> torch.Tensor:
        """Addressing weights ``[N, num_slots]``: softmax_r(cos(query, M_key[r]) / tau)."""
        sims = F.normalize(query, dim=-1) @ F.normalize(self.slots[key], dim=-1).T
        return torch.softmax(sims / self.temperature, dim=-1)

    def read(self, weights: torch.Tensor, value: str) -> torch.Tensor:
        """The weighted sum of ``M_value``'s rows, ``[N, dim]``."""
        rows = self.slots[value]
        if self.normalize_read:
            rows = F.normalize(rows, dim=-1)
        return weights @ rows

    def recall(self, query: torch.Tensor, key: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Key-value switching: address ``M_key`` with ``query``, read the other memory.

        Returns ``(read-out [N, dim], weights [N, num_slots])``.
        """
        weights = self.address(query, key)
        return self.read(weights, self.other(key)), weights


def addressing_stats(weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Diagnostics of memory use from weights ``[N, slots]``: the mean addressing entropy (in
    nats; log(slots) is uniform) and the fraction of slots that are some query's top slot
    (low values flag a collapsed memory)."""
    w = weights.detach().float()
    entropy = -(w * w.clamp_min(1e-12).log()).sum(-1).mean()
    used = torch.zeros(w.size(-1), device=w.device).index_fill_(0, w.argmax(-1), 1.0).mean()
    return {"address_entropy": entropy, "slot_usage": used}
