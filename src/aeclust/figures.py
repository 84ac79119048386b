"""The pictures of a run directory, drawn with :mod:`aeclust.plot`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import plot
from .data import ImageSet
from .metrics import cluster_acc, hungarian_mapping, map_labels

MAP_POINTS = 10_000  # points on the 2-D latent map


def run_figures(
    out: Path, data: ImageSet, est, Z: np.ndarray, seed: int = 0, reference=None
) -> None:
    """loss.png, reconstructions.png, latent_map.png, clusters.png, neighbours.png and
    confusion.png; with
    ``reference`` (codes and clusters of the network trained without the clustering loss),
    also with_without_clustering_loss.png."""
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
    queries = np.random.default_rng(seed).choice(len(data), min(10, len(data)), replace=False)
    plot.save_figure(plot.plot_neighbours(data.X, Z, np.sort(queries)), out / "neighbours.png")
    if data.y is not None:
        ax = plot.plot_confusion(data.y, est.labels_, class_names=data.class_names)
        plot.save_figure(ax, out / "confusion.png")
    if reference is not None:
        plot.save_figure(
            compare_maps(data, (Z, est.labels_), reference, keep, seed),
            out / "with_without_clustering_loss.png",
        )
    if hasattr(est, "generate"):
        generative_figures(out, data, est, Y, keep, seed)


def generative_figures(out: Path, data: ImageSet, est, Y, keep: np.ndarray, seed: int) -> None:
    """generated.png (64 images from the priors), interpolations.png and, with labels,
    reconstruction_vs_clusters.png (Morais' Fig. 4.13) on the latent map's points."""
    from . import plot_generative as pg

    images = est.generate(64, random_state=seed)
    plot.save_figure(pg.plot_image_grid(images, 8, "Sampled from the prior"),
                     out / "generated.png")  # fmt: skip
    rng = np.random.default_rng(seed)
    pairs = [rng.choice(len(data), 2, replace=False) for _ in range(4)]
    paths = [est.interpolate(data.X[a], data.X[b], 10) for a, b in pairs]
    plot.save_figure(pg.plot_interpolations(paths), out / "interpolations.png")
    if data.y is not None:
        error = np.concatenate([  # a few hundred images at a time: X may be on disk
            np.mean((est.reconstruct(X) - X) ** 2, axis=(1, 2, 3))
            for X in (data.X[part] for part in np.array_split(keep, -(-len(keep) // 256)))
        ])  # fmt: skip
        labels = est.labels_[keep]
        correct = map_labels(labels, hungarian_mapping(data.y, est.labels_)) == data.y[keep]
        plot.save_figure(pg.plot_reconstruction_vs_clusters(Y, error, correct),
                         out / "reconstruction_vs_clusters.png")  # fmt: skip


def compare_maps(data: ImageSet, joint, reference, keep: np.ndarray, seed: int):
    """The 2-D maps of the codes learnt with (``joint``) and without (``reference``) the
    clustering loss, each a (codes, clusters) pair, coloured by true label when known."""
    maps = []
    for (Z, clusters), what in ((joint, "with"), (reference, "without")):
        Y, method = plot.embed_2d(Z[keep], random_state=seed)
        colour = clusters if data.y is None else data.y
        title = f"Codes {what} the clustering loss"
        if data.y is not None:
            title += f" (ACC {cluster_acc(data.y, clusters):.3f})"
        maps.append((Y, colour[keep], title))
    names = None if data.y is None else data.class_names
    return plot.plot_map_pair(maps, method, class_names=names)
