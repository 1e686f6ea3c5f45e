"""ClipSegments: fixed-length audio segments of a split's clips, each knowing its clip.

The audio transfer sets (DCASE 2018's 2-s segments, DCASE 2013's 5-s subclips, ESC-50's
whole clips) share one policy: a clip whose file is missing, unreadable or too short is left
out when the split is opened (``num_skipped``, one warning naming the first), a split with no
readable clip is "dataset not found", and every item carries ``clip_id`` (the clip's row in
``clip_names``) so the transfer evaluation can average segment scores per clip.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from assoc_lightning.data.datasets.base import SkipCorruptDataset
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.audio import read_audio


class ClipSegments(SkipCorruptDataset):
    """Segments of ``segment_seconds`` at the start times ``starts_of(path)`` gives each clip.

    Subclasses set ``audio_dir`` (where clip names resolve), ``sample_rate`` and ``channel``
    (``None``: channels averaged) and the not-found message parts ``dataset_name``, ``layout``,
    ``how_to_get``, then call ``ClipSegments.__init__``; ``starts_of`` raises
    ``DatasetCorruptError`` for a clip that cannot be used.

    Args:
        clips: ``(file name, label)`` per clip, in order.
        starts_of: a clip's segment start times (seconds) from its path.
        segment_seconds: the segment length read at each start.
        skip_corrupt: leave unusable clips out (counted) instead of raising.
        where: names the split in the warning (e.g. ``"DCASE 2013 fold 1 train"``).
        what: what a clip is called in messages (``clip``, ``recording``).
        split: the split's name, for the not-found message.
    """

    modality = "audio"
    audio_dir: Path
    sample_rate: int
    channel: int | None = None
    dataset_name: str
    layout: str
    how_to_get: str

    def __init__(
        self,
        clips: Sequence[tuple[str, int]],
        starts_of: Callable[[Path], list[float]],
        segment_seconds: float,
        skip_corrupt: bool,
        where: str,
        what: str,
        split: str,
    ) -> None:
        self.clip_names: list[str] = []
        self.skipped: list[str] = []
        labels, clip_ids, offsets = [], [], []
        first = None
        for name, label in clips:
            try:
                starts = starts_of(self.audio_dir / name)
            except DatasetCorruptError as err:
                if not skip_corrupt:
                    raise
                self.skipped.append(name)
                first = err
                continue
            clip_ids += [len(self.clip_names)] * len(starts)
            offsets += starts
            labels += [label] * len(starts)
            self.clip_names.append(name)
        if self.skipped:
            warnings.warn(
                f"{where}: skipped {len(self.skipped)} missing or unreadable {what}(s); "
                f"first: {first}",
                stacklevel=3,
            )
        if not self.clip_names:
            raise DatasetNotFoundError(
                self.dataset_name, self.root, self.layout, self.how_to_get,
                missing=f"any readable {what} of {split}",
            )  # fmt: skip
        super().__init__(labels, skip_corrupt)
        self.clip_ids = np.asarray(clip_ids, dtype=np.int64)
        self.offsets = np.asarray(offsets, dtype=np.float64)
        self.segment_samples = int(round(segment_seconds * self.sample_rate))

    @property
    def num_skipped(self) -> int:
        """Clips left out when the split was opened (missing, unreadable or too short)."""
        return len(self.skipped)

    def read(self, index: int) -> torch.Tensor:
        path = self.audio_dir / self.clip_names[self.clip_ids[index]]
        return read_audio(
            path, self.sample_rate, self.segment_samples,
            offset_seconds=float(self.offsets[index]), channel=self.channel,
        )  # fmt: skip

    def __getitem__(self, index: int) -> dict:
        return {**super().__getitem__(index), "clip_id": int(self.clip_ids[index])}
