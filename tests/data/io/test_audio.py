"""The one audio reader: downmix, resample (or reject a rate), fit to length, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.audio import fit_length, read_audio


def test_stereo_44k_is_downmixed_and_resampled(tmp_path):
    t = np.arange(44100) / 44100
    left, right = 0.6 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "a.wav", np.stack([left, right], 1).astype(np.float32), 44100)
    wave = read_audio(tmp_path / "a.wav", 16000)
    assert wave.dtype == torch.float32 and wave.shape == (16000,)
    ref = 0.4 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)  # the channel mean
    assert np.abs(wave[200:-200].numpy() - ref[200:-200]).max() < 0.01


def test_fit_pads_crops_and_tiles(tmp_path):
    sf.write(tmp_path / "s.wav", np.full(800, 0.5, np.float32), 8000)
    padded = read_audio(tmp_path / "s.wav", 8000, 1000)
    assert padded.shape == (1000,) and (padded[:800] == 0.5).all() and (padded[800:] == 0).all()
    assert read_audio(tmp_path / "s.wav", 8000, 500).shape == (500,)
    ramp = torch.arange(3.0)
    assert fit_length(ramp, 7, "tile").tolist() == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError, match="fit mode"):
        fit_length(ramp, 7, "loop")


def test_a_fixed_rate_rejects_others_and_bad_files_are_corrupt(tmp_path):
    sf.write(tmp_path / "r.wav", np.zeros(800, np.float32), 8000)
    with pytest.raises(DatasetCorruptError, match=r"(?s)r\.wav.*16000 Hz audio.*8000 Hz"):
        read_audio(tmp_path / "r.wav", 16000, resample_rate=False)
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00garbage")
    with pytest.raises(DatasetCorruptError, match=r"(?s)bad\.wav.*readable audio file"):
        read_audio(tmp_path / "bad.wav", 16000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    with pytest.raises(DatasetCorruptError, match="at least one audio frame"):
        read_audio(tmp_path / "empty.wav", 16000)
