"""Sample shards: WebDataset tar files written atomically, read back one member at a time.

A shard is a plain tar in the WebDataset convention (``<key>.<ext>`` members, grouped by key),
written with ``webdataset.TarWriter``, so any WebDataset pipeline (open_clip's included) reads
it as is. The writer also returns where each member's bytes lie in the file, so readers can
fetch one modality of one sample with a seek and a read (no tar parsing, the other
modality's bytes never read). Samples are encoded here too: frames as JPEG or PNG, audio as
int16 ``.npy`` (half the bytes of float32; 16-bit is what the source clips hold anyway).
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.utils.files import private_tmp_file

SHARDS_HINT = "pip install 'assoc_lightning[shards]'"
IMAGE_FORMATS = {"jpg": "JPEG", "png": "PNG"}
AUDIO_EXT = "audio.npy"
INT16_SCALE = 32767.0


def import_webdataset():
    """webdataset, imported on first use (an optional dependency)."""
    try:
        import webdataset
    except ImportError as err:
        raise ImportError(f"writing sample shards needs webdataset: {SHARDS_HINT}") from err
    return webdataset


def write_shard(path: str | os.PathLike, samples: Iterable[dict]) -> list[dict[str, list[int]]]:
    """Write ``samples`` (dicts of ``"__key__"`` and ``ext -> bytes``) as the tar ``path``,
    through a private temporary and an atomic rename, so ``path`` is either absent or whole.

    Returns, per sample, ``{ext: [offset, size]}`` of its members' bytes in the file. Member
    times are fixed, so the same samples always give the same bytes.
    """
    path = Path(path)
    tmp = private_tmp_file(path)
    try:
        with import_webdataset().TarWriter(str(tmp), mtime=0.0, encoder=False) as writer:
            keys = []
            for sample in samples:
                writer.write(sample)
                keys.append(sample["__key__"])
        places = {key: {} for key in keys}
        with tarfile.open(tmp) as tar:
            for member in tar:
                key, ext = member.name.split(".", 1)
                places[key][ext] = [member.offset_data, member.size]
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return [places[key] for key in keys]


def read_member(fd: int, path: str | os.PathLike, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of a shard open as ``fd`` (``os.open``). ``pread`` leaves
    the file position alone, so processes sharing a descriptor (forked workers) never
    disturb each other's reads. DatasetCorruptError when the file is short."""
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise DatasetCorruptError(path, f"{size} bytes at offset {offset}", f"{len(data)} bytes")
    return data


def encode_image(image: torch.Tensor, fmt: str = "jpg", quality: int = 90) -> bytes:
    """uint8 ``[3, H, W]`` as JPEG (``quality``) or PNG bytes."""
    buf = io.BytesIO()
    pil = Image.fromarray(image.permute(1, 2, 0).contiguous().numpy())
    pil.save(buf, IMAGE_FORMATS[fmt], **({"quality": quality} if fmt == "jpg" else {}))
    return buf.getvalue()


def decode_image(data: bytes, path: str | os.PathLike = "<shard>") -> torch.Tensor:
    """JPEG/PNG bytes as uint8 RGB ``[3, H, W]``."""
    from torchvision.io import ImageReadMode
    from torchvision.io import decode_image as decode

    try:
        return decode(torch.frombuffer(bytearray(data), dtype=torch.uint8), ImageReadMode.RGB)
    except RuntimeError as err:
        raise DatasetCorruptError(path, "a JPEG or PNG member", str(err)) from err


def encode_audio(wave: torch.Tensor) -> bytes:
    """A float waveform in [-1, 1] as int16 ``.npy`` bytes (clipped, rounded)."""
    buf = io.BytesIO()
    samples = (wave.float().clamp(-1, 1) * INT16_SCALE).round().to(torch.int16).numpy()
    np.save(buf, samples, allow_pickle=False)
    return buf.getvalue()


def decode_audio(data: bytes) -> torch.Tensor:
    """int16 ``.npy`` bytes as a float32 waveform in [-1, 1]."""
    samples = np.load(io.BytesIO(data), allow_pickle=False)
    return torch.from_numpy(samples.astype(np.float32) / INT16_SCALE)
