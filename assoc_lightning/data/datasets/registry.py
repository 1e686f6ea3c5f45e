"""Every labelled single-modality dataset by name, in one place: what it holds, how to open a
split, how to fetch it. (The fixed-pair retrieval sets, AVE and Flickr-SoundNet, the video
pair sets of ``video_pairs.py``, named in its ``VIDEO_SOURCES``, and the image-folder reader
have datamodules of their own.)

Datamodules name datasets (``image: mnist``, ``datasets: [speech_commands, mnist]``) and look
them up here, never in if-chains of their own. ``open(data_dir, split, classes, options)``
returns one split as a labelled dataset whose labels are the dataset's own class ids; a
dataset with ``classes_by_name`` (Speech Commands: words) reads only the ``classes`` named and
labels them by their position in that list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assoc_lightning.data.datasets.audioset import AudioSetClips
from assoc_lightning.data.datasets.base import LabeledDataset
from assoc_lightning.data.datasets.dcase2013 import DCASE2013Subclips
from assoc_lightning.data.datasets.dcase2018 import DCASE2018Segments
from assoc_lightning.data.datasets.digits import spoken_commands_split
from assoc_lightning.data.datasets.esc50 import ESC50Clips
from assoc_lightning.data.datasets.gtsrb import GTSRBImages, download_gtsrb
from assoc_lightning.data.datasets.kinetics import open_kinetics
from assoc_lightning.data.datasets.mnist import (
    FashionMNISTImages,
    MNISTImages,
    download_fashion_mnist,
    download_mnist,
)
from assoc_lightning.data.datasets.speech_commands import (
    SpeechCommandsClips,
    download_speech_commands,
    find_speech_commands,
)
from assoc_lightning.data.datasets.tidigits import TIDIGITSIsolated
from assoc_lightning.errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset: its modality, a split opener and (for public ones) a downloader."""

    name: str
    modality: str  # "image" or "audio"
    open: Callable[[Path, str, Sequence | None, dict], LabeledDataset]
    download: Callable[[Path], None] | None = None  # None: licensed or scraped, never fetched
    classes_by_name: bool = False


def _tidigits(root: Path, split: str, classes, options: dict) -> TIDIGITSIsolated:
    options = {"cache_dir": root / "cache" / "tidigits", **options}
    return TIDIGITSIsolated(root / "TIDIGITS", split, **options)


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("mnist", "image", lambda r, s, c, o: MNISTImages(r, s, **o), download_mnist),
        DatasetInfo(
            "fashion_mnist",
            "image",
            lambda r, s, c, o: FashionMNISTImages(r, s, **o),
            download_fashion_mnist,
        ),
        DatasetInfo("gtsrb", "image", lambda r, s, c, o: GTSRBImages(r, s, **o), download_gtsrb),
        DatasetInfo(
            "speech_commands",
            "audio",
            lambda r, s, c, o: SpeechCommandsClips(find_speech_commands(r), s, c, **o),
            download_speech_commands,
            classes_by_name=True,
        ),
        DatasetInfo("tidigits", "audio", _tidigits),  # licensed (LDC93S10)
        DatasetInfo("audioset", "audio", lambda r, s, c, o: AudioSetClips(r, s, **o)),
        # Kinetics-400 middle frames / middle 2 s of audio, read from the shards that
        # `assoc extract kinetics` writes (options: shards_dir, access: random | stream, ...)
        DatasetInfo(
            "kinetics_audio", "audio", lambda r, s, c, o: open_kinetics(r, s, "audio", **o)
        ),
        DatasetInfo(
            "kinetics_image", "image", lambda r, s, c, o: open_kinetics(r, s, "image", **o)
        ),
        # from Zenodo, fetched by the user (the not-found error says where)
        DatasetInfo("dcase2018", "audio", lambda r, s, c, o: DCASE2018Segments(r, s, **o)),
        # the DMC paper's ESC-50 (GitHub zip) and DCASE 2013 scenes, fetched by the user;
        # options: fold 1..5 (test; the others train + val), sample_rate, ...
        DatasetInfo("esc50", "audio", lambda r, s, c, o: ESC50Clips(r, s, **o)),
        DatasetInfo("dcase2013", "audio", lambda r, s, c, o: DCASE2013Subclips(r, s, **o)),
        # the embedded transfer set: synthesized "yes".."go", generated on first use
        DatasetInfo(
            "spoken_commands",
            "audio",
            lambda r, s, c, o: spoken_commands_split(r, s, c, **o),
            classes_by_name=True,
        ),
    )
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; a ValueError listing the known names otherwise."""
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; known datasets: {sorted(DATASETS)}")
    return DATASETS[name]


def open_split(
    name: str, data_dir: Path, split: str, classes: Sequence | None = None, options=None
) -> LabeledDataset:
    """One split of the dataset ``name`` read from ``data_dir``."""
    return dataset_info(name).open(Path(data_dir), split, classes, dict(options or {}))


def download(name: str, data_dir: str | Path) -> None:
    """Fetch ``name`` from its official source into ``data_dir`` (a no-op for datasets that
    cannot be downloaded: their not-found error says how to obtain them)."""
    info = dataset_info(name)
    if info.download is not None:
        root = Path(data_dir).expanduser()
        root.mkdir(parents=True, exist_ok=True)
        info.download(root)
