"""Video pairs (frame j with the audio chunk [j, j + 1) * clip_seconds) from the three
sources, each in its real on-disk format: SoundNet-Flickr frame folders + audio files, AudioSet
segment videos, the extracted Kinetics-400 shards."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from assoc_lightning.data.datasets.kinetics import extract_kinetics
from assoc_lightning.data.datasets.video_pairs import (
    FlickrVideoChunks,
    VideoChunks,
    fit_centred,
    natural_key,
    open_video_source,
    split_videos,
)
from assoc_lightning.data.errors import DatasetNotFoundError
from assoc_lightning.errors import ConfigError
from tests.fixtures.audioset import (
    VIDEO_BALANCED,
    VIDEO_ENVELOPE,
    make_video_copy,
    make_wav_copy,
)
from tests.fixtures.av import COLOURS, SOUNDNET_SR, make_soundnet, mean_rgb, rms
from tests.fixtures.kinetics import AMPLITUDES, SHIFTS, make_cvdf

SIZE = 16
FAST = {"image_size": SIZE, "sample_rate": SOUNDNET_SR}


def quiet(fn, *args, **kwargs):
    """``fn(...)`` and the messages of the warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


def seconds_of(audio: torch.Tensor, rate: int = SOUNDNET_SR) -> list[float]:
    """Mean level of each second of a chunk."""
    return [
        round(float(audio[s * rate : (s + 1) * rate].mean()), 4) for s in range(len(audio) // rate)
    ]


# ------------------------------------------------------------------------- flickr_soundnet
@pytest.fixture(scope="module")
def soundnet(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_soundnet(root / "soundnet")
    return root


@pytest.fixture(scope="module")
def flickr(soundnet):
    src, messages = quiet(open_video_source, "flickr_soundnet", soundnet, **FAST)
    return src, messages


def test_flickr_index_names_chunks_and_missing(flickr):
    src, messages = flickr
    names = [v.name for v in src.pool]
    assert names == [
        "videos/1/a1.mp4", "videos/1/b2.mp4", "videos/2/c3.mp4", "videos/2/d4.mp4",
        "videos/3/e5", "videos/3/f6.mp4",
    ]  # fmt: skip
    assert [v.chunks for v in src.pool] == [3, 2, 2, 3, 3, 2]
    assert [v.uid for v in src.pool] == list(range(6)) and src.test is None
    assert src.num_missing == 1 and src.num_classes == 0
    assert any("1 of 7 frame folders under" in m for m in messages)
    assert [p.rsplit("/", 1)[-1] for p in src.pool[4].media[1:]] == ["8.jpg", "9.jpg", "10.jpg"]
    assert sorted(["10.jpg", "9.jpg", "8.jpg"], key=natural_key) == ["8.jpg", "9.jpg", "10.jpg"]


def test_flickr_frame_j_gets_exactly_the_audio_of_seconds_5j_to_5j_plus_5(flickr):
    src, _ = flickr
    pairs = src.chunks(src.pool[:1], "all")  # a1: 3 frames, 15 s of audio
    assert len(pairs) == 3
    for j in range(3):
        item = pairs[j]
        assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.uint8
        assert mean_rgb(item["image"]) == pytest.approx(COLOURS[j], abs=3)
        assert item["audio"].shape == (5 * SOUNDNET_SR,) and item["audio"].dtype == torch.float32
        # second s of the file is (s + 1) / 32: chunk j holds seconds 5j .. 5j + 4, exactly
        assert seconds_of(item["audio"]) == [round((5 * j + k + 1) / 32, 4) for k in range(5)]
        assert item["label"] == 0 and item["index"] == j and item["pair_id"] == 0


def test_flickr_natural_frame_order_short_audio_and_mp3(flickr):
    src, _ = flickr
    e5 = src.chunks([src.pool[4]], "all")
    assert mean_rgb(e5[2]["image"]) == pytest.approx(COLOURS[2], abs=3)  # 10.jpg, not 9.jpg
    d4 = src.chunks([src.pool[3]], "all")  # 7 s of audio for 3 frames
    assert seconds_of(d4[1]["audio"]) == [round(6 / 32, 4), round(7 / 32, 4), 0.0, 0.0, 0.0]
    assert torch.count_nonzero(d4[2]["audio"]) == 0  # past the end: silence
    c3 = src.chunks([src.pool[2]], "all")[1]["audio"]  # mp3: a tone of (s + 1) / 32
    for k in range(1, 4):  # away from the encoder's delay and the chunk's edges
        window = c3[int((k + 0.2) * SOUNDNET_SR) : int((k + 0.8) * SOUNDNET_SR)]
        assert rms(window) == pytest.approx((5 + k + 1) / 32 / np.sqrt(2), rel=0.1)


def test_flickr_pair_ids_shared_within_a_video_and_fixed_frames(flickr):
    src, _ = flickr
    pairs = src.chunks(src.pool, "all")
    assert len(pairs) == 15
    assert pairs.pair_ids.tolist() == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5]
    assert pairs.chunk_rows.tolist() == [0, 1, 2, 0, 1, 0, 1, 0, 1, 2, 0, 1, 2, 0, 1]
    fixed = src.chunks(src.pool, "fixed")
    assert fixed.pair_ids.tolist() == list(range(6))
    assert fixed.chunk_rows.tolist() == [1, 0, 0, 1, 1, 0]  # the middle chunk
    item = fixed[0]
    assert seconds_of(item["audio"]) == [round((5 + k + 1) / 32, 4) for k in range(5)]
    assert item["pair_id"] == 0 and item["index"] == 0


def test_flickr_corrupt_frame_is_skipped_and_counted(flickr):
    src, _ = flickr
    pairs = src.chunks(src.pool, "all")
    assert pairs.pair_ids[14] == 5 and pairs.chunk_rows[14] == 1  # f6's 2.jpg is corrupt
    with pytest.warns(UserWarning, match=r"skipping corrupt file .*2\.jpg"):
        item = pairs[14]
    assert pairs.num_corrupt == 1 and item["index"] == 14
    assert item["pair_id"] == 0  # the next readable row (wrapping to a1's first frame)
    assert seconds_of(item["audio"])[0] == round(1 / 32, 4)
    image = pairs.view("image")
    assert image[14]["image"].shape == (3, SIZE, SIZE) and pairs.num_corrupt == 1  # shared
    strict = FlickrVideoChunks(src.pool, "all", skip_corrupt=False, **FAST)
    with pytest.raises(Exception, match="corrupt file"):
        strict[14]


def test_flickr_missing_data_dir_says_what_to_get(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"(?s)SoundNet.*expected layout.*frames"):
        open_video_source("flickr_soundnet", tmp_path)
    (tmp_path / "soundnet" / "frames").mkdir(parents=True)
    (tmp_path / "soundnet" / "mp3").mkdir()
    with pytest.raises(DatasetNotFoundError, match="any folder of frames with its audio"):
        open_video_source("flickr_soundnet", tmp_path)
    with pytest.raises(ConfigError, match="source must be one of"):
        open_video_source("youtube", tmp_path)


def test_split_is_by_video_seeded_and_disjoint(flickr):
    src, _ = flickr
    splits = split_videos(src, val_fraction=0.2, test_fraction=0.2, seed=3)
    uids = {s: {v.uid for v in videos} for s, videos in splits.items()}
    assert [len(uids[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert uids["train"] | uids["val"] | uids["test"] == set(range(6))
    assert not (uids["train"] & uids["val"] or uids["train"] & uids["test"])
    again = split_videos(src, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert {s: [v.uid for v in vs] for s, vs in again.items()} == {
        s: [v.uid for v in vs] for s, vs in splits.items()
    }
    capped = split_videos(src, 0.2, 0.2, seed=3, max_train_videos=2)
    assert len(capped["train"]) == 2 and capped["val"] == splits["val"]
    with pytest.raises(ConfigError, match="leave some to train on"):
        split_videos(src, val_fraction=0.5, test_fraction=0.5)


# -------------------------------------------------------------------------------- audioset
@pytest.fixture(scope="module")
def audioset(tmp_path_factory):
    pytest.importorskip("av")
    root = make_video_copy(tmp_path_factory.mktemp("audioset"))
    return quiet(open_video_source, "audioset", root, **FAST)


def test_audioset_segments_two_chunks_labels_and_missing(audioset):
    src, messages = audioset
    assert [v.name for v in src.pool] == [
        y for y, _, kind, _ in VIDEO_BALANCED if kind != "missing"
    ]
    assert [v.chunks for v in src.pool] == [2, 2, 2, 2]  # 10-s segments; the 3-s one left out
    assert [v.label for v in src.pool] == [2, 1, 0, 0]  # the first positive class
    assert [v.name for v in src.test] == ["vidEVAL0000"] and src.test[0].uid == 4
    assert src.num_classes == 4 and src.num_missing == 2
    assert any("2 of 7 listed segments have no video" in m for m in messages)


def test_audioset_frame_j_is_the_chunk_middle_and_its_audio_the_chunk(audioset):
    src, _ = audioset
    pairs = src.chunks(src.pool[1:2], "all")  # vidB: colour shift 1
    for j in range(2):
        item = pairs[j]
        second = int((j + 0.5) * 5)  # frame at 2.5 s / 7.5 s
        assert mean_rgb(item["image"]) == pytest.approx(COLOURS[(second + 1) % 6], abs=16)
        assert item["audio"].shape == (5 * SOUNDNET_SR,) and item["pair_id"] == 1
        for k in range(5):
            window = item["audio"][int((k + 0.2) * SOUNDNET_SR) : int((k + 0.8) * SOUNDNET_SR)]
            amp = VIDEO_ENVELOPE[5 * j + k]
            assert rms(window) == pytest.approx(amp / np.sqrt(2), rel=0.1), (j, k)


def test_audioset_truncated_video_is_skipped_and_counted(audioset):
    src, _ = audioset
    pairs = src.chunks(src.pool, "fixed")
    with pytest.warns(UserWarning, match=r"skipping corrupt file .*YvidBROKEN00\.mp4"):
        item = pairs[3]
    assert pairs.num_corrupt == 1 and item["pair_id"] == 0 and item["index"] == 3


def test_audioset_without_videos_says_the_copy_holds_audio_only(tmp_path):
    make_wav_copy(tmp_path / "audioset")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)holds audio only.*videos/"):
        open_video_source("audioset", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="AudioSet"):
        open_video_source("audioset", tmp_path / "nothing")
    with pytest.raises(ConfigError, match="audioset_split"):
        open_video_source("audioset", tmp_path, audioset_split="eval")


# -------------------------------------------------------------------------------- kinetics
@pytest.fixture(scope="module")
def kinetics(tmp_path_factory):
    """Shards of the fixture clips extracted twice: 2 s (the default) and 5 s of audio."""
    pytest.importorskip("av")
    pytest.importorskip("webdataset")
    base = tmp_path_factory.mktemp("kinetics")
    make_cvdf(base)
    for seconds, folder in ((2.0, "kinetics400_shards"), (5.0, "shards5")):
        for split in ("train", "val"):
            quiet(
                extract_kinetics, base, base / folder, split, workers=0, image_size=SIZE,
                sample_rate=SOUNDNET_SR, clip_seconds=seconds,
            )  # fmt: skip
    return base


def test_kinetics_5s_shards_one_chunk_per_clip_centred_on_the_frame(kinetics):
    src, messages = quiet(
        open_video_source, "kinetics", kinetics, shards_dir=str(kinetics / "shards5"), **FAST
    )
    assert not messages
    assert len(src.pool) == 3 and len(src.test) == 1 and src.num_classes == 3
    assert [v.uid for v in src.pool + src.test] == [0, 1, 2, 3]
    pairs = src.chunks(src.pool, "all")
    assert len(pairs) == 3 and pairs.chunk_rows.tolist() == [0, 0, 0]
    for row, video in enumerate(src.pool):
        item = pairs[row]
        assert mean_rgb(item["image"]) == pytest.approx(
            COLOURS[(2 + SHIFTS[video.name]) % 6], abs=14
        )
        for k in range(5):  # the 5 s around the middle (2.5 s) of a 5-s clip: all of it
            window = item["audio"][int((k + 0.2) * SOUNDNET_SR) : int((k + 0.8) * SOUNDNET_SR)]
            assert rms(window) == pytest.approx(AMPLITUDES[k] / np.sqrt(2), rel=0.1), k
        assert item["pair_id"] == video.uid


def test_kinetics_2s_shards_padded_around_the_centre_with_one_warning(kinetics):
    src, messages = quiet(
        open_video_source, "kinetics", kinetics, image_size=24, sample_rate=SOUNDNET_SR
    )
    assert len(messages) == 1 and "hold less or more audio" in messages[0]
    assert "--clip_seconds 5" in messages[0] and "train: 2 s, val: 2 s" in messages[0]
    item = src.chunks(src.test, "fixed")[0]
    audio = item["audio"]
    assert audio.shape == (5 * SOUNDNET_SR,) and item["image"].shape == (3, 24, 24)
    edge = int(1.5 * SOUNDNET_SR)  # 2 s in the middle, 1.5 s of silence either side
    assert torch.count_nonzero(audio[:edge]) == 0 and torch.count_nonzero(audio[-edge:]) == 0
    middle = audio[edge + SOUNDNET_SR // 2 + 800 : edge + 3 * SOUNDNET_SR // 2 - 800]
    assert rms(middle) == pytest.approx(AMPLITUDES[2] / np.sqrt(2), rel=0.1)  # second 2
    assert item["pair_id"] == 3  # after the 3 training clips


def test_kinetics_missing_shards_name_the_extraction(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"(?s)shards.*assoc extract kinetics"):
        open_video_source("kinetics", tmp_path)


def test_fit_centred_and_bad_arguments():
    assert fit_centred(torch.arange(1.0, 5.0), 8).tolist() == [0, 0, 1, 2, 3, 4, 0, 0]
    assert fit_centred(torch.arange(6.0), 2).tolist() == [2, 3]
    with pytest.raises(ConfigError, match="frames must be one of"):
        VideoChunks([], "some")
    with pytest.raises(ConfigError, match="clip_seconds must be positive"):
        VideoChunks([], "all", clip_seconds=0)
