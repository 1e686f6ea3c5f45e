"""DualCam .dc frames: Fortran-order int32, one mic picked, wrong sizes named."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.dualcam import FRAME_BYTES, read_dc, read_dc_frames
from assoc_lightning.errors import ConfigError
from tests.fixtures.acivw import dc_frame, write_dc


def test_read_dc_is_fortran_order_int32(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.integers(-(2**31), 2**31 - 1, size=(128, 1024), dtype=np.int64).astype(np.int32)
    path = tmp_path / "A_000001.dc"
    write_dc(path, array)
    words = np.fromfile(path, "<i4")
    assert words[1] == array[1, 0] and words[128] == array[0, 1]  # mics interleaved on disk
    mic0 = read_dc(path)
    assert mic0.dtype == np.float32 and mic0.shape == (1024,)
    np.testing.assert_array_equal(mic0, array[0].astype(np.float32))
    assert not np.array_equal(mic0, words[:1024].astype(np.float32))  # not a C-order read
    np.testing.assert_array_equal(read_dc(path, mic=127), array[127].astype(np.float32))
    np.testing.assert_array_equal(read_dc(path, mic=None), array.astype(np.float32))
    with pytest.raises(ConfigError, match="mic must be in 0..127"):
        read_dc(path, mic=128)


def test_read_dc_frames_concatenates_one_mic(tmp_path):
    paths = []
    for f in (1, 2):
        paths.append(tmp_path / f"A_{f:06d}.dc")
        write_dc(paths[-1], dc_frame(f))
    wave = read_dc_frames(paths, mic=3)
    assert wave.shape == (2048,)
    expected = np.concatenate([dc_frame(1)[3], dc_frame(2)[3]]).astype(np.float32)
    np.testing.assert_array_equal(wave.numpy(), expected)


def test_wrong_size_and_missing_files_are_named(tmp_path):
    short = tmp_path / "A_000007.dc"
    np.zeros(1000, "<i4").tofile(short)
    with pytest.raises(
        DatasetCorruptError, match=rf"(?s)A_000007\.dc.*{FRAME_BYTES} bytes.*4000 bytes"
    ):
        read_dc(short)
    with pytest.raises(DatasetCorruptError, match=r"(?s)A_000008\.dc.*FileNotFoundError"):
        read_dc(tmp_path / "A_000008.dc")
