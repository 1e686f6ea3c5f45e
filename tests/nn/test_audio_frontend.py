"""The batched Kaldi fbank against torchaudio's per-utterance one, and the MFCC front-end."""

from __future__ import annotations

import pytest
import torch
from torchaudio.compliance import kaldi

from assoc_lightning.nn.audio_frontend import KaldiFbank, fix_num_frames


def test_matches_torchaudio_kaldi_fbank():
    torch.manual_seed(0)
    wave = torch.randn(3, 16000) * 0.1
    ref = torch.stack(
        [
            kaldi.fbank(w[None], num_mel_bins=80, frame_length=25, frame_shift=10,
                        window_type="povey", dither=0.0, sample_frequency=16000)
            for w in wave
        ]
    )  # fmt: skip
    ours = KaldiFbank(num_frames=None, standardize=False)(wave)
    assert ours.shape == ref.shape == (3, 98, 80)
    assert torch.allclose(ours, ref, atol=2e-3)


def test_standardized_per_channel_then_padded():
    wave = torch.randn(2, 16000)
    feats = KaldiFbank(num_frames=100, standardize=True)(wave)
    assert feats.shape == (2, 100, 80)
    real = feats[:, :98]
    assert torch.allclose(real.mean(1), torch.zeros(2, 80), atol=1e-4)
    assert torch.allclose(real.std(1, unbiased=False), torch.ones(2, 80), atol=1e-3)
    assert (feats[:, 98:] == 0).all()  # zero padding at the end, after normalization


def test_fix_num_frames_centre_crop():
    x = torch.arange(10.0).view(1, 10, 1)
    assert fix_num_frames(x, 4).flatten().tolist() == [3.0, 4.0, 5.0, 6.0]
    assert fix_num_frames(x, 12).flatten().tolist()[-2:] == [0.0, 0.0]
    assert fix_num_frames(x, None) is x


def test_too_short_audio_is_a_clear_error():
    with pytest.raises(ValueError, match="shorter than one"):
        KaldiFbank()(torch.zeros(1, 100))


def test_mfcc_frontend_shape_and_standardization():
    from assoc_lightning.nn.audio_frontend import MFCCFrontend

    feats = MFCCFrontend()(torch.randn(3, 16000))
    assert feats.shape == (3, 40, 101)  # the VAE-associator paper's 40 x 101
    assert torch.allclose(feats.mean(-1), torch.zeros(3, 40), atol=1e-4)
    raw = MFCCFrontend(standardize=False)(torch.randn(3, 16000))
    assert raw.shape == (3, 40, 101) and raw.abs().max() > 2
