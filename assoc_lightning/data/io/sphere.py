"""Read NIST SPHERE audio, including shorten-compressed SPHERE, without external tools.

TIDIGITS (LDC93S10) ships ``.wav`` files that are really NIST SPHERE: a fixed-size ASCII
header (``NIST_1A`` / header size / ``key -type value`` lines / ``end_head``) followed by
the samples, which on the LDC discs are compressed with Tony Robinson's *shorten*
(``sample_coding -s26 pcm,embedded-shorten-v2.00``). Neither libsndfile nor torchaudio
decode embedded shorten, and ``sph2pipe`` is a C tool we do not want as a dependency, so
this module carries a small shorten decoder written from the published format
description:

* the stream starts with the magic ``ajkg`` and a version byte, then a big-endian
  bitstream of Rice codes: ``uvar(k)`` is a unary quotient (zeros ended by a one)
  followed by ``k`` low bits; ``var(k)`` is ``uvar(k + 1)`` folded to a signed value
  (odd -> negative); ``ulong`` is ``uvar(uvar(2))``;
* a header of ``ulong`` fields: file type, channels, block size, max LPC order, number
  of means, skip bytes;
* commands (``uvar(2)``): fixed polynomial predictors DIFF0..DIFF3, quantized LPC, ZERO,
  BLOCKSIZE, BITSHIFT, VERBATIM and QUIT; each audio command decodes one block of one
  channel, channels interleaved block by block, with a running mean (``nmean`` blocks)
  used as the DC offset of DIFF0 / QLPC and per-channel history carried across blocks.

The residual bit parsing is a tight loop over ``bytes.find`` (C speed); prediction for
the fixed predictors is vectorized with cumulative sums; quantized LPC (rare in SPHERE
files) is a plain loop. Plain PCM SPHERE and RIFF WAV files are read too, so callers can
use :func:`read_sphere` for any TIDIGITS redistribution.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from assoc_lightning.data.errors import DatasetCorruptError

__all__ = ["decode_shorten", "parse_sphere_header", "read_sphere"]

SPHERE_MAGIC = b"NIST_1A"
SHORTEN_MAGIC = b"ajkg"
_FIELD = re.compile(r"(\S+)[ \t]+-(\S+)[ \t](.*)\Z")  # key -type value

# Shorten bit-field widths (Rice parameters) and limits.
_ULONGSIZE = 2
_FNSIZE = 2
_ENERGYSIZE = 3
_BITSHIFTSIZE = 2
_LPCQSIZE = 2
_LPCQUANT = 5
_VERBATIM_CKSIZE_SIZE = 5
_VERBATIM_BYTE_SIZE = 8
_XBYTESIZE = 7
_NWRAP = 3
_MAX_CHANNELS = 8
_MAX_BLOCKSIZE = 65535

# Shorten commands.
FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3 = 0, 1, 2, 3
FN_QUIT, FN_BLOCKSIZE, FN_BITSHIFT, FN_QLPC, FN_ZERO, FN_VERBATIM = 4, 5, 6, 7, 8, 9
_AUDIO_COMMANDS = frozenset({FN_DIFF0, FN_DIFF1, FN_DIFF2, FN_DIFF3, FN_QLPC, FN_ZERO})

# Shorten file types: signed 16-bit, high byte first (big endian) / low byte first.
TYPE_S16HL, TYPE_S16LH = 3, 5
_TYPE_NAMES = {
    0: "ulaw (au1)",
    1: "s8",
    2: "u8",
    3: "s16hl",
    4: "u16hl",
    5: "s16lh",
    6: "u16lh",
    7: "ulaw",
    8: "au2",
    9: "au3",
    10: "alaw",
}
_SUPPORTED_VERSIONS = (1, 2)


def _cdiv(a: int, b: int) -> int:
    """Integer division truncating toward zero, like C (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


# --------------------------------------------------------------------------- SPHERE header


def parse_sphere_header(raw: bytes, path: str | Path = "<bytes>") -> dict:
    """Parse a NIST SPHERE header into ``{key: value}`` with typed values.

    ``-i`` values become ``int``, ``-r`` ``float`` and ``-sN`` ``str``. ``raw`` may be the
    header alone or the whole file; parsing stops at ``end_head``. The header size from the
    second line is returned under the key ``"header_size"`` unless the header sets it.

    Raises:
        DatasetCorruptError: the bytes are not a well-formed SPHERE header.
    """
    expected = (
        "a NIST SPHERE header: 'NIST_1A', the header size, 'key -type value' lines, 'end_head'"
    )
    if not raw.startswith(SPHERE_MAGIC + b"\n"):
        raise DatasetCorruptError(path, expected, f"first bytes {raw[:16]!r}")
    lines = raw.split(b"\n", 2)
    if len(lines) < 3:
        raise DatasetCorruptError(path, expected, "a header cut short after its first line")
    try:
        header_size = int(lines[1].strip())
    except ValueError:
        raise DatasetCorruptError(path, expected, f"header size line {lines[1][:32]!r}") from None
    if header_size < 16 or header_size % 1024 != 0:
        raise DatasetCorruptError(
            path, expected, f"header size {header_size} (not a multiple of 1024)"
        )
    block = raw[:header_size]
    if len(block) < header_size:
        raise DatasetCorruptError(
            path, expected, f"{len(raw)} bytes, less than the header size {header_size}"
        )
    end = block.find(b"\nend_head")
    if end < 0:
        raise DatasetCorruptError(
            path, expected, f"no 'end_head' within the first {header_size} bytes"
        )
    try:
        body = block[:end].decode("ascii")
    except UnicodeDecodeError:
        raise DatasetCorruptError(path, expected, "non-ASCII bytes in the header") from None

    fields: dict = {}
    for lineno, line in enumerate(body.split("\n")[2:], start=3):
        line = line.rstrip("\r")
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        match = _FIELD.match(line)
        if match is None:
            raise DatasetCorruptError(path, expected, f"header line {lineno}: {line!r}")
        key, kind, value = match.groups()
        try:
            if kind == "i":
                fields[key] = int(value.strip())
            elif kind == "r":
                fields[key] = float(value.strip())
            elif kind.startswith("s") and kind[1:].isdigit():
                fields[key] = value[: int(kind[1:])]  # a shorter string is kept whole
            else:
                raise ValueError(f"unknown type -{kind}")
        except ValueError as err:
            raise DatasetCorruptError(
                path, expected, f"header line {lineno}: {line!r} ({err})"
            ) from None
    fields.setdefault("header_size", header_size)
    return fields


# --------------------------------------------------------------------------- shorten


class _Bits:
    """Big-endian bit reader over a byte string, for shorten's Rice codes."""

    def __init__(self, data: bytes, path: str | Path) -> None:
        self.bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
        self.text = (self.bits | 0x30).tobytes()  # b"0"/b"1" per bit: bytes.find runs in C
        self.nbits = int(self.bits.size)
        self.pos = 0
        self.path = path

    def truncated(self, what: str) -> DatasetCorruptError:
        return DatasetCorruptError(
            self.path,
            "a complete shorten stream ending in the QUIT command",
            f"the data ends inside {what} (at bit {self.pos} of {self.nbits})",
            "the file is truncated; download or copy it again",
        )

    def uvar(self, k: int, what: str = "a field") -> int:
        """Read an unsigned Rice code with ``k`` low bits."""
        one = self.text.find(b"1", self.pos)
        end = one + 1 + k
        if one < 0 or end > self.nbits:
            raise self.truncated(what)
        value = (one - self.pos) << k
        if k:
            value |= int(self.text[one + 1 : end], 2)
        self.pos = end
        return value

    def var(self, k: int, what: str = "a field") -> int:
        """Read a signed Rice code (``uvar(k + 1)``, low bit = sign)."""
        u = self.uvar(k + 1, what)
        return ~(u >> 1) if u & 1 else u >> 1

    def ulong(self, what: str = "a field") -> int:
        """Read shorten's self-sized unsigned integer: ``uvar(uvar(2))``."""
        return self.uvar(self.uvar(_ULONGSIZE, what), what)

    def residuals(self, n: int, k: int) -> np.ndarray:
        """Read ``n`` signed Rice codes ``var(k)`` as int64 (the block's residuals)."""
        kk = k + 1
        if kk > 40:
            raise DatasetCorruptError(
                self.path, "a shorten residual width of at most 40 bits", f"{kk} bits"
            )
        find, p = self.text.find, self.pos
        ones = [0] * n
        for i in range(n):
            one = find(b"1", p)
            if one < 0:
                raise self.truncated("a block of residuals")
            ones[i] = one
            p = one + 1 + kk
        if p > self.nbits:
            raise self.truncated("a block of residuals")
        stops = np.asarray(ones, dtype=np.int64)
        starts = np.empty_like(stops)
        starts[:1] = self.pos
        starts[1:] = stops[:-1] + 1 + kk
        self.pos = p
        low_idx = stops[:, None] + 1 + np.arange(kk, dtype=np.int64)
        weights = np.left_shift(np.int64(1), np.arange(kk - 1, -1, -1, dtype=np.int64))
        low = self.bits[low_idx].astype(np.int64) @ weights
        u = ((stops - starts) << kk) | low
        return np.where(u & 1, ~(u >> 1), u >> 1)


def _fixed_predict(cmd: int, res: np.ndarray, hist: np.ndarray, coffset: int) -> np.ndarray:
    """Undo a fixed polynomial predictor (DIFF0..DIFF3) with cumulative sums."""
    if cmd == FN_DIFF0:
        return res + coffset
    x1, x2, x3 = int(hist[-1]), int(hist[-2]), int(hist[-3])
    if cmd == FN_DIFF1:  # x[i] = r[i] + x[i-1]
        return x1 + np.cumsum(res)
    if cmd == FN_DIFF2:  # first differences d[i] = r[i] + d[i-1]
        return x1 + np.cumsum((x1 - x2) + np.cumsum(res))
    # FN_DIFF3: second differences e[i] = r[i] + e[i-1]
    e = (x1 - 2 * x2 + x3) + np.cumsum(res)
    d = (x1 - x2) + np.cumsum(e)
    return x1 + np.cumsum(d)


def decode_shorten(data: bytes, path: str | Path = "<shorten stream>") -> np.ndarray:
    """Decode a shorten (format version 1 or 2) stream of signed 16-bit audio.

    Args:
        data: the stream, starting with the ``ajkg`` magic.
        path: the file it came from, for error messages.

    Returns:
        int16 array ``[samples, channels]``.

    Raises:
        DatasetCorruptError: bad magic, unsupported version or file type, a truncated
            stream, an unknown command or out-of-range fields/samples.
    """
    expected = "a shorten stream: 'ajkg', format version 1 or 2, signed 16-bit samples"
    if len(data) < 5 or data[:4] != SHORTEN_MAGIC:
        raise DatasetCorruptError(path, expected, f"first bytes {bytes(data[:8])!r}")
    version = data[4]
    if version not in _SUPPORTED_VERSIONS:
        raise DatasetCorruptError(path, expected, f"shorten format version {version}")
    br = _Bits(bytes(data[5:]), path)

    ftype = br.ulong("the header")
    nchan = br.ulong("the header")
    blocksize = br.ulong("the header")
    maxnlpc = br.ulong("the header")
    nmean = br.ulong("the header")
    nskip = br.ulong("the header")
    if ftype not in (TYPE_S16HL, TYPE_S16LH):
        name = _TYPE_NAMES.get(ftype, "unknown")
        raise DatasetCorruptError(
            path, expected + " (file type 3 s16hl or 5 s16lh)", f"file type {ftype} ({name})"
        )
    for name, value, lo, hi in (
        ("channel count", nchan, 1, _MAX_CHANNELS),
        ("block size", blocksize, 1, _MAX_BLOCKSIZE),
        ("max LPC order", maxnlpc, 0, 1024),
        ("mean count", nmean, 0, 32768),
        ("skip byte count", nskip, 0, 1 << 20),
    ):
        if not lo <= value <= hi:
            raise DatasetCorruptError(path, f"a shorten {name} in [{lo}, {hi}]", str(value))
    for _ in range(nskip):
        br.uvar(_XBYTESIZE, "the skipped header bytes")

    nwrap = max(_NWRAP, maxnlpc)
    lpcqoffset = (1 << _LPCQUANT) if version >= 2 else 0
    hist = [np.zeros(nwrap, dtype=np.int64) for _ in range(nchan)]
    means = [[0] * max(nmean, 1) for _ in range(nchan)]  # signed types start at offset 0
    blocks: list[list[np.ndarray]] = [[] for _ in range(nchan)]
    chan, bitshift = 0, 0

    while True:
        cmd = br.uvar(_FNSIZE, "a command")
        if cmd in _AUDIO_COMMANDS:
            resn = br.uvar(_ENERGYSIZE, "a block header") if cmd != FN_ZERO else 0
            # DC offset for this block from the means of the previous nmean blocks.
            if nmean == 0:
                coffset = means[chan][0]
            else:
                total = sum(means[chan]) + (nmean // 2 if version >= 2 else 0)
                coffset = _cdiv(total, nmean)
                if version >= 2 and bitshift:
                    coffset >>= bitshift
            prev = hist[chan]
            if cmd == FN_ZERO:
                block = np.zeros(blocksize, dtype=np.int64)
                buf = np.concatenate([prev, block])
            elif cmd == FN_QLPC:
                order = br.uvar(_LPCQSIZE, "an LPC order")
                if order > nwrap:
                    raise DatasetCorruptError(
                        path, f"an LPC order of at most {nwrap}", f"order {order}"
                    )
                coefs = [br.var(_LPCQUANT, "LPC coefficients") for _ in range(order)]
                res = br.residuals(blocksize, resn).tolist()
                work = prev.tolist()
                for j in range(nwrap - order, nwrap):
                    work[j] -= coffset
                for r in res:
                    acc = lpcqoffset
                    for j, c in enumerate(coefs):
                        acc += c * work[-1 - j]
                    work.append(r + (acc >> _LPCQUANT))
                buf = np.asarray(work, dtype=np.int64)
                buf[nwrap:] += coffset
                block = buf[nwrap:]
            else:
                res = br.residuals(blocksize, resn)
                block = _fixed_predict(cmd, res, prev, coffset)
                buf = np.concatenate([prev, block])

            if nmean > 0:  # push this block's mean (rounded in version 2)
                total = int(block.sum()) + (blocksize // 2 if version >= 2 else 0)
                mean = _cdiv(total, blocksize)
                means[chan] = means[chan][1:] + [mean << bitshift if version >= 2 else mean]
            hist[chan] = buf[-nwrap:].copy()
            blocks[chan].append(block << bitshift if bitshift else block)
            chan = (chan + 1) % nchan
        elif cmd == FN_QUIT:
            break
        elif cmd == FN_BLOCKSIZE:
            blocksize = br.ulong("a block size")
            if not 1 <= blocksize <= _MAX_BLOCKSIZE:
                raise DatasetCorruptError(
                    path, f"a shorten block size in [1, {_MAX_BLOCKSIZE}]", str(blocksize)
                )
        elif cmd == FN_BITSHIFT:
            bitshift = br.uvar(_BITSHIFTSIZE, "a bit shift")
            if bitshift > 31:
                raise DatasetCorruptError(path, "a shorten bit shift of at most 31", str(bitshift))
        elif cmd == FN_VERBATIM:
            for _ in range(br.uvar(_VERBATIM_CKSIZE_SIZE, "a verbatim chunk")):
                br.uvar(_VERBATIM_BYTE_SIZE, "a verbatim chunk")
        else:
            raise DatasetCorruptError(
                path, "a shorten command in 0..9", f"command {cmd} at bit {br.pos}"
            )

    if chan != 0:
        raise DatasetCorruptError(
            path, f"blocks for all {nchan} channels before QUIT", f"a set ending at channel {chan}"
        )
    chans = [np.concatenate(b) if b else np.zeros(0, np.int64) for b in blocks]
    out = np.stack(chans, axis=1)
    if out.size and (out.min() < -32768 or out.max() > 32767):
        raise DatasetCorruptError(
            path,
            "decoded samples within the signed 16-bit range",
            f"samples in [{out.min()}, {out.max()}]",
        )
    return out.astype(np.int16)


# --------------------------------------------------------------------------- reader


def _read_pcm(payload: bytes, header: dict, path: Path) -> np.ndarray:
    """Samples ``[n, channels]`` int16 from a PCM SPHERE payload."""
    nbytes = header.get("sample_n_bytes", 2)
    nchan = header.get("channel_count", 1)
    order = header.get("sample_byte_format", "01")
    if nbytes != 2 or order not in ("01", "10") or not isinstance(nchan, int) or nchan < 1:
        raise DatasetCorruptError(
            path,
            "16-bit PCM SPHERE (sample_n_bytes 2, sample_byte_format 01 or 10)",
            f"sample_n_bytes {nbytes}, sample_byte_format {order!r}, channel_count {nchan}",
        )
    frame = 2 * nchan
    count = header.get("sample_count", len(payload) // frame)
    if not isinstance(count, int) or count < 0 or len(payload) < count * frame:
        raise DatasetCorruptError(
            path,
            f"{count} samples x {nchan} channel(s) x 2 bytes of PCM after the header",
            f"{len(payload)} bytes",
            "the file is truncated; download or copy it again",
        )
    dtype = "<i2" if order == "01" else ">i2"
    samples = np.frombuffer(payload, dtype=dtype, count=count * nchan)
    return samples.reshape(count, nchan).astype(np.int16)


def read_sphere(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a SPHERE (PCM or embedded shorten) or RIFF WAV file.

    Returns:
        ``(waveform, sample_rate)``: float32 ``[samples]`` of the first channel scaled to
        ``[-1, 1)``, and the sample rate in Hz.

    Raises:
        DatasetCorruptError: not SPHERE or WAV, an unsupported coding, or truncated data.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw.startswith(b"RIFF"):
        import soundfile as sf

        try:
            wav, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as err:  # soundfile raises LibsndfileError / RuntimeError
            raise DatasetCorruptError(path, "a readable RIFF WAV file", str(err)) from None
        return np.ascontiguousarray(wav[:, 0]), int(rate)
    if not raw.startswith(SPHERE_MAGIC):
        raise DatasetCorruptError(
            path,
            "a NIST SPHERE ('NIST_1A' header) or RIFF WAV audio file",
            f"first bytes {raw[:16]!r}",
        )
    header = parse_sphere_header(raw, path)
    rate = header.get("sample_rate")
    if not isinstance(rate, int | float) or rate <= 0:
        raise DatasetCorruptError(path, "a positive sample_rate in the SPHERE header", repr(rate))
    payload = raw[header["header_size"] :]
    coding = str(header.get("sample_coding", "pcm")).strip().lower()
    if "shorten" in coding:
        samples = decode_shorten(payload, path)
        nchan = header.get("channel_count", samples.shape[1])
        count = header.get("sample_count", samples.shape[0])
        if samples.shape[1] != nchan or samples.shape[0] < count:
            raise DatasetCorruptError(
                path,
                f"{count} samples x {nchan} channel(s) as the SPHERE header says",
                f"{samples.shape[0]} samples x {samples.shape[1]} channel(s) decoded",
            )
        samples = samples[:count]
    elif coding == "pcm":
        samples = _read_pcm(payload, header, path)
    else:
        raise DatasetCorruptError(
            path, "SPHERE sample_coding 'pcm' or 'pcm,embedded-shorten-*'", repr(coding)
        )
    wave = samples[:, 0].astype(np.float32) / np.float32(32768.0)
    return wave, int(rate)
