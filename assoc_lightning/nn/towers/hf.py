"""Hugging Face models from local directories: what a directory must hold, a clear error
when it does not, opt-in download, quiet loading, tokenization.

Transformers is imported lazily (only when a real tower is built): ``pip install
'assoc_lightning[towers]'``. Nothing downloads unless ``download=True`` is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from assoc_lightning.errors import AssocError

log = logging.getLogger(__name__)


class TowerNotFoundError(AssocError, FileNotFoundError):
    """A tower's local directory is missing or incomplete; says what is expected and how to get it."""

    def __init__(self, name: str, path: str | Path, missing: Sequence[str], hub_name: str) -> None:
        self.name, self.path, self.missing = name, Path(path), list(missing)
        lines = [f"{name} tower not found or incomplete: {path}"]
        if missing:
            lines.append("missing: " + "; ".join(missing))
        lines += [
            "expected files in that directory:",
            "  config.json",
            "  model weights: model.safetensors or pytorch_model.bin (or a sharded *.index.json)",
            "  tokenizer: tokenizer.json (or vocab.json + merges.txt) and tokenizer_config.json",
            "  processor: preprocessor_config.json (or processor_config.json)",
            "how to get them: on a machine with internet, "
            f"`huggingface-cli download {hub_name} --local-dir {path}`, then copy the directory "
            f"here; or build the tower with `download: true` (from_pretrained('{hub_name}') "
            "saved to the path).",
        ]
        super().__init__("\n".join(lines))


class TowerDependencyError(AssocError, ImportError):
    """The optional ``transformers`` dependency is not installed."""


_REQUIRED_FILES = {
    "config.json": ("config.json",),
    "model weights": (
        "model.safetensors",
        "model.safetensors.index.json",
        "pytorch_model.bin",
        "pytorch_model.bin.index.json",
    ),
    "tokenizer": ("tokenizer.json", "vocab.json"),
    "processor config": ("preprocessor_config.json", "processor_config.json"),
}


def import_transformers():
    try:
        import transformers
    except ImportError as err:
        raise TowerDependencyError(
            "the CLIP/CLAP towers need the optional dependency `transformers`: "
            "pip install 'assoc_lightning[towers]'"
        ) from err
    return transformers


def missing_tower_files(path: str | Path) -> list[str]:
    """What a local Hugging Face model directory lacks (empty when complete)."""
    path = Path(path)
    if not path.is_dir():
        return [f"the directory {path} itself"]
    missing = []
    for what, names in _REQUIRED_FILES.items():
        if not any((path / n).is_file() for n in names):
            missing.append(what if names == (what,) else f"{what} ({' or '.join(names)})")
    return missing


def load_local(
    name: str, path: Path, hub_name: str, download: bool, model: str, processor: str
) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, processor)`` of the local directory ``path`` (transformers class
    names ``model`` and ``processor``; the model in float32). With ``download``, an incomplete
    directory is first filled from the hub; otherwise it is a clear error."""
    tf = import_transformers()
    model_cls, processor_cls = getattr(tf, model), getattr(tf, processor)

    def save(hub: str, where: Path) -> None:
        for cls in (model_cls, tf.AutoTokenizer, processor_cls):
            cls.from_pretrained(hub).save_pretrained(where)

    prepare_dir(name, path, hub_name, download, save)
    with loading(name, path, hub_name):
        net = model_cls.from_pretrained(path, local_files_only=True)
        tokenizer = tf.AutoTokenizer.from_pretrained(path, local_files_only=True)
        proc = processor_cls.from_pretrained(path, local_files_only=True)
    return net.float(), tokenizer, proc  # transformers 5.x loads the checkpoint's dtype


def prepare_dir(name: str, path: Path, hub_name: str, download: bool, save_fn: Callable) -> None:
    """Download into ``path`` when asked and needed; raise a clear error when incomplete."""
    missing = missing_tower_files(path)
    if missing and download:
        log.info("downloading %s into %s (download=True)", hub_name, path)
        path.mkdir(parents=True, exist_ok=True)
        try:
            save_fn(hub_name, path)
        except OSError as err:
            missing = [f"the download of {hub_name} failed ({type(err).__name__}: {err})"]
            raise TowerNotFoundError(name, path, missing, hub_name) from err
        missing = missing_tower_files(path)
    if missing:
        raise TowerNotFoundError(name, path, missing, hub_name)


@contextlib.contextmanager
def loading(name: str, path: Path, hub_name: str) -> Iterator[None]:
    """Load quietly (no per-tensor progress bar); files that exist but do not load (truncated,
    wrong model type) get the same clear error as missing ones."""
    hf_logging = import_transformers().utils.logging
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    except (OSError, ValueError, KeyError) as err:
        raise TowerNotFoundError(
            name, path, [f"a loadable checkpoint ({type(err).__name__}: {err})"], hub_name
        ) from err
    finally:
        if bar:
            hf_logging.enable_progress_bar()


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int, device: torch.device):
    if isinstance(texts, str):
        texts = [texts]
    tok = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {k: tok[k].to(device) for k in ("input_ids", "attention_mask")}


def pooled(out: Any) -> torch.Tensor:
    """transformers 4.x returns a tensor from get_*_features, 5.x a ModelOutput (pooler_output)."""
    if isinstance(out, torch.Tensor):
        return out
    pooler = getattr(out, "pooler_output", None)
    if pooler is None:
        raise TypeError(f"unexpected get_*_features output {type(out).__name__}")
    return pooler


def tokenizer_digest(tokenizer: Any) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    text = json.dumps([type(tokenizer).__name__, vocab], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
