"""NIST SPHERE / shorten reading (TIDIGITS audio) against fixtures written by our encoder.

The encoder in ``tests/shorten_writer.py`` is itself cross-checked against ffmpeg's shorten
decoder (through PyAV, when importable), so the round trips are not just self-consistent.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.sphere import decode_shorten, parse_sphere_header, read_sphere
from tests.fixtures.sphere import (
    FN_BITSHIFT,
    FN_BLOCKSIZE,
    FN_QLPC,
    FN_VERBATIM,
    FN_ZERO,
    TYPE_S16HL,
    encode_shorten,
    riff_header,
    sphere_header,
    write_sphere,
)

RATE = 20000


def _clip(name: str) -> np.ndarray:
    """Deterministic int16 test signals."""
    rng = np.random.default_rng(sum(name.encode()))
    t = np.arange(RATE) / RATE
    if name == "noise":  # full-scale white noise, including both extremes
        x = rng.integers(-32768, 32768, 4000, dtype=np.int16)
        x[:4] = [-32768, 32767, -32768, 32767]
        return x
    if name == "sine":  # a 1 s tone with a DC offset and a little noise
        y = 9000 * np.sin(2 * np.pi * 440 * t) + 700 + rng.normal(0, 20, t.size)
        return np.round(y).astype(np.int16)
    if name == "silence":
        return np.zeros(2048, dtype=np.int16)
    if name == "short_last_block":  # 1000 = 3 * 256 + 232
        return np.round(rng.normal(-300, 2500, 1000)).astype(np.int16)
    if name == "speechlike":  # silence, a burst with a DC offset, silence
        x = np.zeros(3000, dtype=np.int16)
        x[700:2300] = np.round(
            3000 * np.sin(2 * np.pi * 180 * t[:1600]) * np.hanning(1600) + 150
        ).astype(np.int16)
        return x
    if name == "coarse":  # samples sharing 3 low zero bits -> FN_BITSHIFT
        return (np.round(rng.normal(-50, 400, 1500)).astype(np.int16) * 8).astype(np.int16)
    raise KeyError(name)


CLIPS = ["noise", "sine", "silence", "short_last_block", "speechlike", "coarse"]


def _assert_corrupt(path: Path, func, *args) -> DatasetCorruptError:
    with pytest.raises(DatasetCorruptError) as info:
        func(*args)
    assert str(path) in str(info.value)
    return info.value


# --------------------------------------------------------------------------- header


HAND_HEADER = (
    b"NIST_1A\n   1024\n"
    b"database_id -s8 TIDIGITS\n"
    b"speaker_name -s9 Ann Smith\n"
    b"sample_count -i 12345\n"
    b"sample_rate -i 20000\n"
    b"channel_count -i 1\n"
    b"sample_n_bytes -i 2\n"
    b"sample_byte_format -s2 10\n"
    b"sample_coding -s26 pcm,embedded-shorten-v2.00\n"
    b"sample_min -i -4321\n"
    b"recording_gain -r -1.25\n"
    b"end_head\n"
)


def test_parse_hand_written_header():
    raw = HAND_HEADER + b" " * (1024 - len(HAND_HEADER)) + b"payload"
    assert parse_sphere_header(raw, "hand.wav") == {
        "database_id": "TIDIGITS",
        "speaker_name": "Ann Smith",
        "sample_count": 12345,
        "sample_rate": 20000,
        "channel_count": 1,
        "sample_n_bytes": 2,
        "sample_byte_format": "10",
        "sample_coding": "pcm,embedded-shorten-v2.00",
        "sample_min": -4321,
        "recording_gain": -1.25,
        "header_size": 1024,
    }


def test_writer_header_parses():
    header = sphere_header([("sample_rate", "i", 8000), ("sample_coding", "s", "pcm")])
    assert len(header) == 1024
    fields = parse_sphere_header(header)
    assert fields["sample_rate"] == 8000 and fields["sample_coding"] == "pcm"


GARBLED = {
    "magic": HAND_HEADER.replace(b"NIST_1A", b"NIST_1B"),
    "size": HAND_HEADER.replace(b"   1024\n", b"   1O24\n"),
    "no_end_head": HAND_HEADER.replace(b"end_head", b"end_hexd"),
    "no_type": HAND_HEADER.replace(b"sample_rate -i 20000", b"sample_rate 20000"),
    "bad_int": HAND_HEADER.replace(b"-i 20000", b"-i 20k00"),
    "bad_type": HAND_HEADER.replace(b"-r -1.25", b"-q -1.25"),
    "binary": HAND_HEADER.replace(b"Ann Smith", b"Ann\xffSmith"),
}


@pytest.mark.parametrize("case", sorted(GARBLED))
def test_garbled_header_raises(tmp_path, case):
    path = tmp_path / f"{case}.wav"
    raw = GARBLED[case]
    path.write_bytes(raw + b" " * (1024 - len(raw)) + b"\0" * 64)
    _assert_corrupt(path, read_sphere, path)
    _assert_corrupt(path, parse_sphere_header, path.read_bytes(), path)


def test_header_longer_than_file_raises(tmp_path):
    path = tmp_path / "cut_header.wav"
    path.write_bytes(HAND_HEADER)  # no padding to the declared 1024 bytes
    _assert_corrupt(path, read_sphere, path)


# --------------------------------------------------------------------------- shorten codec


@pytest.mark.parametrize("name", CLIPS)
def test_shorten_round_trip_is_bit_exact(name):
    x = _clip(name)
    stats: dict[int, int] = {}
    out = decode_shorten(encode_shorten(x, stats=stats))
    assert out.dtype == np.int16 and out.shape == (len(x), 1)
    np.testing.assert_array_equal(out[:, 0], x)
    # the fixtures really exercise the decoder paths they are meant to
    expect = {"silence": FN_ZERO, "short_last_block": FN_BLOCKSIZE, "coarse": FN_BITSHIFT}
    if name in expect:
        assert stats.get(expect[name], 0) > 0, stats
    if name == "sine":
        assert stats.get(2, 0) + stats.get(3, 0) > 0, stats  # DIFF2/DIFF3 win on smooth audio
    if name == "noise":
        assert stats.get(0, 0) > 0, stats  # DIFF0 wins on white noise


@pytest.mark.parametrize(
    "options",
    [
        {"version": 1},
        {"nmean": 0},
        {"lpc_order": 3},
        {"blocksize": 100, "use_zero": False, "use_bitshift": False},
        {"ftype": TYPE_S16HL, "verbatim": b"any header bytes"},
    ],
    ids=["v1", "nmean0", "qlpc", "plain_blocks", "s16hl_verbatim"],
)
@pytest.mark.parametrize("name", ["sine", "speechlike", "short_last_block"])
def test_shorten_round_trip_variants(name, options):
    x = _clip(name)
    stats: dict[int, int] = {}
    out = decode_shorten(encode_shorten(x, stats=stats, **options))
    np.testing.assert_array_equal(out[:, 0], x)
    if options.get("lpc_order") and name == "sine":
        assert stats.get(FN_QLPC, 0) > 0, stats
    if "verbatim" in options:
        assert stats[FN_VERBATIM] == 1


def test_shorten_stereo_round_trip():
    x = np.stack([_clip("sine"), np.roll(_clip("sine"), 37) // 3], axis=1)[:5000]
    out = decode_shorten(encode_shorten(x, blocksize=300, lpc_order=2))
    np.testing.assert_array_equal(out, x)


def test_shorten_decode_speed():
    rng = np.random.default_rng(7)
    x = np.round(rng.normal(0, 2000, RATE)).astype(np.int16)
    stream = encode_shorten(x)
    best = min(_timed(decode_shorten, stream) for _ in range(3))
    assert best < 1.0, f"decoding 1 s of 20 kHz audio took {best:.3f} s"


def _timed(func, *args) -> float:
    t0 = time.perf_counter()
    func(*args)
    return time.perf_counter() - t0


def test_shorten_unsupported_file_type():
    stream = encode_shorten(_clip("short_last_block"), ftype=2)  # unsigned 8-bit
    with pytest.raises(DatasetCorruptError, match="file type 2"):
        decode_shorten(stream, "u8.shn")


def test_shorten_unsupported_version():
    stream = bytearray(encode_shorten(_clip("short_last_block")))
    stream[4] = 3
    with pytest.raises(DatasetCorruptError, match="version 3"):
        decode_shorten(bytes(stream), "v3.shn")


@pytest.mark.parametrize(
    "options",
    [{}, {"version": 1}, {"lpc_order": 3}, {"nmean": 0, "blocksize": 200}],
    ids=["default", "v1", "qlpc", "nmean0"],
)
def test_encoder_matches_ffmpeg_shorten_decoder(options):
    """Independent check of the fixture encoder (and our decoder) against ffmpeg's."""
    av = pytest.importorskip("av")
    if "shn" not in av.formats_available or "shorten" not in av.codecs_available:
        pytest.skip("this PyAV build has no shorten decoder")
    x = np.concatenate([_clip("speechlike"), _clip("sine")[:3000], _clip("coarse")])
    stream = encode_shorten(x, verbatim=riff_header(len(x), RATE), **options)
    with av.open(io.BytesIO(stream), format="shn") as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    np.testing.assert_array_equal(np.concatenate(frames).astype(np.int16), x)
    np.testing.assert_array_equal(decode_shorten(stream)[:, 0], x)


# --------------------------------------------------------------------------- read_sphere


@pytest.mark.parametrize("byte_format", ["01", "10"])
@pytest.mark.parametrize("coding", ["pcm", "shorten"])
def test_read_sphere(tmp_path, coding, byte_format):
    x = _clip("speechlike")
    path = write_sphere(tmp_path / "a.wav", x, RATE, coding=coding, byte_format=byte_format)
    raw = path.read_bytes()
    assert raw.startswith(b"NIST_1A\n   1024\n")
    if coding == "pcm":  # the payload really is in the declared byte order
        assert raw[1024:] == x.astype("<i2" if byte_format == "01" else ">i2").tobytes()
    else:
        assert raw[1024:1028] == b"ajkg"
    wave, rate = read_sphere(path)
    assert rate == RATE and wave.dtype == np.float32 and wave.shape == x.shape
    np.testing.assert_array_equal(wave, x.astype(np.float32) / 32768)
    assert wave.min() >= -1.0 and wave.max() < 1.0


@pytest.mark.parametrize("coding", ["pcm", "shorten"])
def test_read_sphere_stereo_takes_first_channel(tmp_path, coding):
    x = np.stack([_clip("short_last_block"), -_clip("short_last_block") // 2], axis=1)
    path = write_sphere(tmp_path / "st.wav", x, 16000, coding=coding)
    wave, rate = read_sphere(path)
    assert rate == 16000
    np.testing.assert_array_equal(wave, x[:, 0].astype(np.float32) / 32768)


def test_read_riff_wav(tmp_path):
    x = _clip("sine")[:4000]
    path = tmp_path / "riff.wav"
    sf.write(path, x, 8000, subtype="PCM_16")
    wave, rate = read_sphere(path)
    assert rate == 8000 and wave.dtype == np.float32
    np.testing.assert_array_equal(wave, x.astype(np.float32) / 32768)


@pytest.mark.parametrize("keep", ["half", "all_but_last_byte", "magic_only", "header_only"])
def test_truncated_shorten_raises(tmp_path, keep):
    path = write_sphere(tmp_path / "cut.wav", _clip("speechlike"), RATE, coding="shorten")
    raw = path.read_bytes()
    payload_len = len(raw) - 1024
    cut = {
        "half": 1024 + payload_len // 2,
        "all_but_last_byte": len(raw) - 1,
        "magic_only": 1024 + 3,
        "header_only": 1024,
    }[keep]
    path.write_bytes(raw[:cut])
    _assert_corrupt(path, read_sphere, path)


def test_truncated_pcm_raises(tmp_path):
    path = write_sphere(tmp_path / "cut.wav", _clip("speechlike"), RATE, coding="pcm")
    path.write_bytes(path.read_bytes()[:-100])
    err = _assert_corrupt(path, read_sphere, path)
    assert "truncated" in str(err)


def test_shorten_shorter_than_header_says_raises(tmp_path):
    x = _clip("short_last_block")
    header = sphere_header(
        [
            ("sample_count", "i", len(x) + 10),
            ("sample_rate", "i", RATE),
            ("channel_count", "i", 1),
            ("sample_n_bytes", "i", 2),
            ("sample_coding", "s", "pcm,embedded-shorten-v2.00"),
        ]
    )
    path = tmp_path / "short.wav"
    path.write_bytes(header + encode_shorten(x))
    _assert_corrupt(path, read_sphere, path)


def test_shorten_header_without_shorten_payload_raises(tmp_path):
    x = _clip("sine")[:500]
    header = sphere_header(
        [("sample_rate", "i", RATE), ("sample_coding", "s", "pcm,embedded-shorten-v2.00")]
    )
    path = tmp_path / "pcm_as_shn.wav"
    path.write_bytes(header + x.astype("<i2").tobytes())
    err = _assert_corrupt(path, read_sphere, path)
    assert "ajkg" in str(err)


@pytest.mark.parametrize("content", [b"", b"hello world\n", b"OggS\0\x02" + bytes(range(200))])
def test_non_sphere_file_raises(tmp_path, content):
    path = tmp_path / "not_audio.wav"
    path.write_bytes(content)
    err = _assert_corrupt(path, read_sphere, path)
    assert "NIST" in str(err)


def test_broken_riff_raises(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x10\0\0\0WAVEjunk")
    _assert_corrupt(path, read_sphere, path)


def test_cross_check_with_desphere(tmp_path):
    desphere = pytest.importorskip("desphere")
    if not (hasattr(desphere, "read_sphere") and hasattr(desphere, "transcode")):
        pytest.skip("unknown desphere API")
    x = _clip("speechlike")
    path = write_sphere(tmp_path / "d.wav", x, RATE, coding="shorten")
    header, data = desphere.read_sphere(str(path))
    buf = io.BytesIO()
    desphere.transcode(header, data, buf)
    theirs, rate = sf.read(io.BytesIO(buf.getvalue()), dtype="int16")
    assert rate == RATE
    np.testing.assert_array_equal(theirs, x)
    np.testing.assert_array_equal(read_sphere(path)[0], x.astype(np.float32) / 32768)


def test_shorten_longer_than_header_says_is_trimmed(tmp_path):
    x = _clip("short_last_block")
    header = sphere_header(
        [
            ("sample_count", "i", 900),
            ("sample_rate", "i", RATE),
            ("sample_coding", "s", "pcm,embedded-shorten-v2.00"),
        ]
    )
    path = tmp_path / "long.wav"
    path.write_bytes(header + encode_shorten(x))
    wave, _ = read_sphere(path)
    np.testing.assert_array_equal(wave, x[:900].astype(np.float32) / 32768)
