"""The real-data C-MCR path end to end, offline: experiments/paper/cmcr_clip_clap.yaml through
the real CLI with tiny random-weight CLIP and CLAP loaded from disk, caption files, an
ImageNet-style image folder, an AudioSet wav copy and AVE mp4s, all in their real formats."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from assoc_lightning.cli import main
from tests.conftest import ROOT
from tests.fixtures.audioset import make_wav_copy
from tests.fixtures.towers import SR

PAPER = ROOT / "experiments/paper/cmcr_clip_clap.yaml"


@pytest.fixture
def data_dir(tmp_path):
    root = tmp_path / "data"
    (root / "captions").mkdir(parents=True)
    (root / "captions" / "coco.txt").write_text("a dog barking\na red car\na church bell\n")
    (root / "captions" / "clotho.txt").write_text("rain on a roof\na dog barking\nwind\n")
    rng = np.random.default_rng(0)
    for cls in ("n01", "n02"):
        (root / "imagenet" / "train" / cls).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "imagenet" / "train" / cls / f"{i}.png")
    make_wav_copy(root / "audioset")
    return root


def run(data_dir, clip_dir, clap_dir, ave_root, save_dir, extra=()):  # noqa: F811
    main([
        "fit", "--config", str(PAPER),
        "--data.init_args.data_dir", str(data_dir),
        "--data.init_args.retrieval_root", str(ave_root),
        "--data.init_args.sample_rate", str(SR),
        "--data.init_args.clip_seconds", "1",
        "--data.init_args.image_size", "32",
        "--data.init_args.batch_size", "4",
        "--data.init_args.num_workers", "0",
        "--data.init_args.eval_batch_size", "2",
        "--data.init_args.held_out_captions", "0.2",
        "--model.init_args.image_space.init_args.path", str(clip_dir),
        "--model.init_args.audio_space.init_args.path", str(clap_dir),
        "--model.init_args.embed_batch_size", "2",
        "--trainer.max_epochs", "2",
        "--trainer.logger.init_args.save_dir", str(save_dir),
        "--trainer.enable_progress_bar", "false",
        "--trainer.accelerator", "cpu",
        *extra,
    ])  # fmt: skip


def test_paper_config_trains_from_caches_and_evaluates_retrieval(
    data_dir,
    clip_dir,  # noqa: F811
    clap_dir,  # noqa: F811
    ave_root,  # noqa: F811
    tmp_path,
):
    with pytest.warns(UserWarning):  # the fixtures' missing / corrupt clips are reported
        run(data_dir, clip_dir, clap_dir, ave_root, tmp_path / "runs")
    run_dir = next((tmp_path / "runs").glob("cmcr_clip_clap/version_0"))
    records = [json.loads(x) for x in (run_dir / "results.jsonl").read_text().splitlines()]
    test = {r["metric"]: r["value"] for r in records if r["split"] == "test"}
    for key in ("retrieval/a2i_r1", "retrieval/a2i_r5", "retrieval/a2i_map", "retrieval/i2a_map"):
        assert 0.0 <= test[key] <= 1.0
    assert not any(k.startswith(("knn", "linear")) for k in test)  # retrieval only, as the paper
    caches = sorted(p.parent.name for p in (data_dir / "cache" / "cmcr").rglob("index.json"))
    assert caches.count("captions") == 2 and caches.count("memory") == 2
    assert sum(c.startswith("read_softmax") for c in caches) == 2
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    assert all(k.startswith("projectors.") for k in ckpt["state_dict"])  # towers not saved


def test_paper_config_without_towers_says_where_to_get_them(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["fit", "--config", str(PAPER), "--data.init_args.data_dir", str(tmp_path),
              "--model.init_args.image_space.init_args.path", str(tmp_path / "clip")])  # fmt: skip
    assert err.value.code == 2
    out = capsys.readouterr().err
    assert str(tmp_path / "clip") in out and "huggingface-cli download" in out
