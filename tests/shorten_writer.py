"""A minimal shorten (format v1/v2) encoder and NIST SPHERE writer, for test fixtures only.

It mirrors the decoder's state exactly (per-channel history, running means, bit shift)
so every block it writes decodes to the input bit for bit. Per block it picks the fixed
predictor DIFF0..DIFF3 (or, with ``lpc_order``, a quantized LPC) with the smallest total
residual magnitude and the Rice parameter with the fewest bits. Optional features exist
to exercise decoder paths: FN_ZERO for silent blocks, FN_BITSHIFT for blocks whose samples
share low zero bits, a FN_VERBATIM chunk (e.g. a RIFF header, which ffmpeg's shorten
decoder requires), and FN_BLOCKSIZE before a short final block.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

ULONGSIZE, FNSIZE, ENERGYSIZE, BITSHIFTSIZE, LPCQSIZE, LPCQUANT = 2, 2, 3, 2, 2, 5
VERBATIM_CKSIZE_SIZE, VERBATIM_BYTE_SIZE, NWRAP = 5, 8, 3
FN_DIFF0, FN_QUIT, FN_BLOCKSIZE, FN_BITSHIFT, FN_QLPC, FN_ZERO, FN_VERBATIM = 0, 4, 5, 6, 7, 8, 9
TYPE_S16HL, TYPE_S16LH = 3, 5


def _cdiv(a: int, b: int) -> int:
    """C-style integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


class BitWriter:
    """Accumulates shorten Rice codes as a string of '0'/'1' characters."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def command(self, cmd: int, counts: dict[int, int]) -> None:
        """A command code (``uvar(2)``), counted in ``counts``."""
        counts[cmd] = counts.get(cmd, 0) + 1
        self.uvar(cmd, FNSIZE)

    def uvar(self, value: int, k: int) -> None:
        """Unsigned Rice code: ``value >> k`` zeros, a one, then ``k`` low bits."""
        assert value >= 0
        low = format(value & ((1 << k) - 1), f"0{k}b") if k else ""
        self.parts.append("0" * (value >> k) + "1" + low)

    def var(self, value: int, k: int) -> None:
        """Signed Rice code: ``uvar(k + 1)`` of 2v (v >= 0) or 2(~v) + 1 (v < 0)."""
        self.uvar((value << 1) if value >= 0 else ((~value) << 1) | 1, k + 1)

    def ulong(self, value: int) -> None:
        """Self-sized unsigned integer: the bit length as ``uvar(2)``, then the value."""
        n = value.bit_length()
        self.uvar(n, ULONGSIZE)
        self.uvar(value, n)

    def residuals(self, res: np.ndarray, k: int) -> None:
        """A block of signed residuals with Rice parameter ``k``."""
        kk = k + 1
        u = np.where(res >= 0, res << 1, ((~res) << 1) | 1).astype(np.int64)
        fmt = f"0{kk}b"
        mask = (1 << kk) - 1
        self.parts.append(
            "".join("0" * (v >> kk) + "1" + format(v & mask, fmt) for v in u.tolist())
        )

    def getvalue(self) -> bytes:
        """The bits, zero padded to whole bytes."""
        bits = "".join(self.parts)
        bits += "0" * (-len(bits) % 8)
        return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _best_k(res: np.ndarray) -> int:
    """Rice parameter minimizing the coded size of ``res`` (var(k) = uvar(k + 1))."""
    u = np.where(res >= 0, res << 1, ((~res) << 1) | 1).astype(np.int64)
    costs = [int((u >> (k + 1)).sum()) + len(u) * (k + 2) for k in range(24)]
    return int(np.argmin(costs))


def _lpc_coefs(y: np.ndarray, hist: np.ndarray, order: int) -> list[int]:
    """Least-squares LPC coefficients for the block, quantized to LPCQUANT bits."""
    full = np.concatenate([hist, y]).astype(np.float64)
    n0 = len(hist)
    rows = np.stack([full[n0 - 1 - j : len(full) - 1 - j] for j in range(order)], axis=1)
    coef, *_ = np.linalg.lstsq(rows, full[n0:], rcond=None)
    return [int(c) for c in np.clip(np.round(coef * (1 << LPCQUANT)), -2000, 2000)]


def encode_shorten(
    samples: np.ndarray,
    *,
    blocksize: int = 256,
    nmean: int = 4,
    version: int = 2,
    ftype: int = TYPE_S16LH,
    lpc_order: int = 0,
    use_zero: bool = True,
    use_bitshift: bool = True,
    verbatim: bytes | None = None,
    stats: dict[int, int] | None = None,
) -> bytes:
    """Encode int16 ``samples`` ``[n]`` or ``[n, channels]`` as a shorten stream.

    Returns the whole stream: ``ajkg``, the version byte, then the bit-coded header,
    blocks and QUIT. If ``stats`` is given, it is filled with ``{command: count}``.
    """
    counts = stats if stats is not None else {}
    x = np.asarray(samples)
    x = (x[:, None] if x.ndim == 1 else x).astype(np.int64)
    n, nchan = x.shape
    nwrap = max(NWRAP, lpc_order)
    lpcqoffset = (1 << LPCQUANT) if version >= 2 else 0

    bw = BitWriter()
    for field in (ftype, nchan, blocksize, lpc_order, nmean, 0):  # 0 skip bytes
        bw.ulong(field)
    if verbatim is not None:
        bw.command(FN_VERBATIM, counts)
        bw.uvar(len(verbatim), VERBATIM_CKSIZE_SIZE)
        for byte in verbatim:
            bw.uvar(byte, VERBATIM_BYTE_SIZE)

    hist = [np.zeros(nwrap, dtype=np.int64) for _ in range(nchan)]
    means = [[0] * max(nmean, 1) for _ in range(nchan)]
    bitshift, size = 0, blocksize
    for start in range(0, n, blocksize):
        frame = x[start : start + blocksize]
        if len(frame) != size:
            size = len(frame)
            bw.command(FN_BLOCKSIZE, counts)
            bw.ulong(size)
        for c in range(nchan):
            col = frame[:, c]
            if use_bitshift:
                nz = col[col != 0]
                shift = 0
                if nz.size:
                    while shift < 15 and not np.any(nz & ((1 << (shift + 1)) - 1)):
                        shift += 1
                else:
                    shift = bitshift
                if shift != bitshift:
                    bitshift = shift
                    bw.command(FN_BITSHIFT, counts)
                    bw.uvar(bitshift, BITSHIFTSIZE)
            y = col >> bitshift  # the values the decoder reconstructs before shifting up
            if nmean == 0:
                coffset = means[c][0]
            else:
                coffset = _cdiv(sum(means[c]) + (nmean // 2 if version >= 2 else 0), nmean)
                if version >= 2 and bitshift:
                    coffset >>= bitshift
            prev = hist[c]
            buf = np.concatenate([prev, y])  # decoder's history + block after this block
            if use_zero and not np.any(y):
                bw.command(FN_ZERO, counts)
            else:
                h = len(prev)
                x1, x2, x3 = buf[h - 1 : -1], buf[h - 2 : -2], buf[h - 3 : -3]
                options = [
                    (0, y - coffset),
                    (1, y - x1),
                    (2, y - 2 * x1 + x2),
                    (3, y - 3 * x1 + 3 * x2 - x3),
                ]
                coefs: list[int] = []
                if lpc_order:
                    coefs = _lpc_coefs(y - coffset, prev - coffset, lpc_order)
                    work = buf.copy()
                    work[h - lpc_order : h] -= coffset
                    work[h:] -= coffset
                    acc = np.full(len(y), lpcqoffset, dtype=np.int64)
                    for j, a in enumerate(coefs):
                        acc += a * work[h - 1 - j : len(work) - 1 - j]
                    options.append((FN_QLPC, work[h:] - (acc >> LPCQUANT)))
                cmd, res = min(options, key=lambda o: int(np.abs(o[1]).sum()))
                k = _best_k(res)
                bw.command(cmd, counts)
                bw.uvar(k, ENERGYSIZE)
                if cmd == FN_QLPC:
                    bw.uvar(lpc_order, LPCQSIZE)
                    for a in coefs:
                        bw.var(a, LPCQUANT)
                bw.residuals(res, k)
                if cmd == FN_QLPC:  # the decoder leaves the offset-removed history in place
                    buf = work + np.r_[np.zeros(h, np.int64), np.full(len(y), coffset)]
            if nmean > 0:
                mean = _cdiv(int(y.sum()) + (size // 2 if version >= 2 else 0), size)
                means[c] = means[c][1:] + [mean << bitshift if version >= 2 else mean]
            hist[c] = buf[-nwrap:].copy()
    bw.command(FN_QUIT, counts)
    return b"ajkg" + bytes([version]) + bw.getvalue()


def riff_header(n: int, sample_rate: int, channels: int = 1) -> bytes:
    """The canonical 44-byte header of a 16-bit PCM RIFF WAV file with ``n`` frames."""
    data = n * channels * 2
    return (
        b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, channels, sample_rate,
                                sample_rate * channels * 2, channels * 2, 16)
        + b"data" + struct.pack("<I", data)
    )  # fmt: skip


def sphere_header(fields: list[tuple[str, str, object]], size: int = 1024) -> bytes:
    """A NIST_1A header of ``size`` bytes from ``(key, type, value)`` triples."""
    lines = ["NIST_1A", f"{size:>7}"]
    for key, kind, value in fields:
        if kind == "s":
            lines.append(f"{key} -s{len(str(value))} {value}")
        else:
            lines.append(f"{key} -{kind} {value}")
    text = ("\n".join(lines) + "\nend_head\n").encode("ascii")
    assert len(text) <= size
    return text + b" " * (size - len(text))


def write_sphere(
    path: str | Path,
    samples_int16: np.ndarray,
    sample_rate: int,
    coding: str = "pcm",
    byte_format: str = "01",
    **shorten_kwargs,
) -> Path:
    """Write a NIST SPHERE file holding 16-bit ``samples_int16`` (``[n]`` or ``[n, ch]``).

    ``coding`` is ``"pcm"`` (raw samples in ``byte_format`` order: ``"01"`` little endian,
    ``"10"`` big endian) or ``"shorten"`` (``pcm,embedded-shorten-v2.00``; the shorten file
    type follows ``byte_format``). Extra keyword arguments go to :func:`encode_shorten`.
    """
    x = np.asarray(samples_int16, dtype=np.int16)
    x2 = x[:, None] if x.ndim == 1 else x
    if coding == "pcm":
        payload = x2.astype("<i2" if byte_format == "01" else ">i2").tobytes()
        coding_str = "pcm"
    elif coding == "shorten":
        ftype = TYPE_S16LH if byte_format == "01" else TYPE_S16HL
        payload = encode_shorten(x2, ftype=ftype, **shorten_kwargs)
        coding_str = "pcm,embedded-shorten-v2.00"
    else:
        raise ValueError(f"coding must be 'pcm' or 'shorten', not {coding!r}")
    header = sphere_header(
        [
            ("database_id", "s", "TIDIGITS"),
            ("sample_count", "i", x2.shape[0]),
            ("sample_rate", "i", int(sample_rate)),
            ("channel_count", "i", x2.shape[1]),
            ("sample_n_bytes", "i", 2),
            ("sample_byte_format", "s", byte_format),
            ("sample_sig_bits", "i", 16),
            ("sample_coding", "s", coding_str),
        ]
    )
    path = Path(path)
    path.write_bytes(header + payload)
    return path
