"""The one audio-file reader: read, downmix to mono, resample, fit to a length.

Every dataset reads its clips through :func:`read_audio` (WAV, FLAC, OGG, MP3, uncompressed
NIST SPHERE: whatever libsndfile reads), and datasets that decode samples their own way
(TIDIGITS' shorten SPHERE, AudioSet's hdf5 packs, mp4 audio tracks) finish with the same
:func:`resample` and :func:`fit_length`.
"""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import torch

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.errors import ConfigError

FIT_MODES = ("pad", "tile")


def resample(wave: torch.Tensor, rate: int, target: int) -> torch.Tensor:
    """``torchaudio.functional.resample`` when the rates differ (imported on demand)."""
    if rate == target:
        return wave
    import torchaudio

    return torchaudio.functional.resample(wave, rate, target)


def fit_length(wave: torch.Tensor, num_samples: int, mode: str = "pad") -> torch.Tensor:
    """Crop ``wave`` [T] to ``num_samples``, or lengthen it: zero-pad at the end (``pad``) or
    repeat it (``tile``, for clips that are looped, as LVS does for Flickr-SoundNet)."""
    if mode not in FIT_MODES:
        raise ConfigError(f"fit mode must be one of {FIT_MODES}, got {mode!r}")
    if wave.numel() >= num_samples:
        return wave[:num_samples].contiguous()
    if mode == "tile" and wave.numel() > 0:
        reps = -(-num_samples // wave.numel())
        return wave.repeat(reps)[:num_samples].contiguous()
    out = wave.new_zeros(num_samples)
    out[: wave.numel()] = wave
    return out


def audio_info(path: str | os.PathLike) -> tuple[int, int, int]:
    """``(frames, sample rate, channels)`` from a file's header, without reading its samples
    (to count a long clip's segments); an unreadable or empty file raises
    :class:`DatasetCorruptError` naming it."""
    try:
        info = sf.info(str(path))
    except Exception as err:  # soundfile raises several types for bad files
        raise DatasetCorruptError(
            path, "a readable audio file", f"{type(err).__name__}: {err}"
        ) from err
    if info.frames <= 0:
        raise DatasetCorruptError(path, "at least one audio frame", "an empty file")
    return int(info.frames), int(info.samplerate), int(info.channels)


def read_audio(
    path: str | os.PathLike,
    sample_rate: int,
    num_samples: int | None = None,
    fit: str = "pad",
    resample_rate: bool = True,
    offset_seconds: float = 0.0,
    channel: int | None = None,
) -> torch.Tensor:
    """A mono float32 waveform at ``sample_rate``, fitted to ``num_samples`` (``None``: as is).

    Channels are averaged, or ``channel`` (0-based) is kept. A file at another rate is
    resampled with torchaudio, or, with ``resample_rate=False`` (datasets whose format fixes
    the rate, e.g. Speech Commands), rejected as corrupt. Reading starts ``offset_seconds``
    into the file (segments of long clips, e.g. DCASE's 2-s pieces of 10-s scenes); only the
    frames the output needs are read. Unreadable or empty files raise
    :class:`DatasetCorruptError` naming the file.
    """
    try:
        with sf.SoundFile(path) as f:
            rate = f.samplerate
            if rate != sample_rate and not resample_rate:
                raise DatasetCorruptError(path, f"{sample_rate} Hz audio", f"{rate} Hz")
            if channel is not None and not 0 <= channel < f.channels:
                raise DatasetCorruptError(path, f"a channel {channel}", f"{f.channels} channel(s)")
            if offset_seconds > 0:
                f.seek(min(int(round(offset_seconds * rate)), f.frames))
            frames = -1
            if num_samples is not None and fit == "pad":
                # what the output needs, plus 10 ms so the resampler's filter sees real context
                frames = int(np.ceil(num_samples * rate / sample_rate)) + rate // 100
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except DatasetCorruptError:
        raise
    except Exception as err:  # soundfile raises several types for bad files
        raise DatasetCorruptError(
            path, "a readable audio file", f"{type(err).__name__}: {err}"
        ) from err
    if data.shape[0] == 0:
        raise DatasetCorruptError(path, "at least one audio frame", "an empty file")
    mono = data.mean(axis=1) if channel is None else np.ascontiguousarray(data[:, channel])
    wave = resample(torch.from_numpy(mono), rate, sample_rate)
    return wave if num_samples is None else fit_length(wave, num_samples, fit)
