"""IDX files (the MNIST family's format), gzipped or not, checked on content.

Integrity is checked on the decompressed bytes (magic number, dims, length), never on archive
checksums, so re-compressed copies (e.g. Debian's dataset-fashion-mnist) are accepted.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from assoc_lightning.data.errors import DatasetCorruptError

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path, magic: int | None = None) -> np.ndarray:
    """Parse an IDX file (optionally gzipped); check the magic number and the data length."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DatasetCorruptError(
                path, "a complete gzip stream", str(err), "download it again"
            ) from err
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _DTYPES:
        raise DatasetCorruptError(path, "an IDX header (0x0000, type, ndim)", f"bytes {raw[:4]!r}")
    found_magic = int.from_bytes(raw[:4], "big")
    if magic is not None and found_magic != magic:
        raise DatasetCorruptError(path, f"IDX magic {magic}", f"magic {found_magic}")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = 4 + 4 * ndim + int(np.prod(dims)) * dtype.itemsize
    if len(raw) != expected:
        raise DatasetCorruptError(
            path,
            f"{expected} bytes for dims {dims}",
            f"{len(raw)} bytes",
            "the file is truncated; download it again",
        )
    return np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)
