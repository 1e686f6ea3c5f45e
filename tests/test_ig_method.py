import pytest
import torch

from assoc_lightning.errors import TrainingDivergedError
from assoc_lightning.methods import METHODS, IGEmbedding


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
