"""The embedded default: handwritten digit images paired with synthesized spoken digits, offline.

Images: the 1,797 real handwritten digits bundled with scikit-learn (8x8, 0-16), scaled to
0-255, upsampled bicubically to 20x20 and padded to 28x28 (white ink on black, like MNIST);
split 70/15/15 stratified by a seeded draw committed as ``digits_image_split.json``.

Audio: "zero".."nine" spoken by ``num_speakers`` synthetic espeak-ng talkers (accent, voice
variant, rate, pitch, pitch range drawn with a seed), 16 kHz, 1 s, peak-normalized, written
on first use in the Speech Commands layout (``<word>/<speaker>_nohash_0.wav`` plus
``validation_list.txt`` / ``testing_list.txt``) and read back through the same reader as real
Speech Commands. Split 70/15/15 by speaker: no voice is in two splits. A ``manifest.json``
records the speakers, splits and every file's MD5; a damaged cache is regenerated. Generation
is safe when several processes start on one fresh data dir (``utils/files.py``).

A harder test beside the speaker-disjoint one: talkers whose voice-variant *family* (espeak-ng
variants up to trailing digits: ``klatt`` .. ``klatt6``) no training talker has
(:func:`plan_unseen_speakers`), generated into a folder of their own on first use.

The same machinery (``words`` and ``tag`` arguments) makes the embedded transfer set, the
Speech Commands words "yes".."go" (:data:`COMMAND_WORDS`) by their own talkers
(:func:`spoken_commands_split`, registered as ``spoken_commands``), so a method trained on the
digits can report a transfer number offline.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from assoc_lightning.data.datasets.base import TensorLabeledDataset
from assoc_lightning.data.datasets.speech_commands import SpeechCommandsClips
from assoc_lightning.data.io.tts import (
    Speaker,
    SynthesisError,
    sample_speakers,
    synthesize_in_subprocess,
    voice_variants,
)
from assoc_lightning.errors import ConfigError, RunError
from assoc_lightning.utils.files import load_or_build, private_tmp_dir, replace_dir

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
IMAGE_SPLIT_FILE = Path(__file__).with_name("digits_image_split.json")
MANIFEST_VERSION = 1
MIN_SPEAKERS = 6  # the fewest talkers a 70/15/15 speaker split gives one val and one test talker


# ---------------------------------------------------------------------------------- images
@lru_cache(maxsize=1)
def digit_images() -> tuple[torch.Tensor, np.ndarray]:
    """All 1,797 scikit-learn digits as uint8 ``[N, 1, 28, 28]`` and their labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).float().div(16.0).unsqueeze(1)  # [N,1,8,8] in [0,1]
    x = torch.nn.functional.interpolate(x, size=(20, 20), mode="bicubic", align_corners=False)
    x = torch.nn.functional.pad(x, (4, 4, 4, 4)).clamp(0, 1)
    return (x * 255).round().to(torch.uint8), bunch.target.astype(np.int64)


def stratified_split(
    labels: np.ndarray, seed: int, fractions=SPLIT_FRACTIONS
) -> dict[str, list[int]]:
    """Per class, a seeded permutation cut into train/val/test by ``fractions``."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_train = int(round(fractions[0] * idx.size))
        n_val = int(round(fractions[1] * idx.size))
        out["train"] += idx[:n_train].tolist()
        out["val"] += idx[n_train : n_train + n_val].tolist()
        out["test"] += idx[n_train + n_val :].tolist()
    return {k: sorted(v) for k, v in out.items()}


def image_split() -> dict[str, list[int]]:
    """The committed image split (seed 0), so it never moves with library versions."""
    return json.loads(IMAGE_SPLIT_FILE.read_text())["indices"]


# ----------------------------------------------------------------------------------- audio
def speaker_id(seed: int, k: int, tag: str = "digits") -> str:
    return hashlib.sha1(f"assoc-{tag}-{seed}-{k}".encode()).hexdigest()[:8]


def plan_speakers(num_speakers: int, seed: int, tag: str = "digits") -> list[dict]:
    """Speakers with ids and a speaker-disjoint 70/15/15 split, identical on every machine."""
    speakers = sample_speakers(num_speakers, seed)
    order = np.random.default_rng(seed + 1).permutation(num_speakers)
    n_train = int(round(SPLIT_FRACTIONS[0] * num_speakers))
    n_val = int(round(SPLIT_FRACTIONS[1] * num_speakers))
    split = np.empty(num_speakers, dtype=object)
    split[order[:n_train]] = "train"
    split[order[n_train : n_train + n_val]] = "val"
    split[order[n_train + n_val :]] = "test"
    return [
        {"id": speaker_id(seed, k, tag), "split": str(split[k]), **asdict(s)}
        for k, s in enumerate(speakers)
    ]


def variant_family(variant: str) -> str:
    """An espeak-ng voice variant's family: its name without trailing digits, lower case
    (``klatt`` .. ``klatt6``, ``m1`` .. ``m8``, ``Gene`` / ``Gene2``, ``Mike`` / ``mike2``)."""
    return re.sub(r"\d+$", "", variant).lower()


def plan_unseen_speakers(num_speakers: int, seed: int, count: int) -> list[dict]:
    """``count`` talkers (all in split ``test``) whose voice-variant family no training talker
    of the ``(num_speakers, seed)`` digits has: the unseen-family test set. Accent, rate, pitch
    and range are drawn as for every talker; the held-out variants are used in turn."""
    train = plan_speakers(num_speakers, seed)
    seen = {variant_family(s["variant"]) for s in train if s["split"] == "train"}
    held = [v for v in voice_variants() if variant_family(v) not in seen]
    if not held:
        raise ConfigError(
            f"every voice family appears among the {num_speakers} talkers' training split; "
            "there is no unseen family to test on (use fewer num_speakers)"
        )
    pool = sample_speakers(count * len(held), seed + 2, held)  # more than enough, then in turn
    by_variant: dict[str, list] = {}
    for s in pool:
        by_variant.setdefault(s.variant, []).append(s)
    picked = [by_variant[v].pop(0) for k in range(count) for v in [held[k % len(held)]]]
    return [
        {"id": speaker_id(seed, k, "unseen"), "split": "test", **asdict(s)}
        for k, s in enumerate(picked)
    ]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _cache_problem(root: Path, num_speakers: int, seed: int, words=WORDS) -> str | None:
    """Why the cache at ``root`` cannot be used, or ``None`` if it is complete and intact."""
    manifest_path = root / "manifest.json"
    if not manifest_path.is_file():
        return "no manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "manifest.json is not valid JSON"
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return "manifest.json has no file list"
    wanted = {"version": MANIFEST_VERSION, "num_speakers": num_speakers, "seed": seed}
    if manifest.get("words") != list(words):
        return f"manifest was made for the words {manifest.get('words')}, need {list(words)}"
    if any(manifest.get(k) != v for k, v in wanted.items()):
        return f"manifest was made for {[manifest.get(k) for k in wanted]}, need {list(wanted.values())}"
    if len(manifest["files"]) != num_speakers * len(words):
        return f"manifest lists {len(manifest['files'])} of {num_speakers * len(words)} clips"
    for rel, digest in manifest["files"].items():
        path = root / rel
        if not path.is_file():
            return f"missing {rel}"
        if _md5(path) != digest:
            return f"checksum mismatch for {rel}"
    return None


def clip_name(word: str, speaker: dict) -> str:
    return f"{word}/{speaker['id']}_nohash_0.wav"


def generate_spoken_words(
    root: Path,
    num_speakers: int,
    seed: int,
    words=WORDS,
    tag: str = "digits",
    plan: list[dict] | None = None,
) -> None:
    """Synthesize ``words`` said by ``num_speakers`` talkers (ids and split from ``seed`` and
    ``tag``, or the talkers of ``plan``) into a private folder, check that every planned clip
    was written, and move the folder to ``root`` in one rename (call under
    ``cache_lock(root)``)."""
    root = Path(root)
    tmp = private_tmp_dir(root)
    try:
        speakers = plan if plan is not None else plan_speakers(num_speakers, seed, tag)
        keys = ("voice", "variant", "rate", "pitch", "pitch_range")
        planned = [(w, s) for s in speakers for w in words]
        items = [(w, Speaker(**{k: s[k] for k in keys}), tmp / clip_name(w, s)) for w, s in planned]
        try:
            synthesize_in_subprocess(items)
        except SynthesisError as err:
            raise RunError(f"generating the embedded spoken {tag} failed: {err}") from err
        names = [clip_name(w, s) for w, s in planned]
        missing = [n for n in names if not (tmp / n).is_file()]
        if missing:
            raise RunError(
                f"speech synthesis wrote {len(names) - len(missing)} of {len(names)} clips "
                f"(first missing: {missing[0]}); nothing was cached, run again"
            )
        lists = {"val": [], "test": []}
        for w, s in planned:
            if s["split"] in lists:
                lists[s["split"]].append(clip_name(w, s))
        (tmp / "validation_list.txt").write_text("\n".join(sorted(lists["val"])) + "\n")
        (tmp / "testing_list.txt").write_text("\n".join(sorted(lists["test"])) + "\n")
        manifest = {
            "version": MANIFEST_VERSION,
            "num_speakers": num_speakers,
            "seed": seed,
            "sample_rate": 16000,
            "words": list(words),
            "speakers": speakers,
            "files": {n: _md5(tmp / n) for n in sorted(names)},  # the plan, not what is there
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        replace_dir(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already when it was moved in place


def generate_spoken_digits(root: Path, num_speakers: int, seed: int) -> None:
    """The spoken digits (see :func:`generate_spoken_words`)."""
    generate_spoken_words(root, num_speakers, seed)


def ensure_spoken_words(
    root: Path,
    num_speakers: int,
    seed: int,
    words=WORDS,
    tag: str = "digits",
    plan: list[dict] | None = None,
) -> Path:
    """Generate the spoken words unless an intact cache for these settings exists. Safe when
    several processes ask at once: one generates under the cache's lock, the others wait and
    then find it intact."""
    root = Path(root)
    problem = None  # why the cache cannot be used, as the last look found it

    def intact() -> Path | None:
        nonlocal problem
        problem = _cache_problem(root, num_speakers, seed, words)
        return root if problem is None else None

    def generate() -> Path:
        if root.exists():
            warnings.warn(
                f"spoken-{tag} cache at {root} is damaged or stale ({problem}); regenerating it",
                stacklevel=3,
            )
        generate_spoken_words(root, num_speakers, seed, words, tag, plan)
        return root

    return load_or_build(root, intact, generate)


def ensure_spoken_digits(root: Path, num_speakers: int, seed: int) -> Path:
    """The spoken digits' cache at ``root`` (see :func:`ensure_spoken_words`)."""
    return ensure_spoken_words(root, num_speakers, seed)


def ensure_unseen_digits(root: Path, num_speakers: int, seed: int, count: int) -> Path:
    """The unseen-family test talkers' cache at ``root`` (:func:`plan_unseen_speakers`)."""
    plan = plan_unseen_speakers(num_speakers, seed, count)
    return ensure_spoken_words(root, count, seed, WORDS, "unseen", plan)


# ----------------------------------------------------------------------------------- splits
def digits_split(
    audio_root: Path, split: str, unseen_root: Path | None = None
) -> dict[str, TensorLabeledDataset | SpeechCommandsClips]:
    """One split of the embedded digits: its images and its spoken clips (labels 0-9); with
    ``unseen_root`` the clips are the unseen-family talkers' (test only)."""
    images, labels = digit_images()
    idx = image_split()[split]
    if unseen_root is not None:
        audio = SpeechCommandsClips(unseen_root, "test", WORDS, name="unseen-family digits")
    else:
        audio = SpeechCommandsClips(audio_root, split, WORDS, name="embedded spoken digits")
    return {
        "image": TensorLabeledDataset("image", images[idx].float().div(255.0), labels[idx]),
        "audio": audio,
    }


# ------------------------------------------------------------------- the transfer set
COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def spoken_commands_split(
    data_dir: Path,
    split: str,
    words=None,
    num_speakers: int = 60,
    generation_seed: int = 1,
) -> SpeechCommandsClips:
    """One split of the embedded spoken commands, generated on first use under
    ``<data_dir>/spoken_commands_s<seed>_n<speakers>/`` (60 talkers x 10 words, 42 / 9 / 9
    talkers per split; seed 1, so not the digits' default talkers). ``words`` (a subset of
    :data:`COMMAND_WORDS`) are labelled by their position in it."""
    words = list(words or COMMAND_WORDS)
    if num_speakers < MIN_SPEAKERS or not set(words) <= set(COMMAND_WORDS):
        raise ConfigError(
            f"spoken commands: num_speakers must be at least {MIN_SPEAKERS} (got "
            f"{num_speakers}) and the words among {COMMAND_WORDS} (got {words})"
        )
    root = Path(data_dir) / f"spoken_commands_s{generation_seed}_n{num_speakers}"
    ensure_spoken_words(root, num_speakers, generation_seed, COMMAND_WORDS, "commands")
    return SpeechCommandsClips(root, split, words, name="embedded spoken commands")
