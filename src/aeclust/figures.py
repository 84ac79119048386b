"""The pictures of a run directory, drawn with :mod:`aeclust.plot`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import plot
from .data import ImageSet

MAP_POINTS = 10_000  # points on the 2-D latent map


def run_figures(out: Path, data: ImageSet, est, Z: np.ndarray, seed: int = 0) -> None:
    """loss.png, reconstructions.png, latent_map.png, clusters.png and confusion.png."""
    if est.history_:
        plot.save_figure(plot.plot_history(est.history_), out / "loss.png")
    if any("acc" in row for row in est.history_):  # joint methods score every epoch
        plot.save_figure(plot.plot_metric_history(est.history_), out / "metrics_per_epoch.png")
    show = np.linspace(0, len(data) - 1, min(10, len(data))).astype(int)
    X_hat = est.reconstruct(data.X[show])
    plot.save_figure(plot.plot_reconstructions(data.X[show], X_hat), out / "reconstructions.png")
    # UMAP of 70,000 codes takes minutes on a CPU; a seeded sample of 10,000 shows the same
    keep = np.random.default_rng(seed).permutation(len(Z))[:MAP_POINTS]
    keep.sort()
    Y, method = plot.embed_2d(Z[keep], random_state=seed)
    y_true = None if data.y is None else data.y[keep]
    fig = plot.plot_latent_map(Y, est.labels_[keep], y_true, method, class_names=data.class_names)
    plot.save_figure(fig, out / "latent_map.png")
    plot.save_figure(
        plot.plot_cluster_montage(data.X, est.labels_, random_state=seed), out / "clusters.png"
    )
    if data.y is not None:
        ax = plot.plot_confusion(data.y, est.labels_, class_names=data.class_names)
        plot.save_figure(ax, out / "confusion.png")
