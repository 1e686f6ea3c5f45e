"""``assoc retrieve`` on a tiny trained run: own recordings (44.1 kHz stereo), images, folder
galleries, and the clear errors. The correctness check is that a file made from a dataset item
is prepared into that item and ranked exactly as the item itself is."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from PIL import Image

from assoc_lightning import retrieve
from assoc_lightning.cli import main
from assoc_lightning.data.datasets.digits import WORDS
from assoc_lightning.eval.bank import collect_features
from assoc_lightning.eval.metrics.knn import topk_neighbors
from tests.conftest import NO_FINAL_EVAL, ROOT, TINY_SPEAKERS


@pytest.fixture(scope="module")
def run_dir(digits_dir, tmp_path_factory) -> Path:
    """An IG-embedding run of two steps on the tiny digits (no evaluation): version_0."""
    save_dir = tmp_path_factory.mktemp("retrieve_runs")
    main(
        ["fit", "--config", str(ROOT / "experiments/ig_embedding.yaml"),
         "--data.init_args.data_dir", str(digits_dir),
         "--data.init_args.num_speakers", str(TINY_SPEAKERS),
         "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
         "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
         "--trainer.logger.init_args.save_dir", str(save_dir), "--eval.extra", "[]",
         *NO_FINAL_EVAL]
    )  # fmt: skip
    return save_dir / "ig_embedding" / "version_0"


@pytest.fixture(scope="module")
def loaded(run_dir) -> retrieve.Loaded:
    return retrieve.restore(retrieve.find_run(str(run_dir)), None, "cpu")


def write_stereo_44k(wave: torch.Tensor, rate: int, path: Path) -> Path:
    """``wave`` resampled to 44.1 kHz as two channels whose mean is the wave (float WAV)."""
    w = torchaudio.functional.resample(wave, rate, 44100)
    sf.write(path, torch.stack([1.2 * w, 0.8 * w], 1).numpy(), 44100, subtype="FLOAT")
    return path


def direct_ranking(loaded, batch: dict, gallery_modality: str, k: int):
    """Scores and rows of the top k when the item itself goes through the model."""
    with torch.no_grad():
        (query,) = loaded.model.retrieval_embed(batch).values()
    dataset = loaded.datamodule.eval_dataset("test", gallery_modality)
    bank = collect_features(loaded.model, dataset, [gallery_modality], space="retrieval")
    return topk_neighbors(query, bank[gallery_modality].embeddings, k)


def test_own_recording_44k_stereo_prints_k_matches_and_saves_png(run_dir, tmp_path, capsys):
    t = np.arange(int(44100 * 1.7)) / 44100  # 1.7 s: longer than the 1-s clips
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "hello.wav", np.stack([tone, 0.5 * tone], 1), 44100)
    main(["retrieve", str(run_dir.parent), str(tmp_path / "hello.wav"), "--k", "4"])
    out = capsys.readouterr().out
    assert "44100 Hz, 2 channels -> mono 1.00 s at 16000 Hz" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    assert all(r[2] in WORDS for r in rows)  # the gallery items' class names
    picture = run_dir / "retrieve" / "retrieve_hello.png"
    assert f"saved {picture}" in out and Image.open(picture).size[0] > 200


def test_a_test_clip_written_at_44k_stereo_ranks_like_the_clip_itself(loaded, tmp_path):
    clips = loaded.datamodule.eval_dataset("test", "audio")
    item = clips[7]
    sf.write(tmp_path / "native.wav", item["audio"].numpy(), 16000, subtype="FLOAT")
    stereo = write_stereo_44k(item["audio"], 16000, tmp_path / "stereo.wav")
    scores, rows = direct_ranking(loaded, {"audio": item["audio"][None]}, "image", 5)
    native, resampled = retrieve.retrieve(
        loaded, [tmp_path / "native.wav", stereo], k=5, out=tmp_path, echo=lambda _: None
    )
    # the same samples: the very ranking of the item
    assert [m.row for m in native.matches] == rows[0].tolist()
    assert np.allclose([m.score for m in native.matches], scores[0], atol=1e-5)
    # 44.1 kHz stereo is read back into the clip (up to the resampler's round trip) ...
    fmt = retrieve.audio_format(loaded.datamodule, "test")
    wave = retrieve.read_query_audio(stereo, fmt)
    assert wave.shape == item["audio"].shape
    assert (wave - item["audio"]).norm() < 0.05 * item["audio"].norm()
    # ... and each match scores as that gallery row does for the clip itself
    all_scores, all_rows = direct_ranking(loaded, {"audio": item["audio"][None]}, "image", 10**6)
    by_row = dict(zip(all_rows[0].tolist(), all_scores[0].tolist(), strict=True))
    assert all(abs(m.score - by_row[m.row]) < 2e-3 for m in resampled.matches)
    assert {m.label for m in native.matches} <= set(loaded.datamodule.class_names)


def test_image_query_is_prepared_like_the_items_and_returns_sounds(loaded, tmp_path):
    item = loaded.datamodule.eval_dataset("test", "image")[3]
    grey = (item["image"][0] * 255).round().to(torch.uint8).numpy()
    Image.fromarray(grey).save(tmp_path / "native.png")
    Image.fromarray(grey).convert("RGB").resize((84, 84)).save(tmp_path / "big.png")
    reference = item["image"]
    assert torch.equal(retrieve.image_like(tmp_path / "native.png", reference), reference)
    assert retrieve.image_like(tmp_path / "big.png", reference).shape == reference.shape
    scores, rows = direct_ranking(loaded, {"image": item["image"][None]}, "audio", 3)
    native, big = retrieve.retrieve(
        loaded, [tmp_path / "native.png", tmp_path / "big.png"], k=3, out=tmp_path,
        echo=lambda _: None,
    )  # fmt: skip
    assert native.modality == big.modality == "image" and len(big.matches) == 3
    assert [m.row for m in native.matches] == rows[0].tolist()
    assert np.allclose([m.score for m in native.matches], scores[0], atol=1e-5)
    assert big.picture.is_file()


def test_folder_gallery_ranks_its_files_with_subfolder_classes(run_dir, loaded, tmp_path, capsys):
    clips = loaded.datamodule.eval_dataset("test", "audio")
    gallery = tmp_path / "gallery"
    for i, rate in ((0, 8000), (10, 22050), (20, 48000)):
        name = loaded.datamodule.class_names[int(clips.labels[i])]
        (gallery / name).mkdir(parents=True, exist_ok=True)
        wave = torchaudio.functional.resample(clips[i]["audio"], 16000, rate)
        sf.write(gallery / name / f"clip{i}.flac", wave.numpy(), rate)
    image = loaded.datamodule.eval_dataset("test", "image")[0]["image"][0]
    Image.fromarray((image * 255).round().to(torch.uint8).numpy()).save(tmp_path / "q.png")
    main(["retrieve", str(run_dir), str(tmp_path / "q.png"), "--gallery", str(gallery),
          "--k", "5", "--out", str(tmp_path / "out")])  # fmt: skip
    out = capsys.readouterr().out
    assert f"top 3 sounds of {gallery} (3 items)" in out
    assert all(f"clip{i}.flac" in out for i in (0, 10, 20))
    assert (tmp_path / "out" / "retrieve_q.png").is_file()


def error_of(args: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["retrieve", *args])
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_clear_errors(run_dir, tmp_path, capsys):
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00not audio")
    err = error_of([str(run_dir), str(tmp_path / "bad.wav")], capsys)
    assert f"corrupt file: {tmp_path / 'bad.wav'}" in err and "accepted: audio (wav, flac" in err
    (tmp_path / "empty.flac").write_bytes(b"")
    assert "is empty (0 bytes)" in error_of([str(run_dir), str(tmp_path / "empty.flac")], capsys)
    (tmp_path / "notes.txt").write_text("not a query")
    assert "unknown file type .txt" in error_of([str(run_dir), str(tmp_path / "notes.txt")], capsys)
    assert "query file not found" in error_of([str(run_dir), str(tmp_path / "x.wav")], capsys)
    sf.write(tmp_path / "ok.wav", np.zeros(800, dtype=np.float32), 8000)
    query = str(tmp_path / "ok.wav")
    assert f"run not found: {tmp_path / 'nope'}" in error_of(
        [str(tmp_path / "nope"), query], capsys
    )
    assert "not a run folder" in error_of([str(tmp_path), query], capsys)
    stray = tmp_path / "stray" / "checkpoints" / "last.ckpt"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"weights")
    assert "has no config.yaml" in error_of([str(stray), query], capsys)
    bare = tmp_path / "bare" / "version_0"
    bare.mkdir(parents=True)
    shutil.copy(run_dir / "config.yaml", bare / "config.yaml")
    assert "has no checkpoint" in error_of([str(bare.parent), query], capsys)
    (tmp_path / "no_images").mkdir()
    err = error_of([str(run_dir), query, "--gallery", str(tmp_path / "no_images")], capsys)
    assert "holds no image files" in err


def test_a_datamodule_without_both_modalities_is_refused(loaded):
    odd = SimpleNamespace(datamodule=SimpleNamespace(modalities=("fashion_mnist", "mnist")))
    with pytest.raises(retrieve.RetrieveError, match="sounds for images"):
        retrieve.check_retrieval(odd)
    off = SimpleNamespace(datamodule=loaded.datamodule, config={"eval": {"retrieval": None}})
    with pytest.raises(retrieve.RetrieveError, match="separate latent spaces"):
        retrieve.check_retrieval(off)
