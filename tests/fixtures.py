"""Writers of tiny datasets in their real on-disk formats (for loader tests)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import soundfile as sf


def write_idx(path: Path, array: np.ndarray, gz: bool = False) -> None:
    """An IDX file (uint8) as the MNIST distribution has them: magic, big-endian dims, data."""
    ndim = array.ndim
    header = bytes([0, 0, 0x08, ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(raw) if gz else raw)


def make_mnist(
    root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20, gz: bool = True
) -> None:
    """``<root>/<folder>/raw`` with the four IDX files; image i is filled with its label * 20."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = np.repeat(labels[:, None, None] * 20, 28, 1).repeat(28, 2) + rng.integers(
            0, 5, (n, 28, 28)
        )
        write_idx(
            root / folder / "raw" / f"{split}-images-idx3-ubyte{'.gz' if gz else ''}", images, gz
        )
        write_idx(
            root / folder / "raw" / f"{split}-labels-idx1-ubyte{'.gz' if gz else ''}", labels, gz
        )


def make_gsc(
    root: Path, words=("yes", "no"), speakers=("aaaa1111", "bbbb2222", "cccc3333"), samples=8000
) -> None:
    """A Speech Commands tree: ``<word>/<speaker>_nohash_0.wav``, noise folder, split lists.
    Speaker 2 is validation, speaker 3 test, the rest training."""
    for w in words:
        (root / w).mkdir(parents=True, exist_ok=True)
        for s in speakers:
            sf.write(root / w / f"{s}_nohash_0.wav", np.full(samples, 0.25, np.float32), 16000)
    (root / "_background_noise_").mkdir(exist_ok=True)
    sf.write(root / "_background_noise_" / "white_noise.wav", np.zeros(16000, np.float32), 16000)
    (root / "validation_list.txt").write_text(
        "".join(f"{w}/{speakers[1]}_nohash_0.wav\n" for w in words)
    )
    (root / "testing_list.txt").write_text(
        "".join(f"{w}/{speakers[2]}_nohash_0.wav\n" for w in words)
    )
