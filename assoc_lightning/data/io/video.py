"""Video files through PyAV (an optional dependency): one frame at a time, the audio track,
or the frame and the audio around the clip's middle in one pass over the file.

PyAV bundles FFmpeg, so mp4/h264/aac decode without system packages (torchvision no longer
decodes video). Files without both a video and an audio stream raise
:class:`MissingStreamError`, files that fail to decode :class:`DatasetCorruptError`, both
naming the file.
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
from assoc_lightning.data.io.audio import fit_length, resample

VIDEO_HINT = "pip install 'assoc_lightning[video]'"


class MissingStreamError(DatasetCorruptError):
    """A file without the video or the audio stream (``stream``) a reader needs, e.g. a
    silent YouTube clip: corrupt for an audio-visual dataset, counted apart from
    undecodable files."""

    def __init__(self, path: str | os.PathLike, stream: str, found: str) -> None:
        super().__init__(path, "a video and an audio stream", found)
        self.stream = stream


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
        raise MissingStreamError(path, "video" if not n_video else "audio", found)
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


def _duration(container, stream) -> float:
    """The video stream's length in seconds (the container's when the stream has none)."""
    duration = _seconds(stream.duration, stream.time_base)
    if not duration and container.duration:
        duration = container.duration / 1_000_000  # av.time_base
    return duration or 0.0


def _frame_in(container, stream, path: Path, at: float | None):
    """``(frame, start)``: the frame shown ``at`` seconds after the video's start (``None``:
    the middle), and the video's start time on the file's clock."""
    start = _seconds(stream.start_time, stream.time_base) or 0.0
    if at is None:
        at = _duration(container, stream) / 2
    target = start + max(at, 0.0)
    container.seek(int(target / stream.time_base), stream=stream, backward=True)
    frame = _frame_at(container, stream, target)
    if frame is None or (frame.time or 0.0) > target + 1e-6:  # seek overshot
        container.seek(stream.start_time or 0, stream=stream, backward=True)
        frame = _frame_at(container, stream, target)
    if frame is None:
        raise DatasetCorruptError(path, "at least one video frame", "none decoded")
    return frame, start


def read_video_frame(path: str | os.PathLike, at: float | None = None) -> Image.Image:
    """The RGB frame shown ``at`` seconds after the video's start (``None``: the middle)."""
    path = Path(path)
    with _decoding(path, "video") as (_, container):
        return _frame_in(container, container.streams.video[0], path, at)[0].to_image()


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


def _audio_window(
    av, container, stream, path: Path, begin: float, seconds: float
) -> tuple[np.ndarray, int]:
    """``(mono samples, rate)`` of the audio from ``begin`` (seconds on the file's clock) for
    ``seconds``, at the stream's own rate; silence stands for what the track lacks there (it
    starts late or ends early), so the window stays aligned with the video."""
    until = begin + seconds
    container.seek(int(max(begin, 0.0) / stream.time_base), stream=stream, backward=True)
    samples, rate, first = _decode_from(av, container, stream, until)
    if first is not None and first > max(begin, 0.0) + 1e-3:  # overshot: decode from the start
        container.seek(stream.start_time or 0, stream=stream, backward=True)
        samples, rate, first = _decode_from(av, container, stream, until)
    if first is None or rate is None or first + samples.size / rate <= begin or first >= until:
        window = f"audio between {begin:.2f} s and {until:.2f} s"
        raise DatasetCorruptError(path, window, "none decoded")
    shift = int(round((first - begin) * rate))  # > 0: the track starts inside the window
    if shift < 0:
        samples = samples[-shift:]
    elif shift > 0:
        samples = np.concatenate([np.zeros(shift, np.float32), samples])
    out = np.zeros(int(round(seconds * rate)), np.float32)
    kept = min(out.size, samples.size)
    out[:kept] = samples[:kept]
    return out, rate


def _decode_from(
    av, container, stream, until: float
) -> tuple[np.ndarray, int | None, float | None]:
    """Mono samples decoded from the current position until ``until`` seconds, their rate,
    and the clock time of the first one (``None`` when nothing decoded)."""
    to_float = av.AudioResampler(format="fltp")  # planar float, same layout and rate
    chunks, rate, first, count = [], None, None, 0
    for frame in container.decode(stream):
        if first is None:
            first = frame.time if frame.time is not None else 0.0
        for out in to_float.resample(frame):
            rate = out.sample_rate
            chunks.append(out.to_ndarray().mean(axis=0))
            count += chunks[-1].size
        if rate is not None and first + count / rate >= until:
            break
    else:
        chunks += [out.to_ndarray().mean(axis=0) for out in to_float.resample(None)]
    data = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return data, rate, first


def read_audio_segment(
    path: str | os.PathLike, sample_rate: int, start: float, seconds: float
) -> torch.Tensor:
    """``seconds`` of audio from ``start`` seconds after the video's start, mono, resampled
    to ``sample_rate``; zero-padded where the track is shorter. Decodes only that part."""
    path = Path(path)
    with _decoding(path, "audio") as (av, container):
        video = container.streams.video[0]
        origin = _seconds(video.start_time, video.time_base) or 0.0
        audio = container.streams.audio[0]
        samples, rate = _audio_window(av, container, audio, path, origin + start, seconds)
    return fit_length(
        resample(torch.from_numpy(samples), rate, sample_rate), _num(seconds, sample_rate)
    )


def read_middle(
    path: str | os.PathLike, sample_rate: int, seconds: float
) -> tuple[Image.Image, torch.Tensor]:
    """The RGB frame shown at the clip's middle and the ``seconds`` of audio centred on it
    (mono, at ``sample_rate``), from one opening of the file.

    The window is shifted to start at the clip's start when it would begin before it; a clip
    shorter than ``seconds`` gives its whole track, zero-padded at the end.
    """
    path = Path(path)
    with _decoding(path, "video and audio") as (av, container):
        video = container.streams.video[0]
        middle = _duration(container, video) / 2
        frame, origin = _frame_in(container, video, path, middle)
        image = frame.to_image()
        begin = origin + max(middle - seconds / 2, 0.0)
        audio = container.streams.audio[0]
        samples, rate = _audio_window(av, container, audio, path, begin, seconds)
    wave = resample(torch.from_numpy(samples), rate, sample_rate)
    return image, fit_length(wave, _num(seconds, sample_rate))


def _num(seconds: float, sample_rate: int) -> int:
    return int(round(seconds * sample_rate))
