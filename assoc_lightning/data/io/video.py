"""Video files through PyAV (an optional dependency): one frame at a time, the audio track.

PyAV bundles FFmpeg, so mp4/h264/aac decode without system packages (torchvision no longer
decodes video). Files without both a video and an audio stream, or that fail to decode, raise
:class:`DatasetCorruptError` naming the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.audio import resample

VIDEO_HINT = "pip install 'assoc_lightning[video]'"


def import_av():
    """PyAV, imported on first use (an optional dependency)."""
    try:
        import av
    except ImportError as err:
        raise ImportError(f"reading mp4 files needs PyAV: {VIDEO_HINT}") from err
    return av


def _open_av(av, path: Path):
    """An open container holding both a video and an audio stream (else corrupt)."""
    container = av.open(str(path))
    n_video, n_audio = len(container.streams.video), len(container.streams.audio)
    if not n_video or not n_audio:
        container.close()  # (touching its streams after this would crash PyAV)
        found = f"{n_video} video and {n_audio} audio streams"
        raise DatasetCorruptError(path, "a video and an audio stream", found)
    return container


def _seconds(value, time_base) -> float | None:
    return None if value is None or time_base is None else float(value * time_base)


def _frame_at(container, stream, target: float):
    """The last decoded frame starting at or before ``target`` seconds (the first frame when
    ``target`` precedes all, the last one when it is past the end)."""
    best = None
    for frame in container.decode(stream):
        time = frame.time if frame.time is not None else 0.0
        if time > target + 1e-6:
            return best if best is not None else frame
        best = frame
    return best


@contextlib.contextmanager
def _decoding(path: Path, stream: str) -> Iterator[tuple[Any, Any]]:
    """``(av, container)`` for ``path``; what PyAV raises inside becomes DatasetCorruptError."""
    av = import_av()  # outside the try: a missing PyAV is not a corrupt file
    try:
        with _open_av(av, path) as container:
            yield av, container
    except DatasetCorruptError:
        raise
    except Exception as err:  # PyAV raises FFmpegError subclasses, OSError, ValueError
        raise DatasetCorruptError(
            path, f"a decodable mp4 {stream} stream", f"{type(err).__name__}: {err}"
        ) from err


def read_video_frame(path: str | os.PathLike, at: float | None = None) -> Image.Image:
    """The RGB frame shown ``at`` seconds after the video's start (``None``: the middle)."""
    path = Path(path)
    with _decoding(path, "video") as (_, container):
        stream = container.streams.video[0]
        start = _seconds(stream.start_time, stream.time_base) or 0.0
        if at is None:
            duration = _seconds(stream.duration, stream.time_base)
            if not duration and container.duration:
                duration = container.duration / 1_000_000  # av.time_base
            at = (duration or 0.0) / 2
        target = start + max(at, 0.0)
        container.seek(int(target / stream.time_base), stream=stream, backward=True)
        frame = _frame_at(container, stream, target)
        if frame is None or (frame.time or 0.0) > target + 1e-6:  # seek overshot
            container.seek(stream.start_time or 0, stream=stream, backward=True)
            frame = _frame_at(container, stream, target)
        if frame is None:
            raise DatasetCorruptError(path, "at least one video frame", "none decoded")
        return frame.to_image()


def read_audio_track(path: str | os.PathLike, sample_rate: int) -> torch.Tensor:
    """The whole audio track, mixed to mono (channel mean), resampled to ``sample_rate``."""
    path = Path(path)
    with _decoding(path, "audio") as (av, container):
        stream = container.streams.audio[0]
        to_float = av.AudioResampler(format="fltp")  # planar float, same layout and rate
        chunks, rate = [], None
        for frame in container.decode(stream):
            for out in to_float.resample(frame):
                rate = out.sample_rate
                chunks.append(out.to_ndarray().mean(axis=0))
        for out in to_float.resample(None):
            chunks.append(out.to_ndarray().mean(axis=0))
    if not chunks or rate is None:
        raise DatasetCorruptError(path, "at least one audio frame", "none decoded")
    wave = torch.from_numpy(np.concatenate(chunks).astype(np.float32))
    return resample(wave, rate, sample_rate)
