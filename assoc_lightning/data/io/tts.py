"""Offline speech synthesis with espeak-ng from the ``espeakng-loader`` wheel (ctypes, no apt).

Used to generate the embedded spoken-digits default. espeak-ng is deterministic from
process to process but not between repeated calls inside one process, so generation runs
in a fresh subprocess (``python data/io/tts.py JOB.json``: this file alone, standard library and
numpy only, so it starts in a blink) in a fixed order and
its output is cached on disk; the cache, not the synthesizer, is the reproducibility
guarantee.
"""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# English accents that espeak-ng 1.52 finds by name ("en-gb" is not found; "en" is British).
ENGLISH_VOICES = (
    "en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc",
)  # fmt: skip
# Voice variants left out: robotic or novelty effects that stop sounding like one talker.
_EXCLUDED_VARIANTS = {"Demonic", "UniRobot", "anikaRobot", "kaukovalta"}

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SynthesisError(RuntimeError):
    """espeak-ng failed (this file runs alone in a subprocess, so it raises no project error;
    the datamodule turns a failed job into one)."""


@dataclass(frozen=True)
class Speaker:
    """One synthetic talker: accent, voice variant, speaking rate (wpm), pitch and range (0-100)."""

    voice: str
    variant: str
    rate: int
    pitch: int
    pitch_range: int


def voice_variants() -> list[str]:
    """The voice variant names shipped in the wheel's espeak-ng-data, sorted."""
    import espeakng_loader

    vdir = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return sorted(
        p.name for p in vdir.iterdir() if p.is_file() and p.name not in _EXCLUDED_VARIANTS
    )


def sample_speakers(n: int, seed: int, variants: list[str] | None = None) -> list[Speaker]:
    """``n`` distinct speakers drawn with a seeded generator (the same list on every machine),
    their voice variants from ``variants`` (default: every one)."""
    rng = np.random.default_rng(seed)
    variants = list(variants) if variants is not None else voice_variants()
    speakers: list[Speaker] = []
    seen = set()
    while len(speakers) < n:
        s = Speaker(
            voice=ENGLISH_VOICES[rng.integers(len(ENGLISH_VOICES))],
            variant=variants[rng.integers(len(variants))],
            rate=int(rng.integers(110, 221)),
            pitch=int(rng.integers(20, 81)),
            pitch_range=int(rng.integers(20, 81)),
        )
        if s not in seen:
            seen.add(s)
            speakers.append(s)
    return speakers


def _random_breath(line: str) -> bool:
    """A variant's ``breath`` line that asks for noise on formants 1 and up: espeak-ng draws it
    from a generator it seeds itself, so such clips differ from process to process."""
    fields = line.split()
    return bool(fields) and fields[0] == "breath" and any(f != "0" for f in fields[2:])


def _breathless_data(source: Path, root: Path) -> Path:
    """A view of espeak-ng's data folder (symlinks) without the breath noise that makes
    synthesis random: the breathy variants (f2, f3, f5, whisper, whisperf, Alicia, victor,
    sandro) made 190 of the 2,400 default clips differ between two generations; with this view
    every generation is the same, and every other clip is as before.
    """
    data = root / "espeak-ng-data"
    data.mkdir()
    for entry in source.iterdir():
        if entry.name != "voices":
            (data / entry.name).symlink_to(entry)
    (data / "voices").mkdir()
    for entry in (source / "voices").iterdir():
        if entry.name != "!v":
            (data / "voices" / entry.name).symlink_to(entry)
    (data / "voices" / "!v").mkdir()
    for variant in (source / "voices" / "!v").iterdir():
        text = variant.read_text(encoding="latin-1")
        lines = [line for line in text.splitlines() if not _random_breath(line)]
        if len(lines) == len(text.splitlines()):
            (data / "voices" / "!v" / variant.name).symlink_to(variant)
        else:
            (data / "voices" / "!v" / variant.name).write_text("\n".join(lines) + "\n", "latin-1")
    return data


class EspeakSynthesizer:
    """Synthesizes text to 16-bit mono PCM at espeak-ng's native rate (22,050 Hz)."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self._data = tempfile.TemporaryDirectory(prefix="espeak-data-")
        data = _breathless_data(Path(espeakng_loader.get_data_path()), Path(self._data.name))
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data.parent).encode(), 0
        )
        if rate <= 0:
            raise SynthesisError(f"espeak-ng failed to initialize (returned {rate})")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []

        def on_audio(wav, numsamples, events):  # called synchronously inside espeak_Synth
            if numsamples > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
            return 0

        self._callback = _CALLBACK(on_audio)  # keep a reference: ctypes must not free it
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip

    def synthesize(self, text: str, speaker: Speaker) -> np.ndarray:
        name = f"{speaker.voice}+{speaker.variant}".encode()
        if self._lib.espeak_SetVoiceByName(name) != 0:
            raise SynthesisError(f"espeak-ng has no voice {name.decode()!r}")
        self._lib.espeak_SetParameter(_ESPEAK_RATE, speaker.rate, 0)
        self._lib.espeak_SetParameter(_ESPEAK_PITCH, speaker.pitch, 0)
        self._lib.espeak_SetParameter(_ESPEAK_RANGE, speaker.pitch_range, 0)
        self._chunks = []
        data = text.encode() + b"\0"
        err = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, 0, None, None)
        if err != 0:
            raise SynthesisError(f"espeak-ng synthesis failed for {text!r} (error {err})")
        self._lib.espeak_Synchronize()
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)


def fit_clip(
    wave: np.ndarray, src_rate: int, dst_rate: int = 16000, seconds: float = 1.0, peak: float = 0.9
) -> np.ndarray:
    """Resample, trim silence, peak-normalize and centre the utterance in a fixed-length clip."""
    from math import gcd

    from scipy.signal import resample_poly

    x = wave.astype(np.float64) / 32768.0
    g = gcd(dst_rate, src_rate)
    x = resample_poly(x, dst_rate // g, src_rate // g)
    loud = np.flatnonzero(np.abs(x) > 0.01 * max(np.abs(x).max(), 1e-9))
    if loud.size:
        x = x[loud[0] : loud[-1] + 1]
    x = x * (peak / max(np.abs(x).max(), 1e-9))
    n = int(round(seconds * dst_rate))
    if x.size > n:  # rare: slow speakers on long words; keep the centre
        start = (x.size - n) // 2
        x = x[start : start + n]
    out = np.zeros(n, dtype=np.float32)
    start = (n - x.size) // 2
    out[start : start + x.size] = x
    return out


def run_job(job: dict) -> None:
    """Synthesize every (text, speaker, path) item of a job, in order, into 16-bit WAVs."""
    import soundfile as sf

    synth = EspeakSynthesizer()
    for item in job["items"]:
        wave = synth.synthesize(item["text"], Speaker(**item["speaker"]))
        clip = fit_clip(wave, synth.sample_rate, job["sample_rate"], job["seconds"])
        path = Path(item["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, clip, job["sample_rate"], subtype="PCM_16")


def synthesize_in_subprocess(
    items: list[tuple[str, Speaker, Path]], sample_rate: int = 16000, seconds: float = 1.0
) -> None:
    """Run :func:`run_job` in a fresh interpreter so the output does not depend on what ran before."""
    import tempfile

    job = {
        "sample_rate": sample_rate,
        "seconds": seconds,
        "items": [{"text": t, "speaker": asdict(s), "path": str(p)} for t, s, p in items],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(job, f)
        job_path = f.name
    try:
        proc = subprocess.run(
            [sys.executable, __file__, job_path],  # this file alone: no package import
            capture_output=True,
            text=True,
        )
    finally:
        Path(job_path).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise SynthesisError(f"speech synthesis subprocess failed:\n{proc.stderr[-2000:]}")


if __name__ == "__main__":
    run_job(json.loads(Path(sys.argv[1]).read_text()))
