"""AVE and Flickr-SoundNet retrieval sets against tiny copies in the real formats (mp4 via PyAV)."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from assoc_lightning.data.datamodules.retrieval import (
    AVERetrievalDataModule,
    FlickrSoundNetDataModule,
)
from assoc_lightning.data.datasets.ave import AVEPairs, AVERow, read_ave_list
from assoc_lightning.data.datasets.flickr_soundnet import FlickrSoundNetPairs
from assoc_lightning.data.errors import DatasetCorruptError, DatasetNotFoundError
from assoc_lightning.data.io.video import read_audio_track, read_video_frame

# one colour per second of video
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
FPS, AUDIO_SR, OUT_SR, SIZE = 4, 16000, 8000, 16


def write_mp4(
    path: Path, seconds: int = 4, audio: str | None = "aac", amplitude=(0.4, 0.2), shift: int = 0
) -> None:
    """h264 frames (second k filled with COLOURS[k + shift]) and a stereo sine track (left and
    right at different amplitudes) in aac or pcm_s16le (mov), or no audio stream."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mov" if audio == "pcm_s16le" else "mp4") as c:
        video = c.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        sound = None
        if audio:
            sound = c.add_stream(audio, rate=AUDIO_SR)
            sound.layout = "stereo"
        for i in range(seconds * FPS):
            img = np.zeros((32, 48, 3), np.uint8)
            img[:] = COLOURS[(i // FPS + shift) % len(COLOURS)]
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in video.encode():
            c.mux(packet)
        if sound is None:
            return
        t = np.arange(seconds * AUDIO_SR) / AUDIO_SR
        sine = np.sin(2 * np.pi * 440 * t)
        fmt = "fltp" if audio == "aac" else "s16p"
        for k in range(0, len(t), 1024):
            chunk = np.stack([amplitude[0] * sine[k : k + 1024], amplitude[1] * sine[k : k + 1024]])
            if fmt == "s16p":
                chunk = (chunk * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(
                chunk if fmt == "s16p" else chunk.astype(np.float32), format=fmt, layout="stereo"
            )
            frame.sample_rate, frame.pts = AUDIO_SR, k
            for packet in sound.encode(frame):
                c.mux(packet)
        for packet in sound.encode():
            c.mux(packet)


ANNOTATIONS = [
    "Category&VideoID&Quality&StartTime&EndTime",
    "Church bell&vidA&good&1&2",  # middle 1.5 s -> second 1 (green)
    "Bark&vidB&good&0&0",  # no boundaries: middle of the 4 s clip -> second 2 (blue)
    "Acoustic guitar&vidC&bad&3&4",  # middle 3.5 s -> second 3 (yellow)
    "Bark&vidMissing&good&2&5",
    "Church bell&vidNoAudio&good&0&4",
    "Acoustic guitar&vidBroken&good&0&4",
]


@pytest.fixture(scope="module")
def ave_root(tmp_path_factory) -> Path:
    """``<root>/AVE_Dataset`` with five mp4s (one without audio, one truncated), the lists."""
    root = tmp_path_factory.mktemp("ave")
    base = root / "AVE_Dataset"
    write_mp4(base / "AVE" / "vidA.mp4")
    write_mp4(base / "AVE" / "vidB.mp4", audio="pcm_s16le", amplitude=(0.5, 0.1))
    write_mp4(base / "AVE" / "vidC.mp4", seconds=5, shift=0)
    write_mp4(base / "AVE" / "vidNoAudio.mp4", audio=None)
    data = (base / "AVE" / "vidA.mp4").read_bytes()
    (base / "AVE" / "vidBroken.mp4").write_bytes(data[: len(data) // 3])
    (base / "Annotations.txt").write_text("\r\n".join(ANNOTATIONS) + "\r\n")
    (base / "trainSet.txt").write_text("\n".join(ANNOTATIONS[1:2] + ANNOTATIONS[3:5]) + "\n")
    (base / "valSet.txt").write_text(ANNOTATIONS[2] + "\n")
    (base / "testSet.txt").write_text("\n".join(ANNOTATIONS[3:]) + "\n")
    return root


def mean_rgb(image: torch.Tensor) -> list[float]:
    return image.float().mean(dim=(1, 2)).tolist()


def rms(x: torch.Tensor) -> float:
    return x.pow(2).mean().sqrt().item()


def test_read_ave_list_header_and_errors(tmp_path):
    path = tmp_path / "Annotations.txt"
    path.write_text("\n".join(ANNOTATIONS))
    rows = read_ave_list(path)
    assert len(rows) == 6 and rows[0] == AVERow("Church bell", "vidA", "good", 1.0, 2.0)
    path.write_text("\n".join(ANNOTATIONS[1:]))  # no header (the repo's copy)
    assert read_ave_list(path) == rows
    path.write_text("\n".join([*ANNOTATIONS, "Bark&vidX&good&zero&1"]))
    with pytest.raises(DatasetCorruptError, match=r"(?s)Annotations.txt.*line 8"):
        read_ave_list(path)
    path.write_text("Bark&vidX&good&1\n")
    with pytest.raises(DatasetCorruptError, match="line 1"):
        read_ave_list(path)


def test_decoders_middle_frame_and_audio(ave_root):
    video = ave_root / "AVE_Dataset" / "AVE" / "vidA.mp4"
    for at, colour in ((0.0, 0), (1.5, 1), (2.0, 2), (3.9, 3), (None, 2), (99.0, 3)):
        frame = np.asarray(read_video_frame(video, at), dtype=np.float32)
        assert frame.mean(axis=(0, 1)) == pytest.approx(COLOURS[colour], abs=12), at
    wave = read_audio_track(video, OUT_SR)  # 4 s stereo 16 kHz -> mono 8 kHz
    assert abs(wave.numel() - 4 * OUT_SR) <= 0.05 * OUT_SR
    assert rms(wave[OUT_SR : 3 * OUT_SR]) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)  # (0.4+0.2)/2


def test_ave_pairs_frames_audio_labels_and_missing(ave_root):
    with pytest.warns(UserWarning, match=r"AVE all: 1 of 6 listed pairs have no file"):
        ds = AVEPairs(ave_root, "all", image_size=SIZE, sample_rate=OUT_SR, clip_seconds=6.0)
    assert ds.categories == ("Acoustic guitar", "Bark", "Church bell")
    assert ds.ids == ["vidA", "vidB", "vidC", "vidNoAudio", "vidBroken"] and ds.num_missing == 1
    assert ds.labels.tolist() == [2, 1, 0, 2, 0]
    assert [ds.frame_time(i) for i in range(3)] == [1.5, None, 3.5]
    expected = {0: 1, 1: 2, 2: 3}  # row -> colour index of the chosen frame
    for row, colour in expected.items():
        item = ds[row]
        assert set(item) == {"image", "audio", "label", "index", "pair_id"}
        assert item["index"] == item["pair_id"] == row and item["label"] == ds.labels[row]
        assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.uint8
        assert mean_rgb(item["image"]) == pytest.approx(COLOURS[colour], abs=12)
        audio = item["audio"]
        assert audio.shape == (6 * OUT_SR,) and audio.dtype == torch.float32
        seconds = 5 if row == 2 else 4
        assert (audio[int((seconds + 0.2) * OUT_SR) :] == 0).all()  # zero-padded to 6 s
    pcm = ds[1]["audio"]  # pcm_s16le track in a mov container: (0.5 + 0.1) / 2
    assert rms(pcm[OUT_SR : 3 * OUT_SR]) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def test_ave_missing_stream_and_truncated_video_are_skipped(ave_root):
    with pytest.warns(UserWarning, match="AVE test: 1 of 4 listed"):
        ds = AVEPairs(ave_root, "test", image_size=SIZE, sample_rate=OUT_SR, clip_seconds=1.0)
    assert ds.ids == ["vidC", "vidNoAudio", "vidBroken"]
    with pytest.warns(UserWarning) as caught:
        item = ds[1]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "vidNoAudio.mp4" in messages[0]
    assert "1 video and 0 audio streams" in messages[0]
    assert "vidBroken.mp4" in messages[1] and "InvalidDataError" in messages[1]
    # vidBroken is corrupt too, so the pair wraps round to row 0 (vidC), whole and labelled
    assert ds.num_corrupt == 2 and item["index"] == 1 and item["label"] == 0
    assert mean_rgb(item["image"]) == pytest.approx(COLOURS[3], abs=12)
    image_view = ds.view("image")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rows already known corrupt: skipped silently
        assert image_view[2]["index"] == 2 and image_view.num_corrupt == 2
    with pytest.warns(UserWarning, match="have no file"):
        strict = AVEPairs(ave_root, "all", image_size=SIZE, sample_rate=OUT_SR, skip_corrupt=False)
    with pytest.raises(DatasetCorruptError, match=r"(?s)vidBroken.mp4.*decodable mp4"):
        strict.view("image")[4]


def test_missing_pyav_is_an_import_error_not_a_corrupt_file(ave_root, monkeypatch):
    ds = AVEPairs(ave_root, "val", image_size=SIZE, sample_rate=OUT_SR)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"assoc_lightning\[video\]"):
        ds[0]
    assert ds.num_corrupt == 0


def test_ave_datamodule_splits_views_and_loaders(ave_root):
    dm = AVERetrievalDataModule(
        data_dir=str(ave_root), batch_size=2, image_size=SIZE, sample_rate=OUT_SR, clip_seconds=2.0
    )
    with pytest.warns(UserWarning, match="have no file"):
        dm.setup("test")
    assert set(dm.paired) == set(dm.unpaired) == {"train", "val", "test"}
    assert dm.num_classes == 3 and dm.class_names[2] == "Church bell"
    assert dm.pair_dataset("val").ids == ["vidB"]
    audio_view = dm.eval_dataset("val", "audio")
    item = audio_view[0]
    assert set(item) == {"audio", "label", "index"} and item["label"] == 1
    assert item["audio"].shape == (2 * OUT_SR,)
    image_item = dm.eval_dataset("val", "image")[0]
    assert mean_rgb(image_item["image"]) == pytest.approx(COLOURS[2], abs=12)
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["audio"].shape == (2, 2 * OUT_SR)
    assert sorted(batch["label"].tolist()) == [0, 2]  # vidC (Acoustic guitar), vidA (Church bell)
    assert batch["pair_id"].tolist() == batch["index"].tolist()
    dm_all = AVERetrievalDataModule(data_dir=str(ave_root / "AVE_Dataset"), test_split="all")
    with pytest.warns(UserWarning):
        dm_all.setup()
    assert len(dm_all.pair_dataset("test")) == 5
    with pytest.raises(DatasetNotFoundError, match=r"(?s)expected layout.*AVE-ECCV18"):
        AVERetrievalDataModule(data_dir=str(ave_root / "nope")).setup()
    with pytest.raises(ValueError, match="test_split"):
        AVERetrievalDataModule(test_split="val")


# ------------------------------------------------------------------------------ Flickr-SoundNet
def write_pair(image: Path, sound: Path, colour, seconds: float, value: float, rate=16000) -> None:
    image.parent.mkdir(parents=True, exist_ok=True)
    sound.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(image)
    ramp = np.linspace(0, value, int(seconds * rate), dtype=np.float32)
    sf.write(sound, np.stack([ramp, ramp], axis=1), rate)


def make_lvs(base: Path) -> None:
    """LVS: metadata/flickr_test.csv, frames/<id>.jpg, audio/<id>.wav (one id without sound,
    one corrupt sound)."""
    write_pair(base / "frames" / "1001.jpg", base / "audio" / "1001.wav", (255, 0, 0), 0.5, 0.5)
    write_pair(
        base / "frames" / "1002.jpg", base / "audio" / "1002.wav", (0, 0, 255), 3.0, 0.8, 22050
    )
    (base / "frames" / "1003.jpg").parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8)).save(base / "frames" / "1003.jpg")
    write_pair(base / "frames" / "1004.jpg", base / "audio" / "1004.wav", (0, 255, 0), 1.0, 0.1)
    (base / "audio" / "1004.wav").write_bytes(b"RIFF\x00\x00garbage")
    (base / "metadata").mkdir(parents=True, exist_ok=True)
    (base / "metadata" / "flickr_test.csv").write_text("1001,1\n1002,2\n1003,1\n1004,3\n")


def test_flickr_lvs_pairs_tiling_and_skips(tmp_path):
    make_lvs(tmp_path / "flickr_soundnet")
    with pytest.warns(UserWarning, match=r"Flickr-SoundNet \(lvs\): 1 of 4 listed"):
        ds = FlickrSoundNetPairs(tmp_path, image_size=SIZE, sample_rate=OUT_SR, clip_seconds=2.0)
    assert ds.layout == "lvs" and ds.ids == ["1001", "1002", "1004"] and ds.num_missing == 1
    assert ds.labels.tolist() == [0, 0, 0]
    item = ds[0]
    assert item["pair_id"] == item["index"] == 0 and item["label"] == 0
    assert mean_rgb(item["image"]) == pytest.approx([254, 0, 0], abs=3)
    audio = item["audio"]  # 0.5 s ramp looped to 2 s
    assert audio.shape == (2 * OUT_SR,)
    n = OUT_SR // 2
    assert torch.allclose(audio[:n], audio[n : 2 * n]) and torch.allclose(audio[:n], audio[3 * n :])
    assert audio[n // 2].item() == pytest.approx(0.25, abs=0.01)  # the ramp, resampled
    long = ds[1]["audio"]  # 3 s at 22.05 kHz -> cropped to 2 s at 8 kHz
    assert long.shape == (2 * OUT_SR,) and long[-1].item() == pytest.approx(0.8 * 2 / 3, abs=0.02)
    with pytest.warns(UserWarning, match=r"skipping corrupt file .*1004.wav"):
        assert ds.view("audio")[2]["audio"].shape == (2 * OUT_SR,)
    assert ds.num_corrupt == 1


def make_senocak(base: Path) -> None:
    data = base / "Dataset" / "Data"
    write_pair(data / "0" / "2001.jpg", data / "0" / "2001.wav", (255, 0, 0), 1.0, 0.2)
    write_pair(data / "1" / "2002.jpg", data / "1" / "2002.wav", (0, 255, 0), 1.0, 0.4)
    write_pair(data / "1" / "2003.jpg", data / "1" / "2003.wav", (0, 0, 255), 1.0, 0.6)
    (base / "Dataset" / "Annotations").mkdir()
    (base / "Dataset" / "Annotations" / "2002.xml").write_text("<annotation/>")
    (base / "test_list.txt").write_text("2002.jpg\n2001.jpg\n2999.jpg\n")


def test_flickr_senocak_list_and_all(tmp_path):
    make_senocak(tmp_path)
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        listed = FlickrSoundNetPairs(
            tmp_path, layout="senocak", image_size=SIZE, sample_rate=OUT_SR
        )
    assert listed.layout == "senocak" and listed.ids == ["2002", "2001"]
    assert mean_rgb(listed[0]["image"]) == pytest.approx([0, 255, 0], abs=3)
    assert listed[0]["audio"].shape == (10 * OUT_SR,)  # default 10 s
    every = FlickrSoundNetPairs(tmp_path, subset="all", image_size=SIZE, sample_rate=OUT_SR)
    assert every.ids == ["2001", "2002", "2003"] and every.num_missing == 0
    with pytest.raises(
        DatasetNotFoundError, match=r"(?s)expected layout.*Localizing-Visual-Sounds"
    ):
        FlickrSoundNetPairs(tmp_path, layout="lvs")


def test_flickr_datamodule_is_test_only(tmp_path):
    make_senocak(tmp_path / "flickr_soundnet")
    dm = FlickrSoundNetDataModule(
        data_dir=str(tmp_path), batch_size=4, image_size=SIZE, sample_rate=OUT_SR, clip_seconds=1.0
    )
    with pytest.warns(UserWarning, match="1 of 3 listed"):
        dm.setup("test")
    assert set(dm.paired) == set(dm.unpaired) == {"test"}
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["audio"].shape == (2, OUT_SR)
    assert batch["index"].tolist() == batch["pair_id"].tolist() == [0, 1]
    image = dm.eval_dataset("test", "image")[1]
    assert image["index"] == 1 and mean_rgb(image["image"]) == pytest.approx([254, 0, 0], abs=3)
    with pytest.raises(ValueError, match="only a test split"):
        dm.train_dataloader()
    with pytest.raises(ValueError, match="only a test split"):
        dm.val_dataloader()
    with pytest.raises(DatasetNotFoundError, match="dataset not found: Flickr-SoundNet"):
        FlickrSoundNetDataModule(data_dir=str(tmp_path / "nope")).setup()
