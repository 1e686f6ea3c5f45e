"""DualCam ``.dc`` audio frames (the 128-microphone array of ACIVW and AVIA).

One ``.dc`` file is one video frame of audio: raw little-endian int32, 128 mics x 1024
samples, stored in Fortran order (the ECCV 2020 converter reads it with
``np.fromfile(f, np.int32).reshape((128, 1024), order='F')``), so the samples of the mics
are interleaved: sample ``s`` of mic ``m`` is word ``m + 128 * s``. A file of any other size
is corrupt.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.errors import ConfigError

NUM_MICS = 128
SAMPLES_PER_FRAME = 1024
FRAME_BYTES = NUM_MICS * SAMPLES_PER_FRAME * 4
DC_DTYPE = np.dtype("<i4")


def read_dc(path: str | os.PathLike, mic: int | None = 0) -> np.ndarray:
    """One frame as float32: mic ``mic``'s ``[1024]`` samples, or ``[128, 1024]`` for
    ``mic=None``. Values are the raw integer counts (no scaling)."""
    if mic is not None and not 0 <= mic < NUM_MICS:
        raise ConfigError(f"mic must be in 0..{NUM_MICS - 1} (or None for all), got {mic}")
    expected = f"{FRAME_BYTES} bytes (DualCam audio: int32, {NUM_MICS} mics x {SAMPLES_PER_FRAME})"
    try:
        size = os.path.getsize(path)
    except OSError as err:
        raise DatasetCorruptError(path, expected, f"{type(err).__name__}: {err}") from err
    if size != FRAME_BYTES:
        raise DatasetCorruptError(
            path, expected, f"{size} bytes", "re-extract this recording from the ACIVW zip"
        )
    words = np.fromfile(path, dtype=DC_DTYPE)
    frame = words.reshape((NUM_MICS, SAMPLES_PER_FRAME), order="F")
    return (frame if mic is None else frame[mic]).astype(np.float32)


def read_dc_frames(paths: Sequence[str | os.PathLike], mic: int = 0) -> torch.Tensor:
    """Consecutive frames of one mic, concatenated: float32 ``[len(paths) * 1024]``."""
    return torch.from_numpy(np.concatenate([read_dc(p, mic) for p in paths]))
