"""Cross-modal VAE associator: phases and freezing, cascades, init checkpoints, the CLI on both phases, the paper configs' clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback, Trainer

from assoc_lightning.cli import main
from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.data.datasets.base import TensorLabeledDataset
from assoc_lightning.data.datasets.pairing import ClassPairedDataset
from assoc_lightning.methods import METHODS, VAEAssociator
from assoc_lightning.methods.vae_associator import InitCheckpointError
from tests.conftest import ROOT, TINY_SPEAKERS, paper_config_error


# ------------------------------------------------------------------------- model contract
def test_registered_embed_translate_and_output_space_shapes():
    assert METHODS["vae_associator"] is VAEAssociator
    m = VAEAssociator(latent_dims={"image": 32}).eval()
    batch = {"image": torch.rand(3, 1, 28, 28), "audio": torch.randn(3, 16000) * 0.1}
    emb = m.embed(batch)
    assert emb["image"].shape == (3, 32) and emb["audio"].shape == (3, 64)
    assert m.output_space(batch)["audio"].shape == (3, 1, 40, 101)
    assert m.translate(batch, "audio", "image").shape == (3, 1, 28, 28)
    assert m.translate(batch, "image", "audio").shape == (3, 1, 40, 101)
    recon = m.translate(batch, "image", "image")
    assert recon.shape == (3, 1, 28, 28) and recon.min() >= 0 and recon.max() <= 1
    # embed is the posterior mean, translate goes through means only: deterministic
    assert torch.equal(m.translate(batch, "audio", "image"), m.translate(batch, "audio", "image"))
    with pytest.raises(ValueError, match="unknown input kinds"):
        VAEAssociator(modalities={"image": "image32"})


def test_cascade_shapes_with_different_latent_sizes_and_no_direct_associator():
    kinds = {"speech_commands": "mfcc", "fashion_mnist": "image28", "mnist": "image28"}
    dims = {"speech_commands": 64, "fashion_mnist": 256, "mnist": 32}
    m = VAEAssociator(
        modalities=kinds,
        latent_dims=dims,
        associators=[("speech_commands", "fashion_mnist"), ("fashion_mnist", "mnist")],
    ).eval()
    assert sorted(m.associators) == [
        "fashion_mnist2mnist", "fashion_mnist2speech_commands",
        "mnist2fashion_mnist", "speech_commands2fashion_mnist",
    ]  # fmt: skip
    assert m.associators["speech_commands2fashion_mnist"].head.mu.weight.shape == (256, 512)
    assert m.associators["fashion_mnist2mnist"].net[0].weight.shape == (512, 256)
    assert m.associators["fashion_mnist2mnist"].head.mu.weight.shape == (32, 512)
    assert m.route("speech_commands", "mnist") == [
        ("speech_commands", "fashion_mnist"),
        ("fashion_mnist", "mnist"),
    ]
    batch = {"speech_commands": torch.randn(2, 16000) * 0.1, "mnist": torch.rand(2, 1, 28, 28)}
    assert m.translate(batch, "speech_commands", "mnist").shape == (2, 1, 28, 28)
    assert m.translate(batch, "mnist", "speech_commands").shape == (2, 1, 40, 101)
    emb = m.embed({**batch, "fashion_mnist": torch.rand(2, 1, 28, 28)})
    assert {k: v.shape[1] for k, v in emb.items()} == dims
    # the chain is exactly A_{M,F} after A_{F,G} on the means
    z, _ = m.vaes["speech_commands"].encode(m.features("speech_commands", batch["speech_commands"]))
    z, _ = m.associators["speech_commands2fashion_mnist"](z)
    z, _ = m.associators["fashion_mnist2mnist"](z)
    chained = m.vaes["mnist"].decode(z)
    assert torch.allclose(m.translate(batch, "speech_commands", "mnist"), chained)


def test_adding_a_modality_trains_one_new_vae_and_one_associator_pair(tmp_path):
    # a finished F-MNIST <-> MNIST model (latent 256 and 32) ...
    old = VAEAssociator(
        modalities={"fashion_mnist": "image28", "mnist": "image28"},
        latent_dims={"fashion_mnist": 256, "mnist": 32},
    )
    path = tmp_path / "fm.ckpt"
    torch.save({"state_dict": old.state_dict(), "vae_associator": {"phase": 2}}, path)
    # ... extended by GSC, joined to F-MNIST only
    new = VAEAssociator(
        modalities={"speech_commands": "mfcc", "fashion_mnist": "image28", "mnist": "image28"},
        latent_dims={"fashion_mnist": 256, "mnist": 32},
        associators=[("speech_commands", "fashion_mnist"), ("fashion_mnist", "mnist")],
        init_checkpoint=str(path),
    )
    new.setup("fit")
    assert new.trainable_vaes() == ["speech_commands"]
    assert new.trainable_directions() == [
        ("speech_commands", "fashion_mnist"),
        ("fashion_mnist", "speech_commands"),
    ]
    for name, module in [*new.vaes.items(), *new.associators.items()]:
        src = old.vaes if name in old.vaes else old.associators
        if name in src:
            assert all(
                torch.equal(a, b)
                for a, b in zip(
                    module.state_dict().values(), src[name].state_dict().values(), strict=True
                )
            )
    opt_params = [
        {id(p) for g in o.param_groups for p in g["params"]} for o in new.configure_optimizers()
    ]
    assert opt_params[0] == {id(p) for p in new.vaes["speech_commands"].parameters()}
    assert opt_params[1] == {
        id(p)
        for k in ("speech_commands2fashion_mnist", "fashion_mnist2speech_commands")
        for p in new.associators[k].parameters()
    }
    # a checkpoint from the middle of phase 1 is refused with a clear message
    torch.save({"state_dict": old.state_dict(), "vae_associator": {"phase": 1}}, path)
    with pytest.raises(InitCheckpointError, match="during phase 1"):
        VAEAssociator(
            modalities={"fashion_mnist": "image28", "mnist": "image28"}, init_checkpoint=str(path)
        ).setup("fit")


# ---------------------------------------------------------------------- phases, in a fit
class TinyTwoImages(AssocDataModule):
    """Two image modalities ("left", "right"), 16 training items, 4 classes, in memory."""

    def __init__(self, unpaired_train: bool = True) -> None:
        super().__init__(batch_size=8, eval_batch_size=16)
        self.modalities, self.num_classes = ("left", "right"), 4
        self.unpaired_train = unpaired_train

    def setup(self, stage=None):
        if self.unpaired:
            return
        g = torch.Generator().manual_seed(0)
        for split in ("train", "val", "test"):
            labels = [i % 4 for i in range(16)]
            sets = {
                m: TensorLabeledDataset(m, torch.rand(16, 1, 28, 28, generator=g), labels)
                for m in self.modalities
            }
            self.unpaired[split] = sets
            self.paired[split] = ClassPairedDataset(
                sets["left"], {"right": sets["right"]}, fixed=split != "train"
            )

    def train_dataloader(self):
        if self.unpaired_train:
            return self.train_loader_with_unpaired()
        return super().train_dataloader()


class Snapshots(Callback):
    """Parameters (and freezing state) at the start of every training epoch and at the end."""

    def __init__(self):
        self.at = {}

    def grab(self, module):
        return {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_train_epoch_start(self, trainer, pl_module):  # runs before the module's hook
        self.at[trainer.current_epoch] = self.grab(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            self.at[f"modes{trainer.current_epoch}"] = {
                name: (part.training, any(p.requires_grad for p in part.parameters()))
                for name, part in [*pl_module.vaes.items(), *pl_module.associators.items()]
            }

    def on_train_end(self, trainer, pl_module):
        self.at["end"] = self.grab(pl_module)


def fit(tmp_path, max_epochs, **kwargs):
    model = VAEAssociator(
        modalities={"left": "image28", "right": "image28"}, latent_dims={"right": 16}, **kwargs
    )
    snap = Snapshots()
    trainer = Trainer(
        max_epochs=max_epochs, callbacks=[snap], default_root_dir=tmp_path, logger=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    trainer.fit(model, datamodule=TinyTwoImages())
    return model, snap, trainer


def changed(before, after, prefix):
    keys = [k for k in before if k.startswith(prefix)]
    assert keys
    return [k for k in keys if not torch.equal(before[k], after[k])]


def test_phase2_leaves_every_vae_weight_bit_identical_and_trains_the_associators(tmp_path):
    model, snap, trainer = fit(tmp_path, max_epochs=3, phase1_epochs=1, weight_decay=0.1)
    start, phase2, end = snap.at[0], snap.at[1], snap.at["end"]
    # phase 1 trains both VAEs, never the associators
    assert len(changed(start, phase2, "vaes.")) == len([k for k in start if k.startswith("vaes.")])
    assert changed(start, phase2, "associators.") == []
    # phase 2 (two epochs, Adam with weight decay) moves no VAE weight, every associator one
    assert changed(phase2, end, "vaes.") == []
    assert len(changed(phase2, end, "associators.")) == len(
        [k for k in start if k.startswith("associators.")]
    )
    # frozen parts: no grad, eval mode; trainable parts: grad, train mode
    modes1 = snap.at["modes1"]
    assert modes1["left"] == modes1["right"] == (False, False)
    assert modes1["left2right"] == modes1["right2left"] == (True, True)
    assert snap.at["modes0"]["left2right"] == (False, False)
    assert snap.at["modes0"]["left"] == (True, True)
    # the finished VAEs were written when phase 1 ended
    phase1 = torch.load(tmp_path / "checkpoints" / "phase1.ckpt", weights_only=False)
    assert set(phase1["state_dict"]) == {k for k in start if k.startswith("vaes.")}
    assert all(torch.equal(v, phase2[k]) for k, v in phase1["state_dict"].items())


def test_phase1_checkpoint_starts_a_run_at_phase_2(tmp_path):
    first, snap1, _ = fit(tmp_path / "a", max_epochs=1, phase1_epochs=1)
    ckpt = tmp_path / "a" / "checkpoints" / "phase1.ckpt"
    model, snap, trainer = fit(tmp_path / "b", max_epochs=1, init_checkpoint=str(ckpt))
    assert model.loaded == {"vaes.left", "vaes.right"}
    assert model.phase == 2 and snap.at["modes0"]["left"] == (False, False)
    assert all(
        torch.equal(snap.at["end"][k], v) for k, v in snap1.at["end"].items() if "vaes." in k
    )
    assert len(changed(snap.at[0], snap.at["end"], "associators.")) > 0
    # a finished run's checkpoint records its phase (so it can serve as an init checkpoint)
    trainer.save_checkpoint(tmp_path / "end.ckpt")
    assert torch.load(tmp_path / "end.ckpt", weights_only=False)["vae_associator"]["phase"] == 2


def test_phase1_without_unpaired_streams_falls_back_to_the_pairs_with_a_warning(tmp_path):
    model = VAEAssociator(modalities={"left": "image28", "right": "image28"}, phase1_epochs=1)
    trainer = Trainer(
        max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0,
    )  # fmt: skip
    with pytest.warns(UserWarning, match="unpaired_train: true"):
        trainer.fit(model, datamodule=TinyTwoImages(unpaired_train=False))


# ------------------------------------------------------------------------------------ CLI
def test_default_config_runs_both_phases_through_the_cli(digits_dir, tmp_path):
    main(
        [
            "fit", "--config", str(ROOT / "experiments/vae_associator.yaml"),
            "--data.init_args.data_dir", str(digits_dir),
            "--data.init_args.num_speakers", str(TINY_SPEAKERS),
            "--model.init_args.phase1_epochs", "1",
            "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "1",
            "--trainer.limit_val_batches", "1",
            "--trainer.check_val_every_n_epoch", "2",
            "--trainer.log_every_n_steps", "1",
            "--trainer.logger.init_args.save_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false",
        ]
    )  # fmt: skip
    run = next(tmp_path.glob("vae_associator/version_0"))
    lines = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    test = {r["metric"]: r["value"] for r in lines if r["split"] == "test"}
    for metric in (
        "crossmodal_acc/audio2image", "crossmodal_acc/image2audio",
        "recognition_acc/image", "recognition_acc/audio", "recon_acc/image", "recon_acc/audio",
        "knn_top1/image", "linear_top1/audio",
    ):  # fmt: skip
        assert 0.0 <= test[metric] <= 1.0, metric
    assert test["recognition_acc/image"] > 0.8  # the classifier works on the digits
    assert all(r["method"] == "vae_associator" for r in lines)
    assert (run / "checkpoints" / "phase1.ckpt").is_file()
    assert list(run.glob("crossmodal_test_step*_audio2image.png"))
    metrics_csv = (run / "metrics.csv").read_text()
    assert "train/int_audio" in metrics_csv and "train/crs_audio2image" in metrics_csv


PAPER = sorted((ROOT / "experiments/paper").glob("vae_*.yaml"))


@pytest.mark.parametrize("config", PAPER, ids=lambda p: p.stem)
def test_paper_configs_say_which_dataset_is_missing(config, tmp_path, capsys):
    err = paper_config_error(config, tmp_path, capsys)
    assert "dataset not found" in err and "expected layout" in err


def test_paper_configs_exist():
    names = {p.stem for p in PAPER}
    assert {
        "vae_fashion_mnist_mnist", "vae_mnist_speech_commands",
        "vae_fashion_mnist_speech_commands", "vae_gtsrb_speech_commands", "vae_cascade",
    } <= names  # fmt: skip
    assert Path(ROOT / "experiments/vae_associator.yaml").is_file()
