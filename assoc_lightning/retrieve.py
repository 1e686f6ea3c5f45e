"""``assoc retrieve``: a trained run's top-k matches of the other modality for your own files.

    assoc retrieve runs/ig_embedding my_recording.wav                  # newest version, last.ckpt
    assoc retrieve runs/cmcr/version_2 a.flac b.mp3 --k 10 --gallery val
    assoc retrieve runs/cmcr/version_2/checkpoints/last.ckpt digit.png --gallery my_clips/

The model and the datamodule are rebuilt from the run's saved ``config.yaml`` (its ``model``
and ``data`` sections only: no trainer, logger or callback of the run is made, so nothing is
written into the run but the pictures) and the checkpoint's weights are loaded through
Lightning's own test entry with no batches, which runs every hook loading a run needs.

A query is prepared exactly as the datamodule prepares its own items: audio through the one
clip reader (``data/io/audio.py``: any format libsndfile reads, channels averaged, resampled
to the datamodule's rate, cropped or zero-padded to its clip length), images decoded to RGB,
resized and centre-cropped to the items' size, channels and scale. Queries and gallery are
embedded by the code the evaluation uses (``eval/bank.py: collect_features``) in the method's
retrieval space (``retrieval_embed``) and ranked by cosine similarity
(``eval/metrics/knn.py: topk_neighbors``), as the retrieval evaluation ranks. The gallery is
the other modality of a split of the datamodule (``test`` by default) or a folder of files
(a file in a sub-folder is labelled with the sub-folder's name).

For each query it prints the top-k table and saves ``<out>/retrieve_<query stem>.png``: the
query (its log-mel spectrogram, or the image) beside its matches, titled with class and score.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml
from torch.utils.data import Dataset
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

import assoc_lightning.data  # noqa: F401  (registers datamodules for bare names)
import assoc_lightning.methods  # noqa: F401  (registers methods)
from assoc_lightning.data.base import SPLITS, AssocDataModule
from assoc_lightning.data.errors import DatasetCorruptError
from assoc_lightning.data.io.audio import audio_info, read_audio
from assoc_lightning.data.io.image import IMAGE_EXTENSIONS, images_under, open_image
from assoc_lightning.errors import AssocError
from assoc_lightning.eval.bank import collect_features
from assoc_lightning.eval.metrics.knn import topk_neighbors
from assoc_lightning.eval.pictures import display, retrieval_examples_figure
from assoc_lightning.methods.base import AssociativeMethod
from assoc_lightning.utils.run_folders import newest_version

# what the one clip reader opens (libsndfile); other suffixes are refused with this list
AUDIO_EXTENSIONS = (
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64",
    ".rf64", ".sph",
)  # fmt: skip
ACCEPTED = (
    f"audio ({', '.join(e[1:] for e in AUDIO_EXTENSIONS)}: any rate, channels, length) or "
    f"images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)})"
)
PLURAL = {"audio": "sounds", "image": "images"}
_FORMAT = ("sample_rate", "clip_samples")  # what audio readers call their rate and length
_RUN_HELP = "a run folder (runs/<name>/version_N), its parent (the newest version) or a .ckpt file"


class RetrieveError(AssocError):
    """A retrieve call that cannot go on: a run, a checkpoint or a file that is not usable."""


# ----------------------------------------------------------------------------- the run
@dataclass
class Run:
    """A run folder, its saved config and the checkpoint to load."""

    folder: Path
    config: Path
    checkpoint: Path


def best_checkpoint(folder: Path) -> Path:
    """The ``best_model_path`` the run's ModelCheckpoint recorded in its newest checkpoint
    (found in the run's checkpoints/ folder also when the run was moved)."""
    ckpts = sorted((folder / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    for path in reversed(ckpts):
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        for key, value in (state.get("callbacks") or {}).items():
            best = value.get("best_model_path") if key.startswith("ModelCheckpoint") else None
            for candidate in (Path(best), folder / "checkpoints" / Path(best).name) if best else ():
                if candidate.is_file():
                    return candidate
    raise RetrieveError(
        f"--ckpt best: no checkpoint of {folder} records a best checkpoint that exists "
        f"(found: {[p.name for p in ckpts]}); give --ckpt last or a checkpoint path"
    )


def choose_checkpoint(folder: Path, ckpt: str) -> Path:
    """``last``: checkpoints/last.ckpt (else the newest .ckpt), ``best``: see
    :func:`best_checkpoint`, otherwise the path given."""
    if ckpt not in ("last", "best"):
        path = Path(ckpt).expanduser()
        if not path.is_file():
            raise RetrieveError(f"checkpoint not found: {ckpt} (give last, best or a .ckpt file)")
        return path
    ckpts = sorted((folder / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not ckpts:
        raise RetrieveError(
            f"run folder {folder} has no checkpoint (expected {folder}/checkpoints/*.ckpt; a run "
            "writes last.ckpt when its ModelCheckpoint has save_last: true)"
        )
    if ckpt == "best":
        return best_checkpoint(folder)
    last = folder / "checkpoints" / "last.ckpt"
    return last if last.is_file() else ckpts[-1]


def find_run(run: str, ckpt: str = "last") -> Run:
    """The run behind ``RUN`` (see ``_RUN_HELP``) and the checkpoint ``--ckpt`` names."""
    path = Path(run).expanduser()
    if not path.exists():
        raise RetrieveError(f"run not found: {run} (give {_RUN_HELP})")
    if path.is_file():
        folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        ckpt = str(path)
    elif (path / "config.yaml").is_file():
        folder = path
    else:
        folder = newest_version(path, "config.yaml") if path.is_dir() else None
        if folder is None:
            raise RetrieveError(
                f"{run} holds no config.yaml and no version_N/config.yaml: not a run folder "
                f"(give {_RUN_HELP})"
            )
    config = folder / "config.yaml"
    if not config.is_file():
        raise RetrieveError(f"run folder {folder} has no config.yaml (the resolved run config)")
    return Run(folder, config, choose_checkpoint(folder, ckpt))


def read_config(run: Run) -> dict:
    """The saved config as a dict, checked to hold a ``model`` and a ``data`` section."""
    try:
        config = yaml.safe_load(run.config.read_text())
    except yaml.YAMLError as err:
        raise RetrieveError(f"{run.config} is not valid YAML: {err}") from err
    if not isinstance(config, dict) or not {"model", "data"} <= set(config):
        raise RetrieveError(f"{run.config} has no model and data sections: not a run's config")
    return config


def build(config: dict, data_dir: str | None) -> tuple[AssociativeMethod, AssocDataModule]:
    """The run's method and datamodule from its ``model`` and ``data`` sections, parsed with
    the same typed subclass arguments as ``assoc fit`` (nothing else of the run is built)."""
    from jsonargparse import ArgumentError
    from lightning.pytorch.cli import LightningArgumentParser

    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(AssociativeMethod, "model", subclass_mode=True)
    parser.add_lightning_class_args(AssocDataModule, "data", subclass_mode=True)
    sections = {"model": config["model"], "data": dict(config["data"])}
    if data_dir is not None:
        init = dict(sections["data"].get("init_args") or {})
        sections["data"]["init_args"] = {**init, "data_dir": data_dir}
    # jsonargparse >= 4.49 names it instantiate (instantiate_classes is deprecated there)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes
    try:
        objects = instantiate(parser.parse_object(sections))
    except ArgumentError as err:
        raise RetrieveError(f"the run's config does not build: {err}") from err
    return objects["model"], objects["data"]


@dataclass
class Loaded:
    """A restored run: the method on its device, the datamodule set up, the saved config."""

    model: AssociativeMethod
    datamodule: AssocDataModule
    config: dict


def pick_device(device: str) -> torch.device:
    """``auto``: CUDA when there is a GPU, else the CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RetrieveError("--device cuda: no CUDA device is available here (use cpu or auto)")
    return torch.device(device)


def restore(run: Run, data_dir: str | None, device: str) -> Loaded:
    """Build the run's method and datamodule and load the checkpoint into them.

    Lightning's ``test`` with no batches does exactly what loading a run needs, through each
    class's own hooks: the datamodule's prepare_data / setup, the method's setup (C-MCR
    builds its frozen towers and caches there), the checkpoint restore (with the method's
    load hooks) and nothing else: no logger, no checkpointing, no evaluation callbacks.
    """
    from lightning.pytorch import Trainer

    config = read_config(run)
    model, dm = build(config, data_dir)
    where = pick_device(device)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = rank_zero.level
    rank_zero.setLevel(logging.WARNING)  # "GPU available", "Restoring states from ..."
    try:
        with warnings.catch_warnings():
            # the run's own callbacks (checkpointing, evaluation) are deliberately not rebuilt
            warnings.filterwarnings("ignore", message=".*callbacks used to create the checkpoint")
            warnings.filterwarnings("ignore", message=".*limit_test_batches=0")
            trainer = Trainer(
                accelerator="gpu" if where.type == "cuda" else "cpu",
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                limit_test_batches=0,
                callbacks=[],
            )
            trainer.test(model, datamodule=dm, ckpt_path=str(run.checkpoint), verbose=False)
    finally:
        rank_zero.setLevel(level)
    model.to(where).eval()
    return Loaded(model, dm, config)


def check_retrieval(loaded: Loaded) -> None:
    """Audio <-> image retrieval needs both modalities in the datamodule and one shared space
    (a run whose config switches the retrieval evaluation off says it has none)."""
    have = tuple(loaded.datamodule.modalities)
    if not {"audio", "image"} <= set(have):
        raise RetrieveError(
            f"this run's datamodule has the modalities {list(have)}; retrieve ranks images for "
            "sounds and sounds for images"
        )
    eval_config = loaded.config.get("eval")
    if (
        isinstance(eval_config, dict)
        and "retrieval" in eval_config
        and not eval_config["retrieval"]
    ):
        raise RetrieveError(
            "this run's config switches cross-modal retrieval off (eval.retrieval: null), as "
            "methods do whose modalities live in separate latent spaces (vae_associator): "
            "ranking one modality's embeddings against the other's would mean nothing"
        )


# ---------------------------------------------------------------------------- the inputs
def modality_of(path: Path) -> str:
    """``audio`` or ``image`` by the file's suffix; a missing, empty or other file is refused."""
    if not path.is_file():
        raise RetrieveError(f"query file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in AUDIO_EXTENSIONS + IMAGE_EXTENSIONS:
        raise RetrieveError(f"{path}: unknown file type {suffix or '(none)'}; accepted: {ACCEPTED}")
    if path.stat().st_size == 0:
        raise RetrieveError(f"{path} is empty (0 bytes); accepted: {ACCEPTED}")
    return "audio" if suffix in AUDIO_EXTENSIONS else "image"


def unwrap(dataset) -> list:
    """``dataset`` and the datasets it wraps (``base`` of a subset, ``dataset`` of others)."""
    chain = [dataset]
    for _ in range(16):  # wrappers are a few levels deep; never loop on a cycle
        inner = getattr(chain[-1], "base", None)
        inner = getattr(chain[-1], "dataset", None) if inner is None else inner
        if inner is None:
            break
        chain.append(inner)
    return chain


@dataclass
class AudioFormat:
    """How the datamodule's clips are made: rate and length (from its own audio dataset)."""

    sample_rate: int
    num_samples: int


def audio_format(dm: AssocDataModule, split: str) -> AudioFormat:
    """The rate and clip length of the datamodule's audio items: the reader's ``sample_rate``
    and ``clip_samples`` (or the datamodule's rate and one item's length)."""
    dataset = dm.eval_dataset(split, "audio")
    chain = [*unwrap(dataset), dm]
    rate, length = (next((v for d in chain if (v := getattr(d, a, 0))), 0) for a in _FORMAT)
    if not rate:
        raise RetrieveError(
            f"cannot tell the sample rate of {type(dm).__name__}'s audio (its audio dataset "
            "and the datamodule have no sample_rate)"
        )
    return AudioFormat(int(rate), int(length or dataset[0]["audio"].shape[-1]))


def audio_header(path: Path) -> tuple[int, int, int]:
    """``(frames, rate, channels)``; an unreadable file or one without frames is named, with
    the accepted formats."""
    try:
        return audio_info(path)
    except DatasetCorruptError as err:
        raise RetrieveError(f"{err}\naccepted: {ACCEPTED}") from err


def read_query_audio(path: Path, fmt: AudioFormat, offset: float = 0.0) -> torch.Tensor:
    """A mono waveform like the datamodule's: read by the one clip reader, channels averaged,
    resampled, from ``offset`` seconds cropped or zero-padded to the clip length."""
    audio_header(path)
    try:
        return read_audio(path, fmt.sample_rate, fmt.num_samples, offset_seconds=offset)
    except DatasetCorruptError as err:  # e.g. a stream broken after a good header
        raise RetrieveError(f"{err}\naccepted: {ACCEPTED}") from err


def open_query_image(path: Path):
    """The decoded image (PIL, RGB); an unreadable file is named with the accepted formats."""
    try:
        return open_image(path, "a readable image")
    except DatasetCorruptError as err:
        raise RetrieveError(f"{err}\naccepted: {ACCEPTED}") from err


def check_query(path: Path) -> str:
    """The query's modality, after checking that the file opens (before a run is loaded)."""
    modality = modality_of(path)
    if modality == "audio":
        audio_header(path)
    else:
        open_query_image(path)
    return modality


def image_like(path: Path, reference: torch.Tensor) -> torch.Tensor:
    """The image at ``path`` as the datamodule's images are: decoded to RGB, its shorter side
    resized to cover the items' size (bicubic, antialiased) and centre-cropped to it, grey
    when they are, uint8 or floats in [0, 1] as they are."""
    img = open_query_image(path)
    channels, height, width = (
        reference.shape[-3:] if reference.dim() >= 3 else (1, *reference.shape)
    )
    if channels == 1:
        img = img.convert("L")  # PIL's integer luma: a grey picture stays exactly itself
    scale = max(height / img.height, width / img.width)
    size = [max(height, round(img.height * scale)), max(width, round(img.width * scale))]
    img = TF.resize(img, size, interpolation=InterpolationMode.BICUBIC, antialias=True)
    x = TF.pil_to_tensor(TF.center_crop(img, [height, width]))
    if reference.is_floating_point():
        x = x.float() / 255.0
    return x if reference.dim() >= 3 else x[0]


class FileItems(Dataset):
    """Files of one modality as dataset items (``{modality, label, index}``; ``label`` -1:
    unknown), so they are embedded exactly as an evaluation set is."""

    def __init__(self, files: list[Path], modality: str, read: Callable[[Path], torch.Tensor]):
        self.files, self.modality, self.read = files, modality, read

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        return {self.modality: self.read(self.files[index]), "label": -1, "index": index}


# ---------------------------------------------------------------------------- the gallery
@dataclass
class Gallery:
    """What queries are ranked against: the items, their embeddings and how to show them."""

    name: str
    dataset: Dataset
    modality: str
    embeddings: torch.Tensor
    names: list[str]  # per row: the dataset index or the file's path in the folder
    classes: list[str]  # per row: the class name, "" when unknown


def class_name(dm: AssocDataModule, label: int) -> str:
    """The datamodule's name of class ``label`` ("" for an unknown label)."""
    if label < 0:
        return ""
    names = tuple(getattr(dm, "class_names", ()) or ())
    return str(names[label]) if label < len(names) else str(label)


def reader(loaded: Loaded, modality: str, split: str, offset: float = 0.0):
    """The function that prepares a file of ``modality`` like the datamodule's items."""
    dm = loaded.datamodule
    if modality == "audio":
        fmt = audio_format(dm, split)
        return lambda path: read_query_audio(path, fmt, offset)
    reference = dm.eval_dataset(split, "image")[0]["image"]
    return lambda path: image_like(path, reference)


def embed(loaded: Loaded, dataset: Dataset, modality: str) -> torch.Tensor:
    """Embeddings ``[N, D]`` of ``dataset`` in the method's retrieval space, in row order."""
    dm = loaded.datamodule
    feats = collect_features(
        loaded.model, dataset, [modality], batch_size=dm.eval_batch_size, space="retrieval"
    )[modality]
    return feats.embeddings


def split_gallery(loaded: Loaded, split: str, modality: str) -> Gallery:
    """Every ``modality`` item of a split of the datamodule, labelled with class names."""
    dataset = loaded.datamodule.eval_dataset(split, modality)
    labels = np.asarray(dataset.labels)
    return Gallery(
        f"the {split} split",
        dataset,
        modality,
        embed(loaded, dataset, modality),
        [str(i) for i in range(len(dataset))],
        [class_name(loaded.datamodule, int(c)) for c in labels],
    )


def folder_gallery(loaded: Loaded, folder: Path, modality: str, split: str) -> Gallery:
    """Every ``modality`` file under ``folder`` (sub-folders too, their names as classes)."""
    extensions = set(AUDIO_EXTENSIONS if modality == "audio" else IMAGE_EXTENSIONS)
    files = [Path(f) for f in images_under(folder, extensions, recursive=True)]
    if not files:
        raise RetrieveError(
            f"gallery folder {folder} holds no {modality} files ({', '.join(sorted(extensions))})"
        )
    dataset = FileItems(files, modality, reader(loaded, modality, split))
    rel = [f.relative_to(folder) for f in files]
    return Gallery(
        f"{folder}",
        dataset,
        modality,
        embed(loaded, dataset, modality),
        [str(r) for r in rel],
        [r.parent.name if len(r.parts) > 1 else "" for r in rel],
    )


def open_gallery(loaded: Loaded, gallery: str, modality: str) -> Gallery:
    """A split name (train / val / test) or a folder of ``modality`` files."""
    if gallery in SPLITS:
        return split_gallery(loaded, gallery, modality)
    folder = Path(gallery).expanduser()
    if not folder.is_dir():
        raise RetrieveError(
            f"--gallery {gallery}: neither a split ({'/'.join(SPLITS)}) nor a folder"
        )
    return folder_gallery(loaded, folder, modality, "test")


# ---------------------------------------------------------------------------- ranking
@dataclass
class Match:
    """One ranked gallery item."""

    rank: int
    row: int
    name: str
    label: str
    score: float


def rank(queries: torch.Tensor, gallery: Gallery, k: int) -> list[list[Match]]:
    """Each query's ``k`` most cosine-similar gallery rows (ties by row, as in evaluation)."""
    scores, rows = topk_neighbors(queries, gallery.embeddings, k)
    return [
        [
            Match(r + 1, j, gallery.names[j], gallery.classes[j], s)
            for r, (s, j) in enumerate(zip(srow, jrow, strict=True))
        ]
        for srow, jrow in zip(scores.tolist(), rows.tolist(), strict=True)
    ]


def table(matches: list[Match], index_header: str) -> str:
    """The top-k as a compact fixed-width table."""
    width = max(len(index_header), *(len(m.name) for m in matches))
    label_width = max(5, *(len(m.label) for m in matches))
    lines = [f"  rank  {index_header:<{width}}  {'class':<{label_width}}  score"]
    lines += [
        f"  {m.rank:>4}  {m.name:<{width}}  {m.label or '-':<{label_width}}  {m.score:.3f}"
        for m in matches
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- pictures
def picture_paths(files: list[Path], out: Path) -> list[Path]:
    """``<out>/retrieve_<stem>.png`` per query; a repeated stem gets ``-2``, ``-3``, ..."""
    seen: dict[str, int] = {}
    paths = []
    for f in files:
        seen[f.stem] = seen.get(f.stem, 0) + 1
        suffix = "" if seen[f.stem] == 1 else f"-{seen[f.stem]}"
        paths.append(out / f"retrieve_{f.stem}{suffix}.png")
    return paths


# ---------------------------------------------------------------------------- the command
@dataclass
class Result:
    """One query's answer: its file, modality, ranked matches and the saved picture."""

    file: Path
    modality: str
    matches: list[Match]
    picture: Path


def describe(path: Path, modality: str, fmt: AudioFormat) -> str:
    """One line saying what the query was and what it became."""
    if modality == "image":
        return f"query {path} (image)"
    frames, rate, channels = audio_header(path)
    return (
        f"query {path} (audio: {frames / rate:.2f} s, {rate} Hz, {channels} channel"
        f"{'s' if channels != 1 else ''} -> mono {fmt.num_samples / fmt.sample_rate:.2f} s at "
        f"{fmt.sample_rate} Hz)"
    )


def retrieve(
    loaded: Loaded,
    files: list[Path],
    k: int = 5,
    gallery: str = "test",
    out: Path | None = None,
    offset: float = 0.0,
    echo: Callable[[str], None] = print,
) -> list[Result]:
    """Rank, print (through ``echo``) and draw the top-k matches of every query file against
    the other modality's ``gallery`` (a split or a folder); the pictures go to ``out``."""
    modalities = [modality_of(f) for f in files]
    check_retrieval(loaded)
    out = out if out is not None else Path("retrieve")
    split = gallery if gallery in SPLITS else "test"
    method = type(loaded.model).__name__
    fmt = audio_format(loaded.datamodule, split)
    results: dict[int, Result] = {}
    pictures = picture_paths(files, out)
    for modality in ("audio", "image"):
        rows = [i for i, m in enumerate(modalities) if m == modality]
        if not rows:
            continue
        other = "image" if modality == "audio" else "audio"
        read = reader(loaded, modality, split, offset)
        queries = FileItems([files[i] for i in rows], modality, read)
        board = open_gallery(loaded, gallery, other)
        ranked = rank(embed(loaded, queries, modality), board, k)
        for q, (i, matches) in enumerate(zip(rows, ranked, strict=True)):
            echo(describe(files[i], modality, fmt))
            echo(
                f"top {len(matches)} {PLURAL[other]} of {board.name} ({len(board.names)} items), "
                f"cosine similarity in {method}'s retrieval space:"
            )
            echo(table(matches, "item" if gallery in SPLITS else "file"))
            shown = [display(board.dataset[m.row][other], fmt.sample_rate) for m in matches]
            captions = [f"#{m.rank} {m.label or m.name}\n{m.score:.3f}" for m in matches]
            query_pic = display(queries[q][modality], fmt.sample_rate)
            title = f"query: {files[i].name}"
            retrieval_examples_figure(
                [query_pic], [title], [shown], [captions], None, "", pictures[i]
            )
            echo(f"saved {pictures[i]}\n")
            results[i] = Result(files[i], modality, matches, pictures[i])
    return [results[i] for i in range(len(files))]


def parser() -> argparse.ArgumentParser:
    """The command line of ``assoc retrieve``."""
    p = argparse.ArgumentParser(
        prog="assoc retrieve",
        description="Top-k matches of the other modality for audio or image files, from a "
        "trained run: printed, and saved as <out>/retrieve_<file stem>.png.",
    )
    p.add_argument("run", metavar="RUN", help=_RUN_HELP)
    p.add_argument("files", metavar="FILE", nargs="+", type=Path, help=f"queries: {ACCEPTED}")
    p.add_argument("--k", type=int, default=5, help="matches per query (default 5)")
    p.add_argument(
        "--gallery", default="test",
        help="a split of the run's datamodule (train / val / test, default test) or a folder "
        "of files of the other modality (sub-folder names are shown as classes)",
    )  # fmt: skip
    p.add_argument(
        "--ckpt", default="last",
        help="last (default: checkpoints/last.ckpt), best (the run's best_model_path) or a path",
    )  # fmt: skip
    p.add_argument("--out", type=Path, help="where the pictures go (default <run>/retrieve/)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument(
        "--offset", type=float, default=0.0,
        help="seconds into each audio file where its clip starts (default 0)",
    )  # fmt: skip
    p.add_argument("--data_dir", help="the data dir, when not the one the run was trained with")
    return p


def main(argv: list[str]) -> list[Result]:
    """``assoc retrieve RUN FILE [FILE ...]``: see :func:`parser` and the module docstring."""
    args = parser().parse_args(argv)
    if args.k < 1:
        raise RetrieveError(f"--k must be at least 1, got {args.k}")
    if args.offset < 0:
        raise RetrieveError(f"--offset must be >= 0 seconds, got {args.offset}")
    for f in args.files:
        check_query(f)  # a bad file fails before the run is loaded
    run = find_run(args.run, args.ckpt)
    loaded = restore(run, args.data_dir, args.device)
    out = args.out if args.out is not None else run.folder / "retrieve"
    print(f"run {run.folder} (checkpoint {run.checkpoint.name})\n")
    return retrieve(loaded, args.files, args.k, args.gallery, out, args.offset)
