"""BMA-Memory: weakly paired sound-image learning through a bimodal associative memory
(Lee, Kim, Ro, CVPR 2022).

An image encoder (ResNet-18) and a sound encoder ("ResNet-10" on a one-channel log-mel
spectrogram) give 512-d features f^v, f^s. Two learnable memories M_v, M_s are addressed with
key-value switching (``nn/memory.py``): an image feature addresses M_v and reads M_s, giving
f^{s,mem}; a sound feature addresses M_s and reads M_v, giving f^{v,mem}. The representations
are h^v = [f^v ; f^{s,mem}] and h^s = [f^{v,mem} ; f^s] (1024-d, image part first), projected
by SimCLR-style heads to z (128-d).

- Paired clips: L_pair, NT-Xent over {z^v_i, z^s_i} with the positives of a clip given by a
  clip-id mask (Eq. 4).
- Unpaired sounds (Eq. 5): two SpecAugment views, each read cyclically (sound -> M_s key ->
  M_v value -> as a pseudo image query -> M_v key -> M_s value), h'^s = [f'^{v,mem} ;
  f'^{s,mem}] (memory read-outs only), NT-Xent between the two views. Gradients reach M_v as
  value and key, which is how sound-only data improve h^v. Unpaired images: the mirror image
  with SimCLR augmentations.
- L = L_pair + unpaired_weight * (L_unpair^s + L_unpair^v), Adam 2e-4.

``embed`` returns h (kNN, linear probe); ``retrieval_embed`` returns z, as the paper's Table 3.

Where the paper is silent, our choices (also in docs/methods.md), each an argument:
1. "ResNet-10" = BasicBlock, one block per stage (``audio_layers``); random init for both
   encoders (``image_weights``: a local ResNet-18 state dict to start from).
2. Heads: Linear(1024, 1024) - ReLU - Linear(1024, 128); one head per modality
   (``shared_head``); the unpaired path of a modality uses that modality's head.
3. h^s = [f^{v,mem} ; f^s] (the order of the paper's Sec. 4.3; ``sound_order="own_first"``
   for [f^s ; f^{v,mem}]).
4. Positives: "same clip" = the same 2-s sample, the batch's ``clip_id`` (else ``pair_id``);
   ``positives="recording"`` makes every sample of one source recording a positive.
5. SpecAugment: 2 frequency masks <= 20 bins, 2 time masks <= 25 frames, no warping.
6. No weight decay and a constant learning rate (``weight_decay``, ``lr_schedule``).
7. Unpaired samples per step: one unpaired batch of the datamodule's batch size per stream.
8. Log-mel: 22.05 kHz, 20-ms window zero-padded to 1024 points (at 512, 6 of 150 mel filters
   are empty), 10-ms hop, 150 mels, log(x + 1e-6), global standardization
   (``nn/audio_frontend.py``); [B, 1, mels, frames].
9. The frame paired with each 2-s sound is the datamodule's choice (ACIVW: the middle one).
10. Linear probe: the evaluation suite's (docs/evaluation.md).
11. Memories N(0, 1) (``memory_init_std``).
12. Raw memory rows are read (``normalize_read`` reads L2-normalized ones).
No augmentation of paired data (``paired_augment`` applies the unpaired augmentations).
Images are scaled to [0, 1] and resized to ``image_size`` without mean/std normalization.
"""

from __future__ import annotations

import torch
from torch import nn

from assoc_lightning.losses import multi_positive_nt_xent
from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.nn.audio_frontend import LogMelSpectrogram
from assoc_lightning.nn.augment import SimCLRAugment, SpecAugment
from assoc_lightning.nn.encoders import prepare_images, resnet_trunk
from assoc_lightning.nn.memory import BimodalMemory, addressing_stats

MODALITIES = ("image", "audio")


def projection_head(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """SimCLR's two-layer projection: Linear - ReLU - Linear."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
    )


class BMAMemory(AssociativeMethod):
    """Bimodal associative memory with key-value switching; paired + unpaired learning.

    Args:
        num_slots: memory slots n per modality (1000).
        memory_temperature: addressing temperature tau_m (0.1).
        loss_temperature: NT-Xent temperature tau_l (0.1).
        memory_init_std: memories start as N(0, std^2).
        normalize_read: read L2-normalized memory rows (the paper's pattern reads raw rows).
        proj_dim, proj_hidden: projection head output (128) and hidden (1024: h's width, as
            SimCLR) widths.
        shared_head: one head for both modalities instead of one each.
        sound_order: ``"image_first"`` (h^s = [f^{v,mem} ; f^s]) or ``"own_first"``.
        positives: ``"clip"`` (same 2-s sample) or ``"recording"`` (same source recording).
        unpaired: the unpaired streams trained on: ``["audio"]`` (the paper's image results),
            ``["image"]`` (its sound results), both, or ``[]`` (paired only). A stream the
            datamodule does not give is skipped.
        unpaired_weight: weight of the unpaired losses (1).
        paired_augment: also augment the paired inputs.
        audio_layers: blocks per stage of the sound ResNet ((1, 1, 1, 1): "ResNet-10").
        image_layers: blocks per stage of the image ResNet ((2, 2, 2, 2): ResNet-18).
        image_channels: image input channels (3; 1 for grayscale digits).
        image_size: images are resized to this side (224).
        small_input: CIFAR-style 3x3 stem without max-pool for the image ResNet (tiny images).
        image_weights: a local torchvision ResNet-18 state dict to start from (none: random).
        width: first-stage channels of both ResNets (64: features, memory slots and h of
            512 / 512 / 1024 as the paper; smaller widths keep CPU runs short).
        sample_rate, n_fft, win_ms, hop_ms, n_mels, spec_norm: the log-mel front-end.
        freq_masks, freq_width, time_masks, time_width: SpecAugment for unpaired sounds.
        crop_scale, flip_p, jitter, jitter_p, grayscale_p, blur_p: SimCLR image augmentation.
        lr, weight_decay: Adam (2e-4, 0).
        memory_lr: the memories' learning rate (``None``: ``lr``). Adam moves a parameter by
            about ``lr`` per step whatever its scale, so N(0, 1) slots need thousands of steps
            at 2e-4 to change; short schedules (the embedded default) raise it.
        lr_schedule: ``"constant"`` or ``"cosine"`` (over the trainer's estimated steps).
    """

    name = "bma_memory"

    def __init__(
        self,
        num_slots: int = 1000,
        memory_temperature: float = 0.1,
        loss_temperature: float = 0.1,
        memory_init_std: float = 1.0,
        normalize_read: bool = False,
        proj_dim: int = 128,
        proj_hidden: int = 1024,
        shared_head: bool = False,
        sound_order: str = "image_first",
        positives: str = "clip",
        unpaired: list[str] | None = None,
        unpaired_weight: float = 1.0,
        paired_augment: bool = False,
        audio_layers: tuple[int, int, int, int] = (1, 1, 1, 1),
        image_layers: tuple[int, int, int, int] = (2, 2, 2, 2),
        image_channels: int = 3,
        image_size: int = 224,
        small_input: bool = False,
        image_weights: str | None = None,
        width: int = 64,
        sample_rate: int = 22050,
        n_fft: int = 1024,
        win_ms: float = 20.0,
        hop_ms: float = 10.0,
        n_mels: int = 150,
        spec_norm: str = "global",
        freq_masks: int = 2,
        freq_width: int = 20,
        time_masks: int = 2,
        time_width: int = 25,
        crop_scale: tuple[float, float] = (0.08, 1.0),
        flip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.8, 0.8, 0.8, 0.2),
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        blur_p: float = 0.5,
        lr: float = 2e-4,
        memory_lr: float | None = None,
        weight_decay: float = 0.0,
        lr_schedule: str = "constant",
    ) -> None:
        super().__init__()
        unpaired = ["audio"] if unpaired is None else list(unpaired)
        for value, allowed, what in (
            (sound_order, ("image_first", "own_first"), "sound_order"),
            (positives, ("clip", "recording"), "positives"),
            (lr_schedule, ("constant", "cosine"), "lr_schedule"),
        ):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}")
        if not set(unpaired) <= set(MODALITIES):
            raise ValueError(f"unpaired lists modalities from {MODALITIES}, got {unpaired}")
        self.save_hyperparameters()
        self.unpaired = unpaired
        self.frontend = LogMelSpectrogram(
            sample_rate, n_fft, win_ms, hop_ms, n_mels, norm=spec_norm
        )
        self.encoders = nn.ModuleDict(
            {
                "image": resnet_trunk(
                    image_layers, image_channels, small_input, image_weights, width
                ),
                "audio": resnet_trunk(audio_layers, 1, width=width),
            }
        )
        self.memory = BimodalMemory(
            num_slots, 8 * width, memory_temperature, memory_init_std, normalize_read, MODALITIES
        )
        dim = 16 * width  # h = [image part ; sound part]
        head = projection_head(dim, proj_hidden, proj_dim)
        self.heads = nn.ModuleDict(
            {
                "image": head,
                "audio": head if shared_head else projection_head(dim, proj_hidden, proj_dim),
            }
        )
        self.spec_augment = SpecAugment(freq_masks, freq_width, time_masks, time_width)
        self.image_augment = SimCLRAugment(
            image_size, crop_scale, flip_p, jitter, jitter_p, grayscale_p, blur_p,
            channels=image_channels,
        )  # fmt: skip

    # ------------------------------------------------------------------ inputs
    def images(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 or float images -> float [0, 1], ``image_channels`` channels, ``image_size``."""
        return prepare_images(x, self.hparams.image_channels, self.hparams.image_size)

    def features(self, modality: str, x: torch.Tensor, augment: bool = False) -> torch.Tensor:
        """Encoder features f ``[N, 512]`` of raw inputs (waveforms or images)."""
        if modality == "audio":
            spec = self.frontend(x)
            return self.encoders["audio"](self.spec_augment(spec) if augment else spec)
        img = self.images(x)
        return self.encoders["image"](self.image_augment(img) if augment else img)

    # ------------------------------------------------------------------ representations
    def represent(self, modality: str, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (``[N, 1024]``) of a paired-path feature, and its addressing weights."""
        read, weights = self.memory.recall(f, modality)
        if modality == "image":
            return torch.cat([f, read], dim=1), weights
        if self.hparams.sound_order == "own_first":
            return torch.cat([f, read], dim=1), weights
        return torch.cat([read, f], dim=1), weights

    def cyclic(self, modality: str, f: torch.Tensor) -> torch.Tensor:
        """h' of an unpaired feature: read the other memory, use the read-out as a pseudo
        query of that modality, read back; ``[image read ; sound read]``."""
        other, _ = self.memory.recall(f, modality)
        back, _ = self.memory.recall(other, self.memory.other(modality))
        image_part, sound_part = (back, other) if modality == "image" else (other, back)
        return torch.cat([image_part, sound_part], dim=1)

    def project(self, modality: str, h: torch.Tensor) -> torch.Tensor:
        return self.heads[modality](h)

    def embed(self, batch: dict) -> dict[str, torch.Tensor]:
        return {
            m: self.represent(m, self.features(m, batch[m]))[0] for m in MODALITIES if m in batch
        }

    def retrieval_embed(self, batch: dict) -> dict[str, torch.Tensor]:
        return {m: self.project(m, h) for m, h in self.embed(batch).items()}

    # ------------------------------------------------------------------ losses
    def clip_ids(self, pairs: dict) -> torch.Tensor:
        """The positive-mask ids of a pair batch (see ``positives``)."""
        if self.hparams.positives == "recording":
            if "recording" not in pairs:
                raise ValueError(
                    "positives='recording' needs batches with a 'recording' id (e.g. ACIVW)"
                )
            return pairs["recording"]
        return pairs.get("clip_id", pairs["pair_id"])

    def pair_loss(self, pairs: dict) -> dict[str, torch.Tensor]:
        aug = self.hparams.paired_augment and self.training
        out, zs = {}, []
        for m in MODALITIES:
            h, weights = self.represent(m, self.features(m, pairs[m], augment=aug))
            zs.append(self.project(m, h))
            out.update({f"{k}_{m}": v for k, v in addressing_stats(weights).items()})
        ids = self.clip_ids(pairs)
        out["pair"] = multi_positive_nt_xent(
            torch.cat(zs), torch.cat([ids, ids]), self.hparams.loss_temperature
        )
        return out

    def unpaired_loss(self, modality: str, items: dict) -> torch.Tensor:
        """NT-Xent between two augmented views of unpaired ``modality`` items, each read
        cyclically through both memories."""
        x = items[modality]
        views = [
            self.project(modality, self.cyclic(modality, self.features(modality, x, True)))
            for _ in range(2)
        ]
        ids = items["index"]
        return multi_positive_nt_xent(
            torch.cat(views), torch.cat([ids, ids]), self.hparams.loss_temperature
        )

    def compute_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        pairs = batch.get("paired", batch)
        out = self.pair_loss(pairs)
        loss = out["pair"]
        for m in self.unpaired:
            items = batch.get(f"unpaired_{m}")
            if items is not None and self.training:
                out[f"unpair_{m}"] = term = self.unpaired_loss(m, items)
                loss = loss + self.hparams.unpaired_weight * term
        out["loss"] = loss
        return out

    @staticmethod
    def batch_size_of(batch: dict) -> int:
        return int(batch.get("paired", batch)["index"].shape[0])

    def configure_optimizers(self):
        hp = self.hparams
        memory = list(self.memory.parameters())
        others = [p for n, p in self.named_parameters() if not n.startswith("memory.")]
        groups = [{"params": others}, {"params": memory, "lr": hp.memory_lr or hp.lr}]
        opt = torch.optim.Adam(groups, lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.lr_schedule == "constant":
            return opt
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
