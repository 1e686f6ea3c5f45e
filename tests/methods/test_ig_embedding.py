"""IG-regularized embedding: the embed contract, the loss terms, a clear stop on a NaN loss, the paper config on real-format MNIST + TIDIGITS fixtures."""

from __future__ import annotations

import pytest
import torch

from assoc_lightning.errors import TrainingDivergedError
from assoc_lightning.methods import METHODS, IGEmbedding
from tests.fixtures.idx import make_mnist
from tests.fixtures.tidigits import make_tidigits


def batch(n=4):
    return {
        "image": torch.rand(n, 1, 28, 28),
        "audio": torch.randn(n, 16000) * 0.1,
        "label": torch.arange(n),
    }


def test_registered_by_name():
    assert METHODS["ig_embedding"] is IGEmbedding


def test_embed_contract_shapes():
    m = IGEmbedding().eval()
    out = m.embed(batch())
    assert set(out) == {"image", "audio"} and out["image"].shape == out["audio"].shape == (4, 128)
    only_audio = m.embed({"audio": torch.randn(3, 16000)})
    assert set(only_audio) == {"audio"}
    assert m.embed_samples(batch(), 16)["image"].shape == (4, 16, 128)
    # samples are mu + sigma * eps: their average converges to the mean embedding
    b = batch()
    mu, logvar = m.posteriors(b)["image"]
    samples = m.embed_samples(b, 4000)["image"]
    z = (samples - mu.unsqueeze(1)) / (0.5 * logvar).exp().unsqueeze(1)
    assert z.mean().abs() < 0.01 and (z.std() - 1).abs() < 0.01


def test_loss_terms_and_weights():
    torch.manual_seed(0)
    m = IGEmbedding(lambda_ig=0.5, lambda_wd=0.01)
    losses = m.compute_losses(batch())
    total = losses["sim"] + 0.5 * losses["ig"] + 0.01 * losses["wd"]
    assert torch.allclose(losses["loss"], total)
    assert losses["ig"] > 0 and losses["wd"] > 0
    losses["loss"].backward()
    assert all(p.grad is not None for p in m.parameters())


def test_lambda_ig_zero_leaves_kl_out_of_the_gradient():
    torch.manual_seed(0)
    m = IGEmbedding(lambda_ig=0.0, lambda_wd=0.0)
    b = batch()
    torch.manual_seed(1)
    m.compute_losses(b)["loss"].backward()
    g0 = m.heads["image"].logvar.weight.grad.clone()
    m.zero_grad()
    torch.manual_seed(1)
    m.compute_losses(b)["sim"].backward()
    assert torch.allclose(m.heads["image"].logvar.weight.grad, g0)


def test_non_finite_loss_is_a_clear_error():
    m = IGEmbedding()
    with pytest.raises(
        TrainingDivergedError, match="non-finite train loss at step 0.*lower learning rate"
    ):
        m.log_losses({"loss": torch.tensor(float("nan")), "sim": torch.tensor(1.0)}, "train", 4)


def test_optimizer_is_the_papers():
    m = IGEmbedding()
    cfg = m.configure_optimizers()
    opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["lr"] == 1e-5 and opt.defaults["betas"] == (0.95, 0.999)
    assert sched.step_size == 10 and sched.gamma == 0.9


def test_paper_config_runs_on_real_format_fixtures(tmp_path):
    """experiments/paper/ig_mnist_tidigits.yaml through the real CLI on MNIST IDX + shorten
    SPHERE fixtures (20 kHz audio, 1.5 s clips: the fbank front-end crops to 100 frames)."""
    from assoc_lightning.cli import main
    from tests.conftest import ROOT

    make_mnist(tmp_path, n_train=80, n_test=20)
    every_digit = tuple(f"{d}a" for d in "zo123456789")
    make_tidigits(tmp_path / "TIDIGITS", speakers_per_group=1, utterances=every_digit)
    main([
        "fit", "--config", str(ROOT / "experiments/paper/ig_mnist_tidigits.yaml"),
        "--data.init_args.data_dir", str(tmp_path),
        "--data.init_args.batch_size", "8",
        "--data.init_args.image_options", "{val_size: 20}",
        "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2",
        "--trainer.limit_val_batches", "1",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "runs"),
        "--trainer.enable_progress_bar", "false",
    ])  # fmt: skip
    results = next((tmp_path / "runs").rglob("results.jsonl")).read_text()
    assert '"cluster_purity"' in results and '"knn_top1/audio"' in results
