"""Recognition accuracy: a small classifier per modality, trained on original data, judges
original, reconstructed and generated data (the VAE-associator paper's Tables 1 and 2).

Our choices (the paper's classifiers are unspecified): ``RecognitionCNN`` below, Adam 1e-3,
15 epochs, batch 128, no augmentation, seeded.
"""

from __future__ import annotations

import torch
from torch import nn


class RecognitionCNN(nn.Module):
    """Three 3x3 stride-2 convs (16, 32, 64 channels, BatchNorm, ReLU), FC 128, FC classes.

    Small on purpose: it must train in seconds on CPU for the embedded default, and still
    reaches the paper's accuracies on MNIST-sized data. Any ``[C, H, W]`` input shape.
    """

    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = in_shape[0], in_shape[1:]
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(c, out, 3, 2, 1), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            c, h, w = out, (h + 1) // 2, (w + 1) // 2
        self.net = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(c * h * w, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_classifier(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    epochs: int = 15,
    lr: float = 1e-3,
    batch_size: int = 128,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> RecognitionCNN:
    """A ``RecognitionCNN`` fit to ``(x, y)`` with Adam and cross-entropy, seeded."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RecognitionCNN(tuple(x.shape[1:]), num_classes).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for rows in torch.randperm(len(x), generator=gen).split(batch_size):
            if len(rows) < 2:  # BatchNorm needs two items
                continue
            loss = nn.functional.cross_entropy(model(x[rows].to(device)), y[rows].to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Class predictions for ``x`` (on the model's device, in eval mode), on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat([model(c.to(device)).argmax(1).cpu() for c in x.split(batch_size)])


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).float().mean()) if len(labels) else float("nan")
