"""MLP projection heads."""

from __future__ import annotations

from torch import nn


class MLPProjector(nn.Sequential):
    """Linear -> BN -> ReLU -> Linear -> BN (C-MCR's projector; official code's ``MLP``).

    ``in_dim -> hidden_dim -> out_dim``; C-MCR uses 512 -> 1024 -> 512 (about 1.05M
    parameters). ``final_relu`` adds the ReLU after the last BN that the paper's Table 6 lists
    but the released code does not have (it would confine outputs to the positive orthant).
    """

    def __init__(
        self,
        in_dim: int = 512,
        hidden_dim: int = 1024,
        out_dim: int = 512,
        final_relu: bool = False,
    ) -> None:
        layers = [
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim),
            nn.BatchNorm1d(out_dim),
        ]
        if final_relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
