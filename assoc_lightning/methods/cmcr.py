"""C-MCR: Connecting Multi-modal Contrastive Representations (Wang et al., NeurIPS 2023).

Two frozen contrastive spaces that share a modality (text): an image<->text space (CLIP) and
an audio<->text space (CLAP). Two projectors, f_image on the CLIP side and f_audio on the CLAP
side, map both into one space where audio and images can be compared, without a single
audio-image pair:

1. Semantic consistency (offline, Eq. 2): each caption t is embedded in both spaces (t^I, t^A)
   and reads the image memory with t^I and the audio memory with t^A (softmax over all items,
   tau_1 = 0.01): v^I and a^A are "the image / the sound this caption describes".
2. Semantic completion (online, Eq. 3): x~ = normalize(x + N(0, sigma^2 I)), fresh each step,
   independently for t^I, v^I, t^A, a^A (sigma^2 = 0.004).
3. Inter-MCR alignment: L_ttc = InfoNCE(f_image(t^I), f_audio(t^A)), L_avc = InfoNCE(
   f_image(v^I), f_audio(a^A)), symmetric, tau_2 = tau_3 = 0.01, negatives from the global batch.
4. Intra-MCR alignment (Eq. 9): L_intra = (||f_image(t^I) - f_image(v^I)|| + ||f_audio(t^A) -
   f_audio(a^A)||) / 2, mean over the batch. Total: L_ttc + L_avc + lambda * L_intra.

Everything the frozen towers produce is computed once and cached (``features/cache.py``):
caption embeddings in both spaces, the memories, and the memory reads. Training then runs at projector
speed from the caches: a batch is a set of caption indices.

Where the paper and its (inference-only) code disagree or are silent, our choices:
- Projector without the final ReLU (the code; the paper's Table 6 has one) (``final_relu``).
- L_intra uses the printed L2 norm, not its square (``intra_distance``); each of the two
  terms is a batch mean, their average is weighted by lambda; a switched-off term counts 0.
- AdamW weight decay 0.01, no warm-up, cosine decay to 0 over the run (``weight_decay``,
  ``warmup_steps``). The temperatures are fixed.
- Memory reads are stored unnormalized (a convex combination of unit vectors); the completion
  step re-normalizes (``renormalize``); without it they enter the projector as they are.
- Text and memory rows go through a projector in one call, so BatchNorm sees (and its
  running statistics track) both kinds of input.
- ``embed``: frozen tower -> projector -> L2 normalization, no noise.
Table 5 ablation rows: A ``intra_audio: false``, B ``intra_image: false``, C both, D
``use_ttc: false``, E ``use_avc: false``, F both, G ``renormalize: false``, H also
``noise_variance: 0``, I ``consistency: argmax``, J ``consistency: random``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from assoc_lightning.data.protocols import CaptionMemoryData, SpaceTrainingData, require
from assoc_lightning.errors import ConfigError
from assoc_lightning.features.cache import build_embedding_cache
from assoc_lightning.losses.alignment import paired_distance
from assoc_lightning.losses.contrastive import info_nce
from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.nn.memory_read import MODES, memory_read
from assoc_lightning.nn.projector import MLPProjector

SIDES = ("image", "audio")


class CMCR(AssociativeMethod):
    """C-MCR projectors between a frozen text<->image and a frozen text<->audio space.

    Args:
        image_space: the frozen text<->image tower (``CLIPTower``; the offline default uses a
            locally trained ``ToyContrastiveSpace``).
        audio_space: the frozen text<->audio tower (``CLAPTower``, or a toy space).
        hidden_dim: projector hidden width (default 2x the input: 1024 for 512-d towers).
        out_dim: shared output dimension (default: the image space's dimension).
        final_relu: ReLU after the projector's last BatchNorm (paper table; not in the code).
        consistency: memory read: ``softmax`` (Eq. 2), ``argmax``, ``random`` or ``none``.
        tau_memory: softmax temperature of the memory read (tau_1).
        noise_variance: sigma^2 of the semantic-completion noise (0 switches noise off).
        renormalize: re-normalize after adding the noise.
        temperature_ttc, temperature_avc: InfoNCE temperatures (tau_2, tau_3).
        use_ttc, use_avc: the two inter-MCR terms.
        intra_image, intra_audio: the intra-CLIP and intra-CLAP pull terms.
        lambda_intra: weight of L_intra (0.1 audio-visual).
        intra_distance: ``l2`` (printed Eq. 9) or ``sq_l2``.
        lr, weight_decay, warmup_steps: AdamW with linear warm-up and cosine decay to 0.
        embed_batch_size: batch size when filling the caches with the frozen towers.
        cache_dtype: storage type of the caches (``float16`` halves 10 GB of CLIP/CLAP caches).
        query_chunk, memory_chunk: block sizes of the memory read (memory = their product).
    """

    name = "cmcr"

    def __init__(
        self,
        image_space: nn.Module,
        audio_space: nn.Module,
        hidden_dim: int | None = None,
        out_dim: int | None = None,
        final_relu: bool = False,
        consistency: str = "softmax",
        tau_memory: float = 0.01,
        noise_variance: float = 0.004,
        renormalize: bool = True,
        temperature_ttc: float = 0.01,
        temperature_avc: float = 0.01,
        use_ttc: bool = True,
        use_avc: bool = True,
        intra_image: bool = True,
        intra_audio: bool = True,
        lambda_intra: float = 0.1,
        intra_distance: str = "l2",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        warmup_steps: int = 0,
        embed_batch_size: int = 256,
        cache_dtype: str = "float16",
        query_chunk: int = 4096,
        memory_chunk: int = 65536,
    ) -> None:
        super().__init__()
        if consistency not in MODES:
            raise ConfigError(f"consistency must be one of {MODES}, got {consistency!r}")
        self.save_hyperparameters(ignore=["image_space", "audio_space"])
        # A plain dict: the frozen towers are neither trained nor saved in checkpoints (they
        # load from their own files), and Lightning does not count them as parameters.
        self.spaces = {"image": image_space, "audio": audio_space}
        out_dim = out_dim or image_space.dim
        self.projectors = nn.ModuleDict(
            {
                side: MLPProjector(space.dim, hidden_dim or 2 * space.dim, out_dim, final_relu)
                for side, space in self.spaces.items()
            }
        )
        self.tables: dict[str, np.ndarray | torch.Tensor] = {}

    # ------------------------------------------------------------------------ caches
    def space(self, side: str) -> nn.Module:
        """The frozen tower of ``side``, on this module's device."""
        tower = self.spaces[side]
        return tower.to(self.device)

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        require(dm, CaptionMemoryData, "CMCR")
        if any(hasattr(tower, "prepare") for tower in self.spaces.values()):
            require(dm, SpaceTrainingData, "CMCR with locally trained towers")
        # Rank 0 trains/embeds first; the others then find complete caches. The barrier is
        # reached by every rank.
        if self.global_rank == 0:
            self._prepare(dm)
        self.trainer.strategy.barrier()
        if self.global_rank != 0:
            self._prepare(dm)

    def _prepare(self, dm) -> None:
        cache = Path(dm.cache_dir)
        for side, tower in self.spaces.items():
            if hasattr(tower, "prepare"):  # locally trained towers (the offline default)
                tower.prepare(*dm.space_training_data(side), cache / "towers", dm.fingerprint)
        hp = self.hparams
        for side in SIDES:
            tower = self.space(side)
            root = cache / f"{side}_{tower.fingerprint()}_{dm.fingerprint}"
            fp = f"{tower.fingerprint()}:{dm.fingerprint}"
            texts = self._cache(
                root / "captions", lambda b, t=tower: t.encode("text", b), dm.captions, fp,
                tower.dim,
            )  # fmt: skip
            memory = self._cache(
                root / "memory", lambda b, t=tower, s=side: t.encode(s, b[s]), dm.memory(side),
                fp, tower.dim,
            )  # fmt: skip
            read = f"{hp.consistency}:{hp.tau_memory}"
            reads = self._cache(
                root / f"read_{hp.consistency}_tau{hp.tau_memory:g}",
                lambda idx, t=texts, m=memory: memory_read(
                    t[np.sort(np.asarray(idx))], m, hp.tau_memory, hp.consistency,
                    hp.query_chunk, hp.memory_chunk, seed=int(idx[0]), device=self.device,
                ),
                range(len(dm.captions)), f"{fp}:{read}", tower.dim, batch_size=hp.query_chunk,
            )  # fmt: skip
            self.tables[f"text_{side}"], self.tables[f"read_{side}"] = texts, reads

    def _cache(self, directory, fn, source, fingerprint, dim, batch_size=None) -> np.ndarray:
        """A resumable memory-mapped cache of ``fn`` over ``source`` (``features/cache.py``)."""
        hp = self.hparams
        cache = build_embedding_cache(
            directory, fn, source, len(source), dim, fingerprint=fingerprint,
            dtype=hp.cache_dtype, batch_size=batch_size or hp.embed_batch_size,
        )  # fmt: skip
        return cache.load()

    def lookup(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The cached rows of these caption indices, as float32 on this device."""
        idx = index.cpu().numpy()
        return {
            k: torch.as_tensor(np.asarray(v[idx]), dtype=torch.float32).to(self.device)
            for k, v in self.tables.items()
        }

    # ------------------------------------------------------------------------ training
    def complete(self, x: torch.Tensor) -> torch.Tensor:
        """Semantic completion: Gaussian noise, then re-normalization (training only)."""
        hp = self.hparams
        if self.training and hp.noise_variance > 0:
            x = x + torch.randn_like(x) * math.sqrt(hp.noise_variance)
        return F.normalize(x, dim=-1) if hp.renormalize else x

    def project(self, side: str, *rows: torch.Tensor) -> list[torch.Tensor]:
        """Several row blocks through one projector in one call (shared BN statistics)."""
        out = F.normalize(self.projectors[side](torch.cat(rows)), dim=-1)
        return list(out.split([r.size(0) for r in rows]))

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        hp = self.hparams
        rows = {k: self.complete(v) for k, v in self.lookup(batch["index"]).items()}
        t_img, v_img = self.project("image", rows["text_image"], rows["read_image"])
        t_aud, a_aud = self.project("audio", rows["text_audio"], rows["read_audio"])
        zero = t_img.new_zeros(())
        ttc = info_nce(t_img, t_aud, hp.temperature_ttc) if hp.use_ttc else zero
        avc = info_nce(v_img, a_aud, hp.temperature_avc) if hp.use_avc else zero
        intra_i = paired_distance(t_img, v_img, hp.intra_distance) if hp.intra_image else zero
        intra_a = paired_distance(t_aud, a_aud, hp.intra_distance) if hp.intra_audio else zero
        intra = 0.5 * (intra_i + intra_a)
        loss = ttc + avc + hp.lambda_intra * intra
        if not loss.requires_grad:  # every term switched off (a degenerate ablation)
            loss = loss + 0.0 * sum(p.sum() for p in self.projectors.parameters())
        return {"loss": loss, "ttc": ttc, "avc": avc, "intra": intra}

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(
            self.projectors.parameters(), lr=hp.lr, weight_decay=hp.weight_decay
        )
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warm = hp.warmup_steps

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(step - warm, total) / max(total - warm, 1)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------------ embedding
    def embed(self, batch: dict) -> dict[str, torch.Tensor]:
        out = {}
        for side in SIDES:
            if side in batch:
                feats = self.space(side).encode(side, batch[side]).float()
                out[side] = F.normalize(self.projectors[side](feats), dim=-1)
        return out
