"""Video decoding through PyAV: one frame, the audio track."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_lightning.data.io.video import read_audio_track, read_video_frame
from tests.fixtures.av import (
    COLOURS,
    OUT_SR,
    rms,
)


def test_decoders_middle_frame_and_audio(ave_root):
    video = ave_root / "AVE_Dataset" / "AVE" / "vidA.mp4"
    for at, colour in ((0.0, 0), (1.5, 1), (2.0, 2), (3.9, 3), (None, 2), (99.0, 3)):
        frame = np.asarray(read_video_frame(video, at), dtype=np.float32)
        assert frame.mean(axis=(0, 1)) == pytest.approx(COLOURS[colour], abs=12), at
    wave = read_audio_track(video, OUT_SR)  # 4 s stereo 16 kHz -> mono 8 kHz
    assert abs(wave.numel() - 4 * OUT_SR) <= 0.05 * OUT_SR
    assert rms(wave[OUT_SR : 3 * OUT_SR]) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)  # (0.4+0.2)/2
