"""IG-regularized embedding (Leidal, Harwath, Glass, ASRU 2017).

Image and audio encoders each output a diagonal Gaussian N(mu, sigma^2) in R^128. Sixteen
embeddings are sampled per input; sample k of image i and sample k of audio i form a positive
pair, and a sampled margin-ranking loss (margin 1, dot product) with one impostor image and
one impostor audio per pair pulls pairs together. The information-gain term, the KL from each
posterior to N(0, I) weighted by ``lambda_ig``, squeezes out information the other modality
cannot predict: modality identity goes before digit identity (paper Table 1).

Paper settings are the defaults here. Where the paper is silent, our choices (also in
docs/methods.md):
- L_sim is the mean over positive pairs (DAVEnet code), not the sum (Harwath 2016).
- L_IG = (1/N) sum_i [KL_image(i) + KL_audio(i)], KL summed over the 128 dims. With this
  convention the purity transition sits near lambda_ig ~ 1e-2 as in the paper.
- Impostors are drawn uniformly from the other *inputs*' samples in the (global) batch: the
  other samples of the same input are never impostors, since they describe the same item.
- No BatchNorm in either encoder (flag ``batch_norm``).
- Weight decay as the paper prints it: lambda_wd times the sum of Frobenius norms (not
  squared) of conv kernels and weight matrices, biases excluded (flag ``wd_squared``).
- Fbank features standardized per utterance (no dataset statistics needed).
- ``embed`` returns posterior means; ``embed_samples`` draws from the posteriors (the
  paper's purity and SVM evaluations use samples).
- Under DDP, impostors come from the global batch (all ranks), gathered with gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from assoc_lightning.losses import (
    gaussian_kl_standard,
    impostor_indices,
    sampled_margin_ranking_loss,
    weight_norm_penalty,
)
from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.nn.audio_frontend import KaldiFbank
from assoc_lightning.nn.encoders import HsuAudioEncoder, LeidalImageEncoder
from assoc_lightning.nn.gaussian import GaussianHead, reparameterize
from assoc_lightning.utils.dist import gather_with_grad, rank


class IGEmbedding(AssociativeMethod):
    """Gaussian embeddings of speech and images with an information-gain (KL) regularizer.

    Args:
        embed_dim: dimension of the embedding space (128).
        num_samples: embeddings sampled per input in training (16).
        lambda_ig: weight of the KL (information gain) term; the paper's best is 2.15e-2.
        lambda_wd: weight of the explicit weight-norm penalty (1e-6).
        wd_squared: squared Frobenius norm instead of the norm.
        margin: margin of the ranking hinge (1).
        sim_reduction: ``"mean"`` or ``"sum"`` of the ranking loss over pairs.
        exclude_same_input_impostors: never use another sample of the same input as impostor.
        batch_norm: BatchNorm after every encoder layer.
        lr, betas, eps: Adam (paper: 1e-5, (0.95, 0.999), 1e-8).
        lr_decay, lr_decay_every_epochs: multiply the learning rate by ``lr_decay`` every
            that many epochs (paper: 0.9 every 10).
        sample_rate, num_mel_bins, num_frames: audio front-end (16 kHz input, 80 bins, 100 frames).
        image_channels, image_size: image input shape.
    """

    name = "ig_embedding"

    def __init__(
        self,
        embed_dim: int = 128,
        num_samples: int = 16,
        lambda_ig: float = 2.15e-2,
        lambda_wd: float = 1e-6,
        wd_squared: bool = False,
        margin: float = 1.0,
        sim_reduction: str = "mean",
        exclude_same_input_impostors: bool = True,
        batch_norm: bool = False,
        lr: float = 1e-5,
        betas: tuple[float, float] = (0.95, 0.999),
        eps: float = 1e-8,
        lr_decay: float = 0.9,
        lr_decay_every_epochs: int = 10,
        sample_rate: int = 16000,
        num_mel_bins: int = 80,
        num_frames: int = 100,
        image_channels: int = 1,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.frontend = KaldiFbank(
            sample_rate, num_mel_bins, num_frames=num_frames, standardize=True
        )
        self.encoders = nn.ModuleDict(
            {
                "image": LeidalImageEncoder(image_channels, image_size, batch_norm),
                "audio": HsuAudioEncoder(num_mel_bins, num_frames, batch_norm),
            }
        )
        self.heads = nn.ModuleDict({m: GaussianHead(512, embed_dim) for m in ("image", "audio")})

    def posteriors(self, batch: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``(mu, logvar)`` per modality present in the batch."""
        out = {}
        for modality in ("image", "audio"):
            if modality in batch:
                x = batch[modality]
                if modality == "audio":
                    x = self.frontend(x)
                out[modality] = self.heads[modality](self.encoders[modality](x))
        return out

    def embed(self, batch: dict) -> dict[str, torch.Tensor]:
        return {m: mu for m, (mu, _) in self.posteriors(batch).items()}

    def embed_samples(
        self, batch: dict, num_samples: int, seed: int | None = None
    ) -> dict[str, torch.Tensor]:
        seeds = None
        if seed is not None:
            seeds = batch["index"].cpu() * 1_000_003 + seed * 7919 + 1
        out = {}
        for k, (m, (mu, lv)) in enumerate(self.posteriors(batch).items()):
            out[m] = reparameterize(mu, lv, num_samples, None if seeds is None else seeds * 2 + k)
        return out

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        post = self.posteriors(batch)
        (mu_v, lv_v), (mu_a, lv_a) = post["image"], post["audio"]
        n, s = mu_v.size(0), hp.num_samples
        local_v = reparameterize(mu_v, lv_v, s).reshape(n * s, -1)
        local_a = reparameterize(mu_a, lv_a, s).reshape(n * s, -1)
        all_v, all_a = gather_with_grad(local_v), gather_with_grad(local_a)
        offset = rank() * n * s if all_v.size(0) > local_v.size(0) else 0
        imp_v, imp_a = (
            impostor_indices(
                n * s, s, all_v.size(0), offset, hp.exclude_same_input_impostors, self.device
            )
            for _ in range(2)
        )
        # Positives are the local rows; impostors come from the global batch.
        sim = sampled_margin_ranking_loss(
            local_v,
            local_a,
            imp_v,
            imp_a,
            hp.margin,
            hp.sim_reduction,
            image_pool=all_v,
            audio_pool=all_a,
        )
        kl = (gaussian_kl_standard(mu_v, lv_v) + gaussian_kl_standard(mu_a, lv_a)).mean()
        wd = weight_norm_penalty([self.encoders, self.heads], squared=hp.wd_squared)
        loss = sim + hp.lambda_ig * kl + hp.lambda_wd * wd
        return {"loss": loss, "sim": sim, "ig": kl, "wd": wd}

    def eval_losses(self, batch: dict) -> dict[str, torch.Tensor] | None:
        # A lone pair has no impostor. Ranks hold equal-size shards, so all of them skip the
        # same steps and the epoch-end reduction stays in step.
        if self.batch_size_of(batch) * self.trainer.world_size < 2:
            return None
        return self.compute_losses(batch)

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.Adam(self.parameters(), lr=hp.lr, betas=tuple(hp.betas), eps=hp.eps)
        sched = torch.optim.lr_scheduler.StepLR(
            opt, step_size=hp.lr_decay_every_epochs, gamma=hp.lr_decay
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
