"""Pictures saved with a run: the t-SNE scatter, grids of generated data, heat-map overlays
and retrieval examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def tsne_figure(
    xy: np.ndarray, labels: np.ndarray, modalities: np.ndarray, title: str, path: Path
) -> None:
    """2-D points coloured by class, one marker per modality (image o, audio ^), to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    for m, marker in (("image", "o"), ("audio", "^")):
        sel = modalities == m
        sc = ax.scatter(
            xy[sel, 0], xy[sel, 1], c=labels[sel], cmap="tab10", vmin=0, vmax=9, marker=marker,
            s=14,
        )  # fmt: skip
        ax.scatter([], [], c="k", marker=marker, label=m)  # legend entry in neutral colour
    ax.legend(loc="best")
    fig.colorbar(sc, ax=ax, label="class")
    ax.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def pictures(x: torch.Tensor, unit_range: bool) -> torch.Tensor:
    """Tensors ``[N, C, H, W]`` as pictures in [0, 1]; others min-max scaled, flipped up."""
    if unit_range:
        return x.clamp(0, 1)
    flat = x.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    x = (x - lo[:, None, None, None]) / (hi - lo).clamp_min(1e-8)[:, None, None, None]
    return x.flip(-2)


def grid(rows: list[torch.Tensor], pad: int = 2) -> torch.Tensor:
    """Rows of equally many tiles, each tile centred on a canvas fitting the largest one."""
    c = max(r.size(1) for r in rows)
    h, w = max(r.size(2) for r in rows), max(r.size(3) for r in rows)
    tiles = []
    for r in rows:
        canvas = torch.zeros(r.size(0), c, h, w)
        top, left = (h - r.size(2)) // 2, (w - r.size(3)) // 2
        canvas[:, :, top : top + r.size(2), left : left + r.size(3)] = r.expand(-1, c, -1, -1)
        tiles.append(canvas)
    from torchvision.utils import make_grid

    return make_grid(torch.cat(tiles), nrow=rows[0].size(0), padding=pad, pad_value=1.0)


def save_grid(rows: list[torch.Tensor], path: Path) -> None:
    """:func:`grid` of ``rows`` written as a PNG."""
    from torchvision.utils import save_image

    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(grid(rows), path)


def heatmap_overlays(
    images: torch.Tensor,
    heat: torch.Tensor,
    path: Path,
    gt_maps: torch.Tensor | None = None,
    boxes: list[list[tuple[float, float, float, float]]] | None = None,
    titles: list[str] | None = None,
    alpha: float = 0.5,
) -> None:
    """Localization examples to ``path``: per column an image (top) and its heat map, min-max
    scaled, jet-coloured and blended over it with weight ``alpha`` (bottom).

    ``images``: ``[N, 3 or 1, H, W]`` uint8, or floats (min-max scaled per image); ``heat``:
    ``[N, h, w]``, resized bilinearly to the image. Ground truth, drawn on both rows:
    ``gt_maps`` ``[N, H', W']`` as contours (dashed: one annotator, ``g`` >= 0.25; solid:
    consensus, ``g`` >= 0.75), ``boxes`` as rectangles ``(xmin, ymin, xmax, ymax)`` in image
    pixels. Headless (Agg).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from assoc_lightning.eval.metrics.localization import min_max, resize_maps

    if images.size(1) == 1:  # grey
        images = images.expand(-1, 3, -1, -1)
    n, _, h, w = images.shape
    if images.dtype == torch.uint8:
        pics = images.double() / 255.0
    else:
        pics = min_max(images.double().flatten(1, 2)).view(n, 3, h, w)  # per image
    pics = pics.permute(0, 2, 3, 1).numpy()
    jet = plt.get_cmap("jet")(min_max(resize_maps(heat, (h, w))).numpy())[..., :3]
    blended = (1 - alpha) * pics + alpha * jet
    gts = resize_maps(gt_maps, (h, w)).numpy() if gt_maps is not None else None
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for i in range(n):
        for row, picture in enumerate((pics[i], blended[i])):
            ax = axes[row, i]
            ax.imshow(np.clip(picture, 0, 1), extent=(0, w, h, 0))
            if gts is not None and gts[i].max() > 0:
                ax.contour(
                    np.arange(w) + 0.5, np.arange(h) + 0.5, gts[i], levels=[0.25, 0.75],
                    colors="white", linestyles=["dashed", "solid"], linewidths=1,
                )  # fmt: skip
            for x0, y0, x1, y1 in boxes[i] if boxes else []:
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=1))
            ax.set_axis_off()
        if titles:
            axes[0, i].set_title(titles[i], fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def display(x: torch.Tensor, sample_rate: int = 16000) -> np.ndarray:
    """One dataset item as an ``[H, W, 3]`` picture in [0, 1]: an image min-max scaled (uint8
    ones as 0-255); a raw waveform as its log-mel spectrogram (64 bands, 25 ms windows, 10 ms
    hop at ``sample_rate``, 80 dB range, low frequencies at the bottom) and audio features
    ``[F, T]`` as they are, both in the magma colour map."""
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = x.detach().float().cpu()
    if x.dim() == 1 and x.numel() < sample_rate // 40:  # too short for a spectrogram: values
        return _colour_map(x[None])
    if x.dim() == 1 or (x.dim() == 2 and x.size(0) in (1, 2) and x.size(1) > 4096):
        from torchaudio.transforms import AmplitudeToDB, MelSpectrogram

        win = sample_rate // 40
        mel = MelSpectrogram(sample_rate, n_fft=win, hop_length=sample_rate // 100, n_mels=64)
        spec = AmplitudeToDB(top_db=80.0)(mel(x.reshape(-1, x.size(-1)).mean(0)))
        return _colour_map(spec.flip(0))
    if x.dim() == 2 or (x.dim() == 3 and x.size(0) not in (1, 3)):  # features [F, T] / [C, F, T]
        return _colour_map(x.reshape(-1, x.size(-1)).flip(0))
    x = x[:3] if x.size(0) >= 3 else x[:1]
    lo, hi = x.min(), x.max()
    x = ((x - lo) / (hi - lo).clamp_min(1e-8)).expand(3, -1, -1)
    return x.permute(1, 2, 0).numpy()


def _colour_map(x: torch.Tensor) -> np.ndarray:
    """``[H, W]`` min-max scaled into the magma colour map, ``[H, W, 3]``."""
    from matplotlib import colormaps

    x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    return colormaps["magma"](x.numpy())[..., :3]


def retrieval_examples_figure(
    queries: list[np.ndarray],
    query_titles: list[str],
    matches: list[list[np.ndarray]],
    match_titles: list[list[str]],
    hits: list[list[bool]] | None,
    title: str,
    path: Path,
) -> None:
    """One row per query: the query picture, then its ranked matches, each titled and, with
    ``hits``, framed green (hit) or red (miss); written to ``path`` (headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n, k = len(queries), max(len(m) for m in matches)
    fig, axes = plt.subplots(
        n, k + 1, figsize=(1.5 * (k + 1), 1.6 * n), squeeze=False, layout="constrained"
    )
    for i in range(n):
        axes[i, 0].imshow(queries[i], aspect="auto")
        axes[i, 0].set_title(query_titles[i], fontsize=7)
        for j in range(k):
            ax = axes[i, j + 1]
            if j < len(matches[i]):
                ax.imshow(matches[i][j])
                ax.set_title(match_titles[i][j], fontsize=7)
                for spine in ax.spines.values() if hits is not None else ():
                    spine.set_edgecolor("tab:green" if hits[i][j] else "tab:red")
                    spine.set_linewidth(3)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i, 0].set_xticks([])
        axes[i, 0].set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
