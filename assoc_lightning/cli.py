"""The ``assoc`` command: LightningCLI with any method and any datamodule chosen in YAML.

    assoc fit --config experiments/ig_embedding.yaml
    assoc fit --config experiments/ig_embedding.yaml --config experiments/base/gpu.yaml
    assoc fit --print_config --config experiments/ig_embedding.yaml
    assoc extract kinetics --root /data/kinetics --split train --workers 8

Methods and datamodules are imported here so YAML may name them bare. The resolved config is
saved into every run's log dir (and pushed to wandb when a WandbLogger is configured); every
run also gets a ResultsWriter that appends evaluation metrics to ``results.jsonl``. Errors a
user can fix (missing dataset, corrupt file, diverged loss) print as one message, not a
traceback; set ASSOC_DEBUG=1 to see the traceback.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

from lightning.pytorch.callbacks import ProgressBar
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

from assoc_lightning import data as _data  # noqa: F401  (registers datamodules for bare names)
from assoc_lightning import methods as _methods  # noqa: F401  (registers methods)
from assoc_lightning import runs
from assoc_lightning.augmentation import AudioAugmentation
from assoc_lightning.data.base import AssocDataModule
from assoc_lightning.errors import AssocError
from assoc_lightning.eval.callbacks import EvaluationSuite
from assoc_lightning.eval.results import ResultsWriter
from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.utils.progress import StepsProgressBar


class AssocSaveConfig(SaveConfigCallback):
    """Saves config.yaml to the log dir and, with a WandbLogger, into the wandb run config."""

    def save_config(self, trainer, pl_module, stage) -> None:
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                config = self.parser.dump(self.config)
                logger.experiment.config.update(
                    {"config_yaml": config, "log_dir": trainer.log_dir}, allow_val_change=True
                )


class AssocCLI(LightningCLI):
    """LightningCLI in subclass mode for both model and data, seeded by default."""

    def __init__(self, args=None, run: bool = True) -> None:
        super().__init__(
            model_class=AssociativeMethod,
            datamodule_class=AssocDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            save_config_callback=AssocSaveConfig,
            save_config_kwargs={"overwrite": True},
            seed_everything_default=0,
            args=args,
            run=run,
        )

    def add_arguments_to_parser(self, parser) -> None:
        # The shared evaluation (kNN, linear probe, retrieval) is on for every run; configure
        # its children under `eval:` (e.g. `eval: {knn: {ks: [20]}, retrieval: null}`).
        parser.add_lightning_class_args(EvaluationSuite, "eval")
        # The console shows one table of headline metrics when fit / validate / test ends;
        # `--all_metrics true` also prints every metric as it is computed.
        parser.add_argument(
            "--all_metrics", type=bool, default=False, help="print every metric as it comes"
        )
        # Training-time waveform augmentation for any method (`augmentation.py`); the embedded
        # speech experiments switch it on, `--augment null` switches it off.
        parser.add_argument(
            "--augment",
            type=Optional[AudioAugmentation],  # noqa: UP045  (jsonargparse reads the hint)
            default=None,
            help="augment training waveforms (assoc_lightning.augmentation.AudioAugmentation)",
        )
        # Same seed, same numbers: deterministic kernels wherever PyTorch has them (on CPU the
        # IG embedding's gathered-impostor backward differs run to run without); ops with no
        # deterministic kernel (some CUDA ones) warn instead of failing. `false` turns it off.
        parser.set_defaults({"trainer.deterministic": "warn"})

    def before_instantiate_classes(self) -> None:
        """``--ckpt_path last`` / a path: resolve the checkpoint (a clear error when there is
        none) and, for ``fit``, continue the run's own version folder (see ``runs.py``)."""
        self._resume = None
        cfg = self.config.get(self.subcommand)
        if cfg is not None:
            name_wandb_runs(cfg, self.subcommand)
        if cfg is None or not cfg.get("ckpt_path"):
            return
        csv_logger = _csv_logger_config(cfg.get("trainer.logger"))
        root = None
        if csv_logger is not None:
            args = csv_logger.get("init_args")
            root = Path(args.get("save_dir") or ".") / (args.get("name") or "lightning_logs")
        path, version = runs.resume_target(cfg["ckpt_path"], root)
        cfg["ckpt_path"] = path
        if self.subcommand == "fit" and version is not None:
            csv_logger["init_args"]["version"] = version
            self._resume = path

    def instantiate_trainer(self, **kwargs):
        config = self._get(self.config_init, "trainer", default={})
        callbacks = list(config.get("callbacks") or [])
        if config.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):  # our bar, unless the config names one or switches it off
            kwargs["callbacks"] = [*callbacks, StepsProgressBar()]
        trainer = super().instantiate_trainer(**kwargs)
        cfg = self.config.get(self.subcommand, self.config)
        configs = cfg.get("config") or []
        verbose = bool(cfg.get("all_metrics"))
        trainer.callbacks.append(ResultsWriter([str(c) for c in configs], verbose=verbose))
        augment = self._get(self.config_init, "augment")
        if augment is not None:
            trainer.callbacks.append(augment)
        trainer.callbacks.append(runs.RunState())
        if getattr(self, "_resume", None):
            runs.continue_files(trainer, self._resume)
        return trainer

    def after_fit(self) -> None:
        """Save the final weights as last.ckpt when training stopped between checkpoint saves
        (max_steps, max_time, every_n_epochs > 1), so the end of a run is never lost."""
        cb = self.trainer.checkpoint_callback
        if cb is None or cb.dirpath is None or not getattr(cb, "save_last", False):
            return
        if getattr(cb, "_last_global_step_saved", None) != self.trainer.global_step:
            self.trainer.save_checkpoint(os.path.join(cb.dirpath, "last.ckpt"))


def _logger_configs(logger, kind: str) -> list:
    """The ``trainer.logger`` config entries whose class is ``kind`` (e.g. ``"CSVLogger"``)."""
    entries = logger if isinstance(logger, list) else [logger]
    return [e for e in entries if hasattr(e, "get") and str(e.get("class_path", "")).endswith(kind)]


def _csv_logger_config(logger):
    """The (first) CSVLogger entry of a ``trainer.logger`` config, or None."""
    found = _logger_configs(logger, "CSVLogger")
    return found[0] if found else None


def experiment_name(configs) -> str:
    """The experiment a run's config files name: the first one not under ``base/`` (an add-on),
    relative to ``experiments/`` when it lies there (``cmcr``, ``paper/dmc_esc50``)."""
    paths = [Path(str(c)) for c in configs or []]
    main = [p for p in paths if p.parent.name != "base"] or paths
    if not main:
        return "cli"
    parts = main[0].with_suffix("").parts
    return (
        "/".join(parts[parts.index("experiments") + 1 :]) if "experiments" in parts else parts[-1]
    )


def name_wandb_runs(cfg, subcommand: str) -> None:
    """Name, group and tag each WandbLogger's run from the config unless the config does:
    name ``<experiment>-<Method>-<DataModule>-seed<N>``, group ``<experiment>`` (a study's seeds
    side by side), tags the method and datamodule, job type the subcommand."""
    entries = _logger_configs(cfg.get("trainer.logger"), "WandbLogger")
    if not entries:
        return
    experiment = experiment_name(cfg.get("config"))
    method = str(cfg.get("model.class_path", "model")).rsplit(".", 1)[-1]
    datamodule = str(cfg.get("data.class_path", "data")).rsplit(".", 1)[-1]
    csv = _csv_logger_config(cfg.get("trainer.logger"))
    csv_name = csv.get("init_args").get("name") if csv is not None else None
    seed = cfg.get("seed_everything")
    for entry in entries:
        args = entry["init_args"]
        if args.get("name") in (None, csv_name):  # unset, or the CSV name merged into it
            args["name"] = f"{experiment}-{method}-{datamodule}-seed{seed}"
        for key, value in (("group", experiment), ("tags", [method, datamodule])):
            if args.get(key) is None:
                args[key] = value
        if args.get("job_type") is None:
            args["job_type"] = subcommand


def _assoc_error(err: BaseException) -> Exception | None:
    """The AssocError (or Lightning configuration error) behind ``err``: itself, or one
    jsonargparse wrapped while instantiating a nested class from the config (e.g. a tower
    whose weights are missing)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (AssocError, MisconfigurationException)):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def extract(argv: list[str]) -> None:
    """``assoc extract kinetics ...``: decode a dataset once into shards (the data layer's
    ``extract_kinetics``; its signature gives the options and their defaults)."""
    from assoc_lightning.data.base import resolve_data_dir
    from assoc_lightning.data.datasets.kinetics import SHARDS_DIR, extract_kinetics

    parser = argparse.ArgumentParser(prog="assoc extract", description=extract.__doc__)
    sub = parser.add_subparsers(dest="dataset", required=True)
    kinetics = sub.add_parser("kinetics", help="Kinetics-400: middle frame + middle audio")
    kinetics.add_argument("--data_dir", help="default $ASSOC_DATA_DIR or ~/.cache/assoc/data")
    kinetics.add_argument("--root", help="the Kinetics-400 copy (default: the data dir)")
    kinetics.add_argument("--out", help=f"writes <out>/<split>/ (default <data_dir>/{SHARDS_DIR})")
    for name, param in inspect.signature(extract_kinetics).parameters.items():
        if name in ("root", "out", "progress"):
            continue
        kind = type(param.default) if param.default is not None else int
        kinetics.add_argument(
            f"--{name}", type=kind, default=param.default, help=f"default {param.default}"
        )
    opts = vars(parser.parse_args(argv))
    opts.pop("dataset")
    data_dir = resolve_data_dir(opts.pop("data_dir"))
    root = opts.pop("root") or data_dir
    out = opts.pop("out") or data_dir / SHARDS_DIR
    manifest = extract_kinetics(root, out, **opts, progress=lambda msg: print(msg, file=sys.stderr))
    skipped = sum(manifest["skipped"].values())
    print(
        f"{manifest['num_samples']} samples in {len(manifest['shards'])} shards, {skipped} "
        f"clips skipped: {Path(out) / opts['split']}"
    )


class _DropTips(logging.Filter):
    """Lightning's "💡 Tip: ... litlogger / litmodels" advertisements."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def quiet_known_noise() -> None:
    """Silence third-party messages known to be harmless on every run: Lightning's tips and
    the deprecation warning its own pytree helper triggers in torch (nothing a user can fix)."""
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTips())
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")


def main(args: list[str] | None = None) -> None:
    """Console entry point ``assoc``: ``extract`` here, every other subcommand LightningCLI's."""
    os.environ.setdefault("WANDB_MODE", "offline")  # wandb stays offline unless the user says
    quiet_known_noise()
    argv = sys.argv[1:] if args is None else list(args)
    try:
        if argv[:1] == ["extract"]:
            extract(argv[1:])
        elif argv[:1] == ["retrieve"]:
            from assoc_lightning import retrieve

            retrieve.main(argv[1:])
        else:
            AssocCLI(args=args)
    except Exception as exc:
        err = _assoc_error(exc)
        if err is None or os.environ.get("ASSOC_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
