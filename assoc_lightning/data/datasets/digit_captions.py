"""Captions for the embedded digits: the overlapping modality of the offline C-MCR setting.

Captions are generated per digit from varied templates: visual ones ("a handwritten 7"),
auditory ones ("someone saying seven") and neutral ones ("the number seven"), the small-scale
version of C-MCR's mix of image-text, audio-text and video-text captions.
"""

from __future__ import annotations

import itertools

from assoc_lightning.data.datasets.digits import WORDS

VISUAL = (
    "a photo of the digit {w}", "a handwritten {n}", "the number {w} written by hand",
    "a {a} drawing of a {n}", "an image of the numeral {w}", "a scanned {a} digit {n}",
    "white ink on black showing a {w}", "a {a} picture of {w}", "the figure {n} on paper",
    "a pixelated {w}", "a {a} sketch of the number {n}", "someone wrote {w}",
)  # fmt: skip
AUDITORY = (
    "someone saying {w}", "a voice says {w}", "the spoken word {w}", "a {a} recording of {w}",
    "a person pronouncing {n}", "{w} spoken aloud", "the sound of the word {w}",
    "a talker counting {n}", "a {a} voice reading the number {w}", "a speaker says {n}",
    "audio of someone saying the digit {w}", "a {a} utterance of {n}",
)  # fmt: skip
NEUTRAL = ("{w}", "the number {w}", "digit {n}", "a {a} {w}", "the {a} numeral {n}")
ADJECTIVES = ("small", "clear", "faint", "bold", "quick", "slow", "noisy", "clean")


def digit_captions(templates: tuple[str, ...], digit: int) -> list[str]:
    """Every filling of ``templates`` for ``digit``: word or numeral, each adjective."""
    out = []
    for t, form, adj in itertools.product(templates, ("word", "numeral"), ADJECTIVES):
        n = WORDS[digit] if form == "word" else str(digit)
        out.append(t.format(w=WORDS[digit], n=n, a=adj))
    return list(dict.fromkeys(out))  # de-duplicated, order kept


def all_digit_captions() -> tuple[list[str], list[int]]:
    """Every caption of every digit (visual, auditory and neutral templates) and its digit."""
    captions, labels = [], []
    for digit in range(10):
        for text in digit_captions(VISUAL + AUDITORY + NEUTRAL, digit):
            captions.append(text)
            labels.append(digit)
    return captions, labels
