"""Fetch the public datasets from their official sources, with checksums, only when asked.

Downloads go through torchvision's and torchaudio's dataset classes (official URLs and
checksums maintained there) and land in exactly the layouts our readers expect:
``<data_dir>/MNIST/raw``, ``<data_dir>/FashionMNIST/raw``, ``<data_dir>/gtsrb/...`` and
``<data_dir>/SpeechCommands/speech_commands_v0.02``. TIDIGITS is licensed and cannot be
downloaded. Nothing here runs unless a datamodule is given ``download: true``.
"""

from __future__ import annotations

from pathlib import Path


def download(name: str, data_dir: str | Path) -> None:
    root = str(Path(data_dir).expanduser())
    Path(root).mkdir(parents=True, exist_ok=True)
    if name == "mnist":
        from torchvision.datasets import MNIST

        MNIST(root, train=True, download=True)
        MNIST(root, train=False, download=True)
    elif name == "fashion_mnist":
        from torchvision.datasets import FashionMNIST

        FashionMNIST(root, train=True, download=True)
        FashionMNIST(root, train=False, download=True)
    elif name == "gtsrb":
        from torchvision.datasets import GTSRB

        GTSRB(root, split="train", download=True)
        GTSRB(root, split="test", download=True)
    elif name == "speech_commands":
        from torchaudio.datasets import SPEECHCOMMANDS

        SPEECHCOMMANDS(root, url="speech_commands_v0.02", download=True)
    elif name == "tidigits":
        return  # licensed (LDC93S10): the reader's not-found error says how to obtain it
    else:
        raise ValueError(f"no download known for dataset {name!r}")
