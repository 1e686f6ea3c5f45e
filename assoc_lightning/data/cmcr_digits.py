"""The offline C-MCR setting: captioned digits, two local contrastive spaces, no A-V pairs.

Captions are generated per digit from varied templates: visual ones ("a handwritten 7"),
auditory ones ("someone saying seven") and neutral ones ("the number seven"), the small-scale
version of C-MCR's mix of image-text, audio-text and video-text captions. The image<->text
space is trained on visual captions with training images, the audio<->text space on auditory
captions with training clips (``space_training_data``); C-MCR then sees only captions and
the unpaired image and audio memories. Evaluation is zero-shot audio<->image retrieval on
the held-out test digits (speakers and images never seen in training).
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import torch

from assoc_lightning.data.cmcr import CaptionLoaders, split_captions
from assoc_lightning.data.digits import IMAGE_SPLIT_FILE, WORDS, DigitsDataModule

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


class CMCRDigitsDataModule(CaptionLoaders, DigitsDataModule):
    """Captions + image memory + audio memory built from the embedded digits (C-MCR default).

    Args:
        batch_size: captions per training batch (the paper: 10,240 on 2.33M captions).
        caption_seed: seed of the caption train/val/test split (10% / 10% held out).
        num_speakers, generation_seed, data_dir, eval_batch_size, num_workers, seed: see
            ``DigitsDataModule``.
    """

    def __init__(
        self,
        data_dir: str | None = None,
        batch_size: int = 256,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        num_speakers: int = 240,
        generation_seed: int = 0,
        caption_seed: int = 0,
    ) -> None:
        super().__init__(
            data_dir, batch_size, eval_batch_size, num_workers, seed, num_speakers, generation_seed
        )
        self.caption_seed = caption_seed
        self.captions: list[str] = []
        self.caption_labels = np.zeros(0, dtype=np.int64)
        self.caption_split: dict[str, np.ndarray] = {}

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if self.captions:
            return
        captions, labels = [], []
        for digit in range(10):
            for text in digit_captions(VISUAL + AUDITORY + NEUTRAL, digit):
                captions.append(text)
                labels.append(digit)
        self.captions, self.caption_labels = captions, np.asarray(labels)
        self.caption_split = split_captions(len(captions), self.caption_seed)

    @property
    def fingerprint(self) -> str:
        manifest = (self.audio_root / "manifest.json").read_bytes()
        parts = [manifest, IMAGE_SPLIT_FILE.read_bytes(), "\n".join(self.captions).encode()]
        return hashlib.sha1(b"".join(parts)).hexdigest()[:16]

    def memory(self, modality: str):
        """The unpaired training memory of ``modality`` (no pairs are ever formed)."""
        return self.unpaired["train"][modality]

    def space_training_data(
        self, modality: str
    ) -> tuple[torch.Tensor, torch.Tensor, list[list[str]]]:
        """Inputs, labels and per-class captions to train the local ``modality``<->text space.

        Only training-split data and only the modality's own caption family (visual or
        auditory) are used, like CLIP never heard audio and CLAP never saw images.
        """
        data = self.unpaired["train"][modality]
        if modality == "image":
            inputs = data.data
        else:
            inputs = torch.stack([data.load(i) for i in range(len(data))])
        templates = VISUAL if modality == "image" else AUDITORY
        captions = [digit_captions(templates, d) for d in range(10)]
        return inputs, torch.as_tensor(data.labels), captions
