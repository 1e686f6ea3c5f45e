"""VideoPairsDataModule: frames of videos with the audio chunks aligned to them (DMC's data).

Training yields one item per (video, frame j): the frame and the ``clip_seconds`` of audio
``[j, j + 1) * clip_seconds`` (docs/methods.md, "DMC": 5 s); validation and test are held-out
videos with one fixed frame each (their middle chunk). The sources and how each is read:
``data/datasets/video_pairs.py`` and docs/datasets.md, "Video pairs".
"""

from __future__ import annotations

from torch.utils.data import Dataset

from assoc_lightning.data.base import MODALITIES, SPLITS, AssocDataModule
from assoc_lightning.data.datasets.flickr_soundnet import FlickrSoundNetPairs
from assoc_lightning.data.datasets.video_pairs import (
    VIDEO_SOURCES,
    check_clip,
    check_split,
    open_video_source,
    split_videos,
)
from assoc_lightning.errors import ConfigError


class VideoPairsDataModule(AssocDataModule):
    """(frame, aligned audio chunk) pairs of the videos of one source, split by video.

    Items: ``image`` uint8 ``[3, S, S]``, ``audio`` float32 ``[clip_seconds * sample_rate]``
    mono, ``label`` (the source's class; 0 for the unlabelled SoundNet-Flickr videos, whose
    ``num_classes`` is 0: class-based evaluations do not apply), ``index`` (the row) and
    ``pair_id`` (the video: shared by all frames of a video, so negatives drawn by
    ``pair_id`` come from other videos).

    Splits, disjoint by video: ``val`` is a seeded ``val_fraction`` of the source's training
    videos; ``test`` is the source's official evaluation split where it has one (AudioSet
    ``eval``, the Kinetics-400 ``val`` shards), else a further seeded ``test_fraction`` of
    them (SoundNet-Flickr); ``train`` is the rest, every frame of every video.
    ``pair_dataset(split)``: the fixed pairs (one frame per video) of ``val`` / ``test``, all
    training rows for ``train``; ``eval_dataset(split, modality)``: one modality of the fixed
    pairs of any split (the training videos' too: the kNN and linear-probe banks, one frame
    per video).

    Args:
        source: ``flickr_soundnet`` (SoundNet-Flickr frame folders + audio), ``audioset``
            (segment videos) or ``kinetics`` (the ``assoc extract kinetics`` shards).
        image_size: side of the square frame (256: DMC's).
        sample_rate: audio output rate (16 kHz: VGGish's).
        clip_seconds: the audio chunk per frame (5 s: DMC's).
        val_fraction, test_fraction: held-out fractions of the training videos (at least one
            video each when positive; ``test_fraction`` is unused by sources with an official
            test split).
        max_train_videos: keep this many training videos (a seeded subset, taken after val
            and test are held out, so those do not change; DMC: 400,000 with seed 18).
        audioset_split: the AudioSet part trained on (``balanced_train``,
            ``unbalanced_train`` or ``train`` = both).
        shards_dir: where the Kinetics shards are (``None``: ``<data_dir>/kinetics400_shards``).
        skip_corrupt: skip undecodable files (counted, warned) instead of raising.
        localization: also read the Flickr-SoundNet annotated test pairs (LVS 250-pair or
            Senocak layout under ``data_dir``, docs/datasets.md, "Flickr-SoundNet") with
            their Senocak boxes as ``gt_map``: ``localization_dataset("test")``, the pairs the
            localization evaluation scores (cIoU / AUC, docs/evaluation.md).
        **kwargs: data_dir, batch_size, eval_batch_size, num_workers, seed (AssocDataModule;
            ``seed`` also draws the video split).

    Attributes after ``setup``: ``num_missing`` (videos listed or found without their files),
    ``class_names``, ``num_classes``.
    """

    def __init__(
        self,
        source: str = "flickr_soundnet",
        image_size: int = 256,
        sample_rate: int = 16000,
        clip_seconds: float = 5.0,
        val_fraction: float = 0.05,
        test_fraction: float = 0.05,
        max_train_videos: int | None = None,
        audioset_split: str = "balanced_train",
        shards_dir: str | None = None,
        skip_corrupt: bool = True,
        localization: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if source not in VIDEO_SOURCES:
            raise ConfigError(f"source must be one of {sorted(VIDEO_SOURCES)}, got {source!r}")
        check_clip(image_size, sample_rate, clip_seconds)
        check_split(val_fraction, test_fraction, max_train_videos)
        self.source = source
        self.reader = {
            "image_size": image_size, "sample_rate": sample_rate, "clip_seconds": clip_seconds,
            "skip_corrupt": skip_corrupt,
        }  # fmt: skip
        self.source_options = {"audioset_split": audioset_split, "shards_dir": shards_dir}
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.max_train_videos = max_train_videos
        self.localization = localization
        self.localization_pairs: FlickrSoundNetPairs | None = None
        self.num_missing = 0

    def setup(self, stage: str | None = None) -> None:
        if self.paired:
            return
        src = open_video_source(self.source, self.data_dir, **self.reader, **self.source_options)
        videos = split_videos(
            src, self.val_fraction, self.test_fraction, self.seed, self.max_train_videos
        )
        self.paired["train"] = src.chunks(videos["train"], "all")
        for split in SPLITS:
            fixed = src.chunks(videos[split], "fixed")
            if split != "train":
                self.paired[split] = fixed
            self.unpaired[split] = {m: fixed.view(m) for m in MODALITIES}
        self.class_names, self.num_classes = src.class_names, src.num_classes
        self.num_missing = src.num_missing
        if self.localization:
            self.localization_pairs = FlickrSoundNetPairs(self.data_dir, gt_map=True, **self.reader)

    def localization_dataset(self, split: str) -> Dataset:
        """The pairs the localization evaluation scores: with ``localization``, the
        Flickr-SoundNet annotated pairs (with ``gt_map``) for ``test``; otherwise, and for the
        other splits, ``pair_dataset(split)``."""
        if split == "test" and self.localization_pairs is not None:
            return self.localization_pairs
        return self.pair_dataset(split)
