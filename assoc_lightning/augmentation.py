"""Training-time audio augmentation for every method: a callback that augments the raw speech
waveforms of each training batch on the device (``nn/augment.py: WaveAugment``).

    assoc fit --config experiments/ig_embedding.yaml --augment null      # switch it off
    assoc fit --config ... --augment.init_args.augment.init_args.noise_p 0   # one op off

The CLI adds it from the config's ``augment`` entry (``assoc fit --print_config`` shows every
setting). Validation, test and evaluation batches are never augmented.
"""

from __future__ import annotations

import os

import torch
from jsonargparse import lazy_instance
from lightning.pytorch import Callback

from assoc_lightning.nn.augment import WaveAugment
from assoc_lightning.utils.dist import rank


class AudioAugmentation(Callback):
    """Augments ``batch["audio"]`` (raw waveforms ``[B, T]``, also inside the nested batches of
    unpaired streams) before each training step, for any method.

    Seeded: the draws of step s on rank r come from a generator seeded with ``(seed, s, r)``,
    so a run is repeatable, resumes with the same draws, and switching augmentation on or off
    leaves every other random draw of the run as it was.

    Args:
        augment: the waveform augmentation and its settings (each op's probability and range).
        seed: the generator's base seed (``None``: the run's seed, ``seed_everything``).
    """

    def __init__(
        self,
        augment: WaveAugment = lazy_instance(WaveAugment),  # noqa: B008
        seed: int | None = None,
    ) -> None:
        self.augment = augment
        self.seed = seed
        self._said = False

    def generator(self, device: torch.device, step: int) -> torch.Generator:
        base = self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))
        g = torch.Generator(device=device)
        g.manual_seed((base * 1_000_003 + step * 1_009 + rank()) % (2**63))
        return g

    def apply(self, batch, g: torch.Generator) -> int:
        """Augment every waveform ``audio`` entry of ``batch`` in place; how many were."""
        if not isinstance(batch, dict):
            return 0
        count = 0
        for key, value in batch.items():
            if isinstance(value, dict):
                count += self.apply(value, g)
            elif key == "audio" and torch.is_tensor(value) and value.is_floating_point():
                if value.dim() == 2:
                    batch[key] = self.augment(value, g)
                    count += 1
                elif not self._said:
                    self._said = True
                    from lightning.pytorch.utilities import rank_zero_warn

                    rank_zero_warn(
                        f"AudioAugmentation: batch['audio'] has shape {tuple(value.shape)}, "
                        "not raw waveforms [B, T]; left unaugmented"
                    )
        return count

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        device = pl_module.device
        self.apply(batch, self.generator(device, trainer.global_step))
