"""The bottleneck laboratory's figures ("Walking the tightrope" Figs. 1-4): loss curves,
reconstruction grids, linear-probe heatmaps and the SVCCA matrix."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from .plot import LABEL_SIZE, _display_images, _mosaic, _show_mosaic

SIZE_MAPS = ("Blues", "Oranges", "Greens", "Purples", "Reds")


def compression_label(c: float) -> str:
    return str(Fraction(c).limit_denominator(1 << 16))


def config_colour(size_rank: int, comp_rank: int, n_comps: int):
    """Colour by size (a colour map each), intensity by channels (darker = more)."""
    cmap = colormaps[SIZE_MAPS[size_rank % len(SIZE_MAPS)]]
    return cmap(0.35 + 0.6 * (comp_rank + 1) / max(n_comps, 1))


def _ranks(rows):
    sizes = sorted({r["size"] for r in rows})
    comps = sorted({r["compression"] for r in rows})
    return sizes, comps


def plot_loss_curves(rows: list[dict], histories: dict[str, list[dict]]):
    """Fig. 1: training (top) and test (bottom) MSE per epoch, one line per configuration."""
    sizes, comps = _ranks(rows)
    fig = Figure(figsize=(7.5, 7))
    axes = fig.subplots(2, 1, sharex=True)
    for r in rows:
        colour = config_colour(sizes.index(r["size"]), comps.index(r["compression"]), len(comps))
        h = histories[r["name"]]
        epochs = [e["epoch"] for e in h]
        for ax, key in zip(axes, ("train_mse", "test_mse"), strict=True):
            ax.plot(epochs, [e[key] for e in h], color=colour, lw=1.4, label=r["name"])
    for ax, what in zip(axes, ("training", "test"), strict=True):
        ax.set_yscale("log")
        ax.set_ylabel(f"{what} MSE (eval mode)")
        ax.grid(alpha=0.3, which="both")
    axes[1].set_xlabel("epoch")
    axes[0].legend(title="size-channels", fontsize=7, ncol=len(sizes), loc="upper right")
    axes[0].set_title("Reconstruction error per bottleneck (colour: size; darker: more channels)")
    fig.tight_layout()
    return fig


def plot_reconstruction_grid(X, recons: dict, rows: list[dict], title: str):
    """Fig. 2: for each image of X a block: the input (left), then its reconstructions,
    one row per bottleneck size, one column per compression (``recons[name]`` holds one
    reconstruction per image of X)."""
    sizes, comps = _ranks(rows)
    by_cell = {(r["size"], r["compression"]): r["name"] for r in rows}
    images = _display_images(X)
    blank = np.ones_like(images[0])
    lines, labels = [], []
    for i in range(len(images)):
        for si, s in enumerate(sizes):
            line = [images[i] if si == 0 else blank]
            for c in comps:
                name = by_cell.get((s, c))
                line.append(blank if name is None else _display_images(recons[name][i : i + 1])[0])
            lines.append(np.stack(line))
            labels.append(f"size {s}")
    canvas, centres = _mosaic(lines, len(comps) + 1)
    h, w = canvas.shape[:2]
    width = 1.1 * (len(comps) + 1) + 1
    fig = Figure(figsize=(min(12, width), min(16, h / w * width)))
    ax = fig.subplots()
    _show_mosaic(ax, canvas, centres, labels, LABEL_SIZE - 2)
    step = canvas.shape[1] / (len(comps) + 1)
    ticks = [(j + 0.5) * step for j in range(len(comps) + 1)]
    ax.set_xticks(ticks, ["input"] + [f"c = {compression_label(c)}" for c in comps], fontsize=8)
    ax.xaxis.set_ticks_position("top")
    ax.set_title(title, fontsize=9, pad=18)
    fig.tight_layout()
    return fig


def plot_probe_heatmaps(rows: list[dict]):
    """Fig. 3: macro-F1 of the linear probes per configuration (sizes x compressions), for
    the training and the test codes; colour = difference to the raw-pixel baseline (red:
    better than the pixels)."""
    configs = [r for r in rows if r["name"] != "pixels"]
    pixels = next(r for r in rows if r["name"] == "pixels")
    sizes, comps = _ranks(configs)
    fig = Figure(figsize=(10, 0.9 * len(sizes) + 2.2))
    axes = fig.subplots(1, 2)
    for ax, part in zip(axes, ("train", "test"), strict=True):
        base = pixels[f"probe_{part}_f1"]
        F = np.full((len(sizes), len(comps)), np.nan)
        for r in configs:
            F[sizes.index(r["size"]), comps.index(r["compression"])] = r[f"probe_{part}_f1"]
        span = max(float(np.nanmax(np.abs(F - base))), 1e-3)
        ax.imshow(F - base, cmap="RdBu_r", vmin=-span, vmax=span)
        labels = {(r["size"], r["compression"]): r["name"] for r in configs}
        for (si, ci), value in np.ndenumerate(F):
            if np.isfinite(value):
                text = f"{value:.3f}\n{labels[sizes[si], comps[ci]]}"
                dark = abs(value - base) > 0.6 * span  # white on the deep colours
                ax.text(ci, si, text, ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(range(len(comps)), [f"c = {compression_label(c)}" for c in comps])
        ax.set_yticks(range(len(sizes)), [f"size {s}" for s in sizes])
        ax.set_title(f"{part} codes: macro-F1 (pixels: {base:.3f})", fontsize=9)
    fig.suptitle("Linear probes (cross-validated logistic regression); red = better than pixels")
    fig.tight_layout()
    return fig


def plot_svcca(S, names: list[str], title: str):
    """Fig. 4: the pairwise SVCCA similarity, labels "size-channels"."""
    S = np.asarray(S)
    fig = Figure(figsize=(0.55 * len(names) + 2.5, 0.55 * len(names) + 2))
    ax = fig.subplots()
    im = ax.imshow(S, cmap="viridis", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(S):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                color="black" if value > 0.6 else "white")  # fmt: skip
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
