"""The IDX reader: gzip or raw, magic, truncation."""

from __future__ import annotations

import numpy as np
import pytest

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.idx import read_idx
from tests.fixtures.idx import write_idx


def test_idx_reader_rejects_truncated_and_wrong_magic(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DatasetCorruptError, match="truncated"):
        read_idx(path, magic=2051)
    write_idx(path, np.zeros(4, np.uint8))
    with pytest.raises(DatasetCorruptError, match="magic 2051"):
        read_idx(path, magic=2051)
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DatasetCorruptError, match="gzip"):
        read_idx(path)
