"""Pictures of the generative models: images sampled from the prior, latent interpolations,
and how reconstruction quality relates to correct clustering (Morais' Fig. 4.13). Each
function takes arrays and returns the Axes, as in :mod:`aeclust.plot`."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from .errors import DataError
from .plot import LABEL_SIZE, TITLE_SIZE, _display_images, _mosaic, _new_axes, _show_mosaic


def plot_image_grid(images, n_cols: int = 8, title: str = "", ax: Axes | None = None) -> Axes:
    """``images`` (N, C, H, W) in [0, 1] tiled ``n_cols`` to a row."""
    shown = _display_images(images)
    rows = [shown[i : i + n_cols] for i in range(0, len(shown), n_cols)]
    canvas, centres = _mosaic(rows, n_cols)
    ax = _new_axes(ax, (0.8 * n_cols + 0.5, 0.8 * len(rows) + 0.8))
    _show_mosaic(ax, canvas, centres, [""] * len(rows), LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    return ax


def plot_interpolations(paths, ax: Axes | None = None) -> Axes:
    """One row per interpolation, ``paths`` (R, steps, C, H, W): from the first image of
    a row (left) to the last (right), decoded from the straight line between their codes."""
    rows = [_display_images(p) for p in paths]
    canvas, centres = _mosaic(rows, len(rows[0]))
    ax = _new_axes(ax, (0.8 * len(rows[0]) + 0.5, 0.8 * len(rows) + 0.8))
    _show_mosaic(ax, canvas, centres, [""] * len(rows), LABEL_SIZE)
    ax.set_title("Interpolation between the codes of two images (ends: their reconstructions)",
                 fontsize=TITLE_SIZE)  # fmt: skip
    return ax


def plot_reconstruction_vs_clusters(Y, error, correct, ax: Axes | None = None) -> Axes:
    """Fig. 4.13: the 2-D map ``Y`` (N, 2) of the codes, coloured by each image's
    reconstruction error (green = good, red = bad, by rank), circles for images clustered
    correctly (``correct``, after matching clusters to classes), crosses for the others."""
    Y, error, correct = np.asarray(Y), np.asarray(error), np.asarray(correct, dtype=bool)
    if not len(Y) == len(error) == len(correct):
        raise DataError(f"Y, error and correct differ in length: {len(Y)}, {len(error)}, "
                        f"{len(correct)}.")  # fmt: skip
    rank = np.argsort(np.argsort(error)) / max(len(error) - 1, 1)  # 0 = best reconstructed
    ax = _new_axes(ax, (6.5, 5))
    size = float(np.clip(300 / np.sqrt(max(len(Y), 1)), 2, 30))
    style = dict(cmap="RdYlGn_r", vmin=0, vmax=1, s=size, rasterized=len(Y) > 5000)
    ax.scatter(*Y[correct].T, c=rank[correct], marker="o", alpha=0.5, lw=0, **style)
    ax.scatter(*Y[~correct].T, c=rank[~correct], marker="x", alpha=0.8, linewidths=0.8, **style)
    grey = dict(ls="", color="grey")
    handles = [Line2D([], [], marker="o", label="clustered correctly", **grey),
               Line2D([], [], marker="x", label="clustered wrongly", **grey)]  # fmt: skip
    ax.legend(handles=handles, fontsize="small", loc="best")
    r = np.corrcoef(rank, correct)[0, 1] if 0 < correct.mean() < 1 else float("nan")
    title = "Reconstruction (green = better) against correct clustering\n"
    title += f"correlation of error rank with correctness: {r:.2f}"
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=8)
    return ax
