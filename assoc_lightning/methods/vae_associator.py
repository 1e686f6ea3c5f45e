"""Cross-modal VAE with distributed latent spaces and variational associators (Jo et al. 2019).

Every modality has its own VAE and latent space (its own size: 64 by default, e.g. 256 for
GTSRB in "ours-flex"). Variational associators A_ji map z_i to q(z_j | x_i), one per
direction. One ``fit`` runs both phases:

1. Epochs ``[0, phase1_epochs)``: each VAE on its own unpaired data, all of it (Eq. 6).
2. The remaining epochs: the VAEs are frozen and the associators learn from pairs (Eq. 7).

Translating i -> j decodes D_j(A_ji(E_i(x_i))); modalities without a direct associator are
reached by chaining associators along the shortest path (the paper's cascade, Table 4). A
checkpoint given as ``init_checkpoint`` provides finished parts, which stay frozen: a
``phase1.ckpt`` (written when phase 1 ends) starts a run at phase 2, and a finished run's
checkpoint lets a new modality be added by training only its VAE and one associator pair.

Not specified by the paper (its architecture appendix is unavailable); our choices:
- Architectures per input kind (``image28``, ``sign52``, ``mfcc``): see ``nn/vae.py``.
- Deterministic decoders: the squared error uses the decoder mean (the paper samples x-hat).
- Squared error summed over elements and the KL term over latent dims per sample, batch
  averaged (``losses/vae.py``). With that, lambda is the noise variance of a Gaussian decoder,
  so it depends on the data's scale: one lambda per modality (keyed by the decoded one in
  Eq. 7), 1 for standardized MFCC and 0.01 (sigma = 0.1) for images in [0, 1] by default.
  lambda 1 on images leaves their VAEs nearly unused (embedded digits, 300 steps: the
  classifier recognises 50% of the reconstructions, against 94% at 0.01).
- Adam (lr 1e-3, no weight decay) for both phases. Phase 1 steps one optimizer over all
  trainable VAEs on the sum of their losses (the VAEs share no parameter and Adam is
  element-wise, so this equals training them separately); phase 2 steps a second optimizer
  over the trainable associators only. Frozen parts get ``requires_grad=False``, eval mode,
  and are never in the optimizer being stepped, so neither Adam state nor weight decay can
  move them.
- Phase 2 encodes with a posterior sample z_i ~ q(z_i | x_i) and decodes a sample of the
  associator's output (the paper); ``embed`` and ``translate`` use means throughout.
- ``associators`` lists the modality pairs connected (each both ways); ``None`` connects every
  pair. Chains follow the shortest path in that graph (ties: the order listed).
- Audio is the 40x101 standardized MFCC of ``nn/audio_frontend.MFCCFrontend``, computed on
  the device; the audio decoder generates in that space.
- Unpaired phase-1 data come from the datamodule's ``unpaired_train`` streams (every training
  item of each modality); without them phase 1 falls back to the pairs' items, with a warning.
- Under DDP use ``strategy: ddp_find_unused_parameters_true``: each phase trains a different
  part of the model.
"""

from __future__ import annotations

from collections import deque
from itertools import combinations
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from assoc_lightning.errors import AssocError, ConfigError
from assoc_lightning.losses.vae import cross_modal_loss, intra_modal_loss
from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.nn.audio_frontend import MFCCFrontend, fix_num_frames
from assoc_lightning.nn.gaussian import reparameterize
from assoc_lightning.nn.vae import KINDS, Associator, vae_for

DEFAULT_MODALITIES = {"image": "image28", "audio": "mfcc"}
# KL weight per input kind: the variance of a Gaussian decoder's noise in Eq. 6/7's terms
DEFAULT_LAMBDA = {"image28": 0.01, "sign52": 0.01, "mfcc": 1.0}


class InitCheckpointError(AssocError, ValueError):
    """An ``init_checkpoint`` that cannot provide finished parts."""


def _sample(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return reparameterize(mu, logvar, 1)[:, 0]


class VAEAssociator(AssociativeMethod):
    """Per-modality VAEs (phase 1) joined by variational associators (phase 2).

    Args:
        modalities: modality name -> input kind (``image28``, ``sign52``, ``mfcc``); the names
            are the datamodule's. ``None``: ``{"image": "image28", "audio": "mfcc"}``.
        latent_dim: size of every latent space not in ``latent_dims`` (64, the paper's).
        latent_dims: per-modality latent sizes (e.g. ``{"image": 256}`` for ours-flex).
        associators: modality pairs joined by an associator each way; ``None``: every pair.
        hidden: width of the VAEs' and associators' fully connected layers (512).
        lambda_int: weight of the KL term in phase 1 (Eq. 6): one value, or one per modality;
            ``None`` or an unlisted modality: its input kind's ``DEFAULT_LAMBDA``.
        lambda_crs: weight of the KL term in phase 2 (Eq. 7), keyed by the target (decoded)
            modality; same defaults.
        phase1_epochs: epochs of phase 1; phase 2 runs for the rest of ``trainer.max_epochs``.
            Skipped when ``init_checkpoint`` provides every VAE.
        init_checkpoint: a ``phase1.ckpt`` or a finished run's checkpoint of this method: every
            VAE and associator it holds is loaded and stays frozen; only the others train.
        lr, weight_decay: Adam, both phases.
        sample_rate: audio sampling rate for the MFCC front-end.
    """

    name = "vae_associator"

    def __init__(
        self,
        modalities: dict[str, str] | None = None,
        latent_dim: int = 64,
        latent_dims: dict[str, int] | None = None,
        associators: list[tuple[str, str]] | None = None,
        hidden: int = 512,
        lambda_int: float | dict[str, float] | None = None,
        lambda_crs: float | dict[str, float] | None = None,
        phase1_epochs: int = 50,
        init_checkpoint: str | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.kinds = dict(modalities or DEFAULT_MODALITIES)
        bad = {m: k for m, k in self.kinds.items() if k not in KINDS}
        if bad:
            raise ConfigError(f"unknown input kinds {bad}; choose from {sorted(KINDS)}")
        unknown = set(latent_dims or {}) - set(self.kinds)
        if unknown:
            raise ConfigError(f"latent_dims names {sorted(unknown)}, not in {list(self.kinds)}")
        self.dims = {m: int((latent_dims or {}).get(m, latent_dim)) for m in self.kinds}
        self.lambdas = {
            name: self._per_modality(name, value)
            for name, value in (("lambda_int", lambda_int), ("lambda_crs", lambda_crs))
        }
        self.vaes = nn.ModuleDict(
            {m: vae_for(k, self.dims[m], hidden) for m, k in self.kinds.items()}
        )
        pairs = list(combinations(self.kinds, 2)) if associators is None else associators
        self.directions: list[tuple[str, str]] = []
        for a, b in (tuple(p) for p in pairs):
            if a == b or a not in self.kinds or b not in self.kinds:
                raise ConfigError(f"associator pair ({a}, {b}) must join two of {list(self.kinds)}")
            for d in ((a, b), (b, a)):
                if d not in self.directions:
                    self.directions.append(d)
        self.associators = nn.ModuleDict(
            {
                self.key(a, b): Associator(self.dims[a], self.dims[b], hidden)
                for a, b in self.directions
            }
        )
        self.frontend = MFCCFrontend(sample_rate) if "mfcc" in self.kinds.values() else None
        self.loaded: set[str] = set()  # module names provided by init_checkpoint (frozen)
        self._opt_index: dict[int, int] = {}
        self._warned_no_unpaired = False

    def _per_modality(self, name: str, value: float | dict[str, float] | None) -> dict[str, float]:
        if value is not None and not isinstance(value, dict):
            return dict.fromkeys(self.kinds, float(value))
        unknown = set(value or {}) - set(self.kinds)
        if unknown:
            raise ConfigError(f"{name} names {sorted(unknown)}, not in {list(self.kinds)}")
        return {m: float((value or {}).get(m, DEFAULT_LAMBDA[k])) for m, k in self.kinds.items()}

    @staticmethod
    def key(source: str, target: str) -> str:
        """Name of the associator A_{target, source} (``source2target``)."""
        return f"{source}2{target}"

    # ------------------------------------------------------------------ model space and contract
    def features(self, modality: str, x: torch.Tensor) -> torch.Tensor:
        """Raw batch data of ``modality`` -> the VAE's input/output space."""
        if self.kinds[modality] != "mfcc":
            return x
        feats = self.frontend(x)  # [B, 40, T]
        frames = KINDS["mfcc"][0][2]
        return fix_num_frames(feats.transpose(1, 2), frames).transpose(1, 2).unsqueeze(1)

    def output_space(self, batch: dict) -> dict[str, torch.Tensor]:
        return {m: self.features(m, batch[m]) for m in self.kinds if m in batch}

    def embed(self, batch: dict) -> dict[str, torch.Tensor]:
        """Each present modality's posterior mean in its own latent space."""
        return {m: self.vaes[m].encode(x)[0] for m, x in self.output_space(batch).items()}

    def route(self, source: str, target: str) -> list[tuple[str, str]]:
        """The associator directions from ``source`` to ``target`` (shortest chain)."""
        previous: dict[str, str | None] = {source: None}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            for a, b in self.directions:
                if a == node and b not in previous:
                    previous[b] = a
                    queue.append(b)
        if target not in previous:
            raise ConfigError(f"no chain of associators leads from {source!r} to {target!r}")
        path, node = [], target
        while previous[node] is not None:
            path.append((previous[node], node))
            node = previous[node]
        return path[::-1]

    def translate(self, batch: dict, source: str, target: str) -> torch.Tensor:
        """D_target(A ... A(mu_source)): means all along; ``source == target`` reconstructs."""
        z, _ = self.vaes[source].encode(self.features(source, batch[source]))
        for a, b in self.route(source, target):
            z, _ = self.associators[self.key(a, b)](z)
        return self.vaes[target].decode(z)

    # ------------------------------------------------------------------------------ losses
    def trainable_vaes(self) -> list[str]:
        return [m for m in self.kinds if f"vaes.{m}" not in self.loaded]

    def trainable_directions(self) -> list[tuple[str, str]]:
        return [d for d in self.directions if f"associators.{self.key(*d)}" not in self.loaded]

    def intra_losses(self, inputs: dict[str, torch.Tensor], modalities) -> dict[str, torch.Tensor]:
        """Eq. 6 for each of ``modalities`` on raw ``inputs``; ``loss`` is their sum."""
        out: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=self.device)
        for m in modalities:
            x = self.features(m, inputs[m])
            mu, logvar = self.vaes[m].encode(x)
            x_hat = self.vaes[m].decode(_sample(mu, logvar))
            loss, se, kl = intra_modal_loss(x, x_hat, mu, logvar, self.lambdas["lambda_int"][m])
            out.update({f"int_{m}": loss, f"se_{m}": se, f"kl_{m}": kl})
            total = total + loss
        return {"loss": total, **out}

    def cross_losses(self, pairs: dict, directions) -> dict[str, torch.Tensor]:
        """Eq. 7 for each (source, target) of ``directions`` on a pair batch (frozen VAEs)."""
        needed = {m for d in directions for m in d}
        x = {m: self.features(m, pairs[m]) for m in needed}
        with torch.no_grad():
            z = {m: _sample(*self.vaes[m].encode(x[m])) for m in needed}
        out: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=self.device)
        for a, b in directions:
            mu, logvar = self.associators[self.key(a, b)](z[a])
            x_hat = self.vaes[b].decode(_sample(mu, logvar))
            loss, se, kl = cross_modal_loss(x[b], x_hat, mu, logvar, self.lambdas["lambda_crs"][b])
            name = self.key(a, b)
            out.update({f"crs_{name}": loss, f"se_{name}": se, f"kl_{name}": kl})
            total = total + loss
        return {"loss": total, **out}

    # ---------------------------------------------------------------------------- phases
    @property
    def phase(self) -> int:
        """1 while VAEs still train (epoch < phase1_epochs), then 2."""
        if self.trainable_vaes() and self.current_epoch < self.hparams.phase1_epochs:
            return 1
        return 2

    def set_phase(self, phase: int) -> None:
        """Only the parts phase ``phase`` trains require grad; the rest are frozen (eval)."""
        for m, vae in self.vaes.items():
            vae.requires_grad_(phase == 1 and m in self.trainable_vaes())
        trainable = {self.key(*d) for d in self.trainable_directions()}
        for name, assoc in self.associators.items():
            assoc.requires_grad_(phase == 2 and name in trainable)
        self.train(self.training)

    def train(self, mode: bool = True):
        """``nn.Module.train`` that keeps frozen VAEs and associators in eval mode."""
        super().train(mode)
        for part in [*self.vaes.values(), *self.associators.values()]:
            if not any(p.requires_grad for p in part.parameters()):
                part.eval()
        return self

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.init_checkpoint:
            self.load_parts(self.hparams.init_checkpoint)

    def load_parts(self, path: str) -> None:
        """Load (and mark frozen) every VAE and associator held by the checkpoint at ``path``."""
        if not Path(path).is_file():
            raise InitCheckpointError(f"init_checkpoint {path} does not exist")
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        info = ckpt.get("vae_associator", {})
        if info.get("phase") == 1:
            raise InitCheckpointError(
                f"init_checkpoint {path} was saved during phase 1, so its VAEs are unfinished: "
                "resume it with --ckpt_path, or start phase 2 from the phase1.ckpt written when "
                "phase 1 ends"
            )
        state = ckpt["state_dict"]
        for prefix, modules in (("vaes", self.vaes), ("associators", self.associators)):
            for name, module in modules.items():
                head = f"{prefix}.{name}."
                part = {k[len(head) :]: v for k, v in state.items() if k.startswith(head)}
                if not part:
                    continue
                try:
                    module.load_state_dict(part)
                except RuntimeError as err:
                    raise InitCheckpointError(
                        f"init_checkpoint {path}: {prefix}.{name} does not fit this model "
                        f"(input kind or latent size differ): {err}"
                    ) from err
                self.loaded.add(f"{prefix}.{name}")
        rank_zero_info(f"vae_associator: loaded and froze {sorted(self.loaded)} from {path}")

    def on_fit_start(self) -> None:
        names = getattr(getattr(self.trainer, "datamodule", None), "modalities", None)
        if names is not None and set(names) != set(self.kinds):
            raise ConfigError(
                f"the datamodule's modalities {list(names)} differ from the model's "
                f"{list(self.kinds)}: configure model.init_args.modalities for them"
            )
        max_epochs = self.trainer.max_epochs
        if (
            self.phase == 1
            and max_epochs is not None
            and 0 <= max_epochs <= self.hparams.phase1_epochs
        ):
            rank_zero_warn(
                f"trainer.max_epochs={max_epochs} <= phase1_epochs={self.hparams.phase1_epochs}: "
                "phase 2 (the associators) will not run"
            )

    def on_train_epoch_start(self) -> None:
        if self.current_epoch == 0 or self.current_epoch == self.hparams.phase1_epochs:
            rank_zero_info(f"vae_associator: phase {self.phase} from epoch {self.current_epoch}")
        self.set_phase(self.phase)

    def on_train_epoch_end(self) -> None:
        if self.phase == 1 and self.current_epoch + 1 == self.hparams.phase1_epochs:
            self.save_phase1()

    def save_phase1(self) -> Path:
        """Write the finished VAEs as ``phase1.ckpt`` beside the run's checkpoints."""
        cb = self.trainer.checkpoint_callback
        if cb is not None and cb.dirpath:
            folder = Path(cb.dirpath)
        else:
            folder = Path(self.trainer.log_dir or self.trainer.default_root_dir) / "checkpoints"
        path = folder / "phase1.ckpt"
        if self.global_rank == 0:
            folder.mkdir(parents=True, exist_ok=True)
            state = {k: v for k, v in self.state_dict().items() if k.startswith("vaes.")}
            torch.save(
                {
                    "state_dict": state,
                    "hyper_parameters": dict(self.hparams),
                    "vae_associator": {"phase": "1-finished"},
                },
                path,
            )
            rank_zero_info(f"vae_associator: phase 1 finished, VAEs saved to {path}")
        return path

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["vae_associator"] = {"phase": self.phase}

    # ---------------------------------------------------------------------------- steps
    def _unpaired_inputs(self, batch: dict, modalities: list[str]) -> dict[str, torch.Tensor]:
        if all(f"unpaired_{m}" in batch for m in modalities):
            return {m: batch[f"unpaired_{m}"][m] for m in modalities}
        if not self._warned_no_unpaired:
            rank_zero_warn(
                "vae_associator: the datamodule gives no unpaired streams, so phase 1 trains on "
                "the paired items only; set data.init_args.unpaired_train: true to use all data"
            )
            self._warned_no_unpaired = True
        return batch.get("paired", batch)

    def training_step(self, batch: dict, batch_idx: int) -> None:
        phase = self.phase
        if phase == 1:
            modalities = self.trainable_vaes()
            losses = self.intra_losses(self._unpaired_inputs(batch, modalities), modalities)
        else:
            pairs = batch.get("paired", batch)
            losses = self.cross_losses(pairs, self.trainable_directions())
        if phase not in self._opt_index:  # nothing left to train in this phase
            return None
        opts = self.optimizers()
        opt = opts[self._opt_index[phase]] if isinstance(opts, list) else opts
        self.log_losses(losses, "train", batch.get("paired", batch)["label"].size(0))
        opt.zero_grad()
        self.manual_backward(losses["loss"])
        opt.step()
        self.log("train/phase", float(phase), on_step=True, on_epoch=False)
        return None

    def eval_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """Both equations on a pair batch; ``loss`` is the one the current phase trains."""
        present = [m for m in self.kinds if m in batch]
        intra = self.intra_losses(batch, present)
        cross = self.cross_losses(batch, [d for d in self.directions if set(d) <= set(present)])
        return {
            "loss": intra["loss"] if self.phase == 1 else cross["loss"],
            **{k: v for k, v in intra.items() if k != "loss"},
            **{k: v for k, v in cross.items() if k != "loss"},
        }

    def configure_optimizers(self):
        hp = self.hparams
        groups = {
            1: [p for m in self.trainable_vaes() for p in self.vaes[m].parameters()],
            2: [
                p
                for d in self.trainable_directions()
                for p in self.associators[self.key(*d)].parameters()
            ],
        }
        optimizers, self._opt_index = [], {}
        for phase, params in groups.items():
            if params:
                self._opt_index[phase] = len(optimizers)
                optimizers.append(torch.optim.Adam(params, lr=hp.lr, weight_decay=hp.weight_decay))
        return optimizers
