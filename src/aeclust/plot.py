"""Figures for a run: training curves, reconstructions, latent maps, cluster examples.

Every function takes plain arrays and draws on ``ax`` (a new figure when ``ax`` is None),
then returns the Axes, or the Figure for multi-panel plots. New figures are created with
:class:`matplotlib.figure.Figure`, not pyplot, so nothing is kept in global state and no
GUI is needed; get a figure with ``ax.figure`` and write it with :func:`save_figure`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path

import numpy as np
from matplotlib import colormaps, patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .cluster.numba_cache import import_umap
from .cluster.reducers import UMAPReducer
from .errors import ConfigError, DataError, MissingDependencyError
from .metrics import NOISE, contingency, matched_row_order  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

NOISE_COLOR = "#c4c4c4"
_HALO = [patheffects.withStroke(linewidth=2, foreground="white")]
TITLE_SIZE = 12
LABEL_SIZE = 10
Names = Sequence[str] | None  # class_names[label] is the name of integer label `label`


def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    return Figure(figsize=figsize, layout="constrained").add_subplot()


# ----------------------------------------------------------------------------- training


# the terms of the generative models' objectives, plotted beside the total loss
LOSS_TERMS = ("reconstruction", "adversarial", "discriminator", "kl", "layer_matching")


def _series(history: Sequence[Mapping], keys) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per key, the (epochs, values) where the key has a finite number (keys may be sparse)."""
    out: dict[str, tuple[list, list]] = {}
    for i, entry in enumerate(history):
        epoch = entry.get("epoch", i + 1)
        for key, value in entry.items():
            if key == "epoch" or not keys(key):
                continue
            if isinstance(value, Real) and not isinstance(value, bool) and np.isfinite(value):
                xs, ys = out.setdefault(key, ([], []))
                xs.append(epoch)
                ys.append(float(value))
    return {k: (np.asarray(x), np.asarray(y)) for k, (x, y) in out.items()}


def _draw_series(ax: Axes, series, ylabel: str, title: str) -> Axes:
    for key, (x, y) in series.items():
        ax.plot(x, y, marker="o" if len(x) <= 30 else None, ms=3, lw=1.5, label=key)
    ax.set_xlabel("epoch", fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize="small", frameon=False)
    return ax


def plot_history(history: Sequence[Mapping], ax: Axes | None = None) -> Axes:
    """Plot every numeric key containing "loss" (and the terms of :data:`LOSS_TERMS`)
    against the epoch, with a dotted line at each epoch that followed a rollback; returns
    the Axes.

    ``history`` is a list of per-epoch dicts, e.g. ``{"epoch": 1, "loss": 0.1, "lr": 1e-3}``.
    Keys may appear in some epochs only; non-numeric and non-finite values are skipped;
    without "epoch" the position (1, 2, ...) is used. The y axis is logarithmic when the
    values span more than a factor 10. Raises :class:`DataError` if there is no loss.
    """
    series = _series(history, lambda k: "loss" in k or k in LOSS_TERMS)
    if not series:
        raise DataError("The training history has no numeric '...loss...' values to plot.")
    ax = _new_axes(ax, (6.5, 4))
    _draw_series(ax, series, "loss", "Training loss")
    for i, entry in enumerate(history):  # divergences rolled back (aeclust.training.divergence)
        if "diverged" in entry:
            epoch = entry.get("epoch", i + 1)
            ax.axvline(epoch, color="crimson", ls=":", lw=1)
            ax.annotate("rollback ", (epoch, 1), xycoords=("data", "axes fraction"), fontsize=7,
                        color="crimson", ha="right", va="top", rotation=90)  # fmt: skip
    values = np.concatenate([y for _, y in series.values()])
    if values.min() > 0 and values.max() > 10 * values.min():
        ax.set_yscale("log")
    return ax


def plot_metric_history(
    history: Sequence[Mapping], keys: Sequence[str] = ("acc", "nmi"), ax: Axes | None = None
) -> Axes:
    """Plot per-epoch metrics such as ``acc`` or ``nmi`` against the epoch; returns the Axes.

    Keys absent from every epoch are skipped (:class:`DataError` if all are); the y axis
    spans [0, 1] when all values do.
    """
    wanted = list(keys)
    series = _series(history, lambda k: k in wanted)
    if not series:
        raise DataError(f"The training history has no numeric values for any of {wanted}.")
    series = {k: series[k] for k in wanted if k in series}
    ax = _new_axes(ax, (6.5, 4))
    _draw_series(ax, series, "score", "Metrics during training")
    values = np.concatenate([y for _, y in series.values()])
    if values.min() >= 0 and values.max() <= 1:
        ax.set_ylim(0, 1.02)
    return ax


# ----------------------------------------------------------------------------- images


def _display_images(X) -> np.ndarray:
    """(N, C, H, W) or (N, H, W) -> (N, H, W) grey or (N, H, W, 3) RGB, clipped to [0, 1]."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim not in (3, 4):
        raise DataError(f"Expected images of shape (N, C, H, W); got shape {X.shape}.")
    X = np.clip(X, 0, 1)
    if X.ndim == 3:
        return X
    return X.transpose(0, 2, 3, 1) if X.shape[1] == 3 else X[:, 0]


def _mosaic(rows: list[np.ndarray], n_cols: int, fill: float = 1.0):
    """Tile rows of images into one picture (short rows padded); also the row centres."""
    h, w = rows[0].shape[1:3]
    pad = max(1, h // 10)
    shape = (len(rows) * (h + pad) - pad, n_cols * (w + pad) - pad, *rows[0].shape[3:])
    canvas = np.full(shape, fill, dtype=np.float32)
    for r, images in enumerate(rows):
        for c, image in enumerate(images[:n_cols]):
            canvas[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = image
    return canvas, np.arange(len(rows)) * (h + pad) + (h - 1) / 2


def _show_mosaic(ax: Axes, canvas: np.ndarray, row_centres, row_labels, fontsize) -> None:
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks(row_centres, row_labels, fontsize=fontsize)
    ax.tick_params(axis="y", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_reconstructions(X, X_hat, n: int = 10, ax: Axes | None = None) -> Axes:
    """Show ``n`` inputs (top row) above their reconstructions (bottom row); returns the Axes.

    Parameters
    ----------
    X, X_hat : ndarray of shape (N, C, H, W)
        Values in [0, 1] (clipped). C = 1 is shown in grey, C = 3 as RGB, other C by the
        first channel.
    n : int
        Number of pairs, evenly spaced over the N items (a dataset sorted by class shows
        several classes). The title gives the mean squared error over all N images.
    """
    X, X_hat = np.asarray(X, dtype=np.float32), np.asarray(X_hat, dtype=np.float32)
    if X.shape != X_hat.shape:
        raise DataError(f"X has shape {X.shape} but X_hat has shape {X_hat.shape}.")
    n = max(1, min(int(n), len(X)))
    index = np.linspace(0, len(X) - 1, n).round().astype(int)
    mse = float(np.mean((np.clip(X, 0, 1) - np.clip(X_hat, 0, 1)) ** 2))
    canvas, rows = _mosaic([_display_images(X[index]), _display_images(X_hat[index])], n)
    ax = _new_axes(ax, (max(4.0, 0.85 * n + 1.5), 2.6))
    _show_mosaic(ax, canvas, rows, ["input", "reconstruction"], LABEL_SIZE)
    ax.set_title(f"Reconstructions (mean squared error {mse:.4g})", fontsize=TITLE_SIZE)
    return ax


def plot_cluster_montage(
    X, clusters, n_per_cluster: int = 10, random_state: int | None = 0, ax: Axes | None = None
) -> Axes:
    """One row of example images per cluster, largest first, noise (-1) last; returns the Axes.

    Parameters
    ----------
    X : ndarray of shape (N, C, H, W)
        Images in [0, 1], shown as in :func:`plot_reconstructions`.
    clusters : ndarray of shape (N,)
        Cluster labels; -1 marks noise.
    n_per_cluster : int
        Up to this many examples per row, drawn without replacement (seeded by
        ``random_state``); smaller clusters leave their row partly empty. A new figure
        gets a height that keeps ~50 rows readable.
    """
    clusters = np.asarray(clusters).ravel()
    if len(X) != len(clusters):
        raise DataError(f"X has {len(X)} images but clusters has {len(clusters)} labels.")
    rng = np.random.default_rng(random_state)
    ids, counts = np.unique(clusters, return_counts=True)  # by size, noise last:
    order = sorted(range(len(ids)), key=lambda i: (ids[i] == NOISE, -counts[i], ids[i]))
    ids, counts = ids[order], counts[order]
    rows = []
    for k in ids:
        members = np.flatnonzero(clusters == k)
        take = rng.choice(members, size=min(n_per_cluster, len(members)), replace=False)
        rows.append(_display_images(X[np.sort(take)]))  # reads only these (X may be on disk)
    canvas, centres = _mosaic(rows, n_per_cluster)
    names = [
        f"{_label_name(k, None, 'cluster ')} (n={c})" for k, c in zip(ids, counts, strict=True)
    ]
    tile = float(np.clip(12 / len(ids), 0.3, 0.7))  # inches per image
    ax = _new_axes(ax, (tile * n_per_cluster + 2.0, tile * len(ids) + 0.8))
    _show_mosaic(ax, canvas, centres, names, 9 if tile > 0.4 else 7)
    ax.set_title("Examples per cluster", fontsize=TITLE_SIZE)
    return ax


def plot_neighbours(X, Z, queries, n_neighbours: int = 10, ax: Axes | None = None) -> Axes:
    """One row per query image (first column) followed by its ``n_neighbours`` nearest
    images in the code space ``Z`` (N, d), by Euclidean distance, nearest first (the
    one-stage autoencoders' Fig. 6). ``X`` (N, C, H, W) in [0, 1]; ``queries`` are indices."""
    from sklearn.neighbors import NearestNeighbors

    Z = np.asarray(Z, dtype=np.float32).reshape(len(Z), -1)
    if len(Z) != len(X):
        raise DataError(f"X has {len(X)} images but Z has {len(Z)} codes.")
    queries = np.asarray(queries, dtype=int)
    k = min(n_neighbours + 1, len(Z))
    _, found = NearestNeighbors(n_neighbors=k).fit(Z).kneighbors(Z[queries])
    rows = []
    for q, near in zip(queries, found, strict=True):
        near = [i for i in near if i != q][: k - 1]
        rows.append(_display_images(X[[q, *near]]))
    canvas, centres = _mosaic(rows, k)
    ax = _new_axes(ax, (0.6 * k + 1.5, 0.6 * len(rows) + 0.8))
    _show_mosaic(ax, canvas, centres, [f"image {q}" for q in queries], LABEL_SIZE)
    ax.set_title("Nearest neighbours in the code space (first column: the query)",
                 fontsize=TITLE_SIZE)  # fmt: skip
    return ax


# ----------------------------------------------------------------------------- latent space


def embed_2d(Z, random_state: int | None = 0, method: str = "auto") -> tuple[np.ndarray, str]:
    """Reduce latent codes to 2-D for plotting.

    Parameters
    ----------
    Z : ndarray of shape (N, D)
        Latent codes (extra dimensions are flattened).
    random_state : int or None
        Seed for UMAP (which then runs single-threaded) or PCA.
    method : {"auto", "umap", "tsne", "pca"}
        "auto" uses UMAP when umap-learn is installed and N >= 20, else PCA; codes that are
        already 2-D are returned unchanged. "umap" raises if umap-learn is missing; "tsne"
        is scikit-learn's t-SNE (perplexity 30, or less for few points), after PCA to 50
        dimensions when the codes have more.

    Returns
    -------
    Y : ndarray of shape (N, 2)
    method_name : {"UMAP", "t-SNE", "PCA", "latent"}
        Ready for :func:`plot_latent_map` (``method=method_name``).

    All points are kept. PCA is instant; UMAP takes a few seconds for 5,000 codes once
    its numba code is in the cache (:mod:`aeclust.cluster.numba_cache`) and minutes for
    70,000 on a CPU, as a seed disables its parallelism.
    """
    if method not in ("auto", "umap", "tsne", "pca"):
        raise ConfigError(
            f"Unknown embedding method {method!r}; use 'auto', 'umap', 'tsne' or 'pca'."
        )
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z.reshape(len(Z), -1)
    if len(Z) < 2 or not np.isfinite(Z).all():
        raise DataError(f"Need at least 2 finite latent codes to embed; got shape {Z.shape}.")
    if method == "auto" and Z.shape[1] == 2:
        return Z, "latent"
    if method == "tsne" and len(Z) > 3:
        return _tsne(Z, random_state), "t-SNE"
    umap = None
    if method == "umap" or (method == "auto" and len(Z) >= 20):
        try:
            umap = import_umap("The UMAP embedding")
        except MissingDependencyError:
            if method == "umap":
                raise
            log.info("umap-learn is not installed; using PCA for the 2-D embedding.")
    if umap is not None and len(Z) > 3:  # UMAP to 2-D needs more than 3 points
        neighbours = max(2, min(15, len(Z) - 1))
        reducer = UMAPReducer(2, random_state, n_neighbors=neighbours, min_dist=0.1)
        return np.asarray(reducer.fit_transform(Z), dtype=np.float64), "UMAP"
    from sklearn.decomposition import PCA

    if Z.shape[1] < 2:  # PCA cannot find more components than features
        Z = np.hstack([Z, np.zeros((len(Z), 2 - Z.shape[1]))])
    return PCA(n_components=2, random_state=random_state).fit_transform(Z), "PCA"


def _tsne(Z: np.ndarray, random_state) -> np.ndarray:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if min(Z.shape) > 50:  # the usual speed-up: t-SNE on the first 50 principal components
        Z = PCA(n_components=50, random_state=random_state).fit_transform(Z)
    perplexity = float(min(30, (len(Z) - 1) / 3))
    tsne = TSNE(2, perplexity=perplexity, init="pca", random_state=random_state)
    return tsne.fit_transform(Z)


def _label_name(label, class_names: Names, prefix: str = "") -> str:
    if label == NOISE:
        return "noise"
    if class_names is not None and isinstance(label, (int, np.integer)):
        if 0 <= label < len(class_names):
            return str(class_names[label])
    return f"{prefix}{label}"


def plot_embedding(
    Y, labels, ax: Axes | None = None, title: str | None = None, *, class_names: Names = None
) -> Axes:
    """Scatter 2-D points ``Y`` (N, 2) coloured by ``labels`` (N,); returns the Axes.

    Label -1 is noise, drawn underneath in light grey. Up to 20 labels get a legend with
    counts (names from ``class_names[label]`` when given); with more, each label is written
    at its median position. Points are rasterized when N > 5,000.
    """
    Y, labels = np.asarray(Y, dtype=float), np.asarray(labels).ravel()
    if Y.ndim != 2 or Y.shape[1] != 2 or len(Y) != len(labels):
        raise DataError(f"Expected Y of shape (N, 2) and N labels; got {Y.shape}, {labels.shape}.")
    ax = _new_axes(ax, (6.5, 5))
    ids = [k for k in np.unique(labels) if k != NOISE]
    cmap = colormaps["tab10" if len(ids) <= 10 else "tab20" if len(ids) <= 20 else "turbo"]
    # many labels: step around the colour map so neighbouring ids get distinct colours
    colours = cmap((np.arange(len(ids)) * 0.618) % 1) if len(ids) > 20 else cmap.colors
    size = float(np.clip(200 / np.sqrt(max(len(Y), 1)), 0.5, 20))
    style = dict(s=size, alpha=0.75 if len(Y) < 5000 else 0.5, lw=0, rasterized=len(Y) > 5000)
    if np.any(labels == NOISE):
        m = labels == NOISE
        ax.scatter(*Y[m].T, color=NOISE_COLOR, label=f"noise ({m.sum()})", **style)
    for k, colour in zip(ids, colours, strict=False):  # tab colours: more than ids
        m = labels == k
        ax.scatter(
            *Y[m].T, color=colour, label=f"{_label_name(k, class_names)} ({m.sum()})", **style
        )
        if len(ids) > 20:
            xy = np.median(Y[m], axis=0)
            ax.annotate(str(k), xy, fontsize=7, ha="center", va="center", path_effects=_HALO)
    if len(ids) <= 20:
        kw = dict(loc="center left", bbox_to_anchor=(1, 0.5), fontsize="small", frameon=False)
        for handle in ax.legend(markerscale=np.sqrt(40 / size), **kw).legend_handles:
            handle.set_alpha(1)
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)
    return ax


def plot_latent_map(
    Y, clusters, y_true=None, method: str = "UMAP", *, class_names: Names = None
) -> Figure:
    """The embedding coloured by cluster and, given ``y_true``, by true label: a Figure.

    Parameters
    ----------
    Y : ndarray of shape (N, 2)
        Output of :func:`embed_2d`.
    clusters, y_true : ndarray of shape (N,)
        Cluster labels (-1 = noise) and optional true labels (a second panel).
    method : str
        Name of the embedding for the axis labels ("UMAP-1", "PCA-2", ...).
    class_names : sequence of str, optional
        Names of the true labels.
    """
    panels = [(clusters, "by cluster", None)]
    if y_true is not None:
        panels.append((y_true, "by true label", class_names))
    fig = Figure(figsize=(7 * len(panels), 5.2), layout="constrained")
    for i, (labels, what, names) in enumerate(panels):
        n = len(set(np.asarray(labels).ravel().tolist()) - {NOISE})
        ax = plot_embedding(Y, labels, fig.add_subplot(1, len(panels), i + 1), class_names=names)
        ax.set_title(f"Coloured {what} ({n} {'clusters' if i == 0 else 'classes'})")
        ax.set_xlabel(f"{method}-1", fontsize=LABEL_SIZE)
        ax.set_ylabel(f"{method}-2", fontsize=LABEL_SIZE)
    fig.suptitle(f"Latent space ({method}, {len(Y)} points)", fontsize=TITLE_SIZE + 1)
    return fig


def plot_map_pair(
    maps, method: str = "UMAP", *, class_names: Names = None, ncols: int | None = None
) -> Figure:
    """2-D maps side by side, e.g. codes learnt with and without a clustering loss (Fig. 2
    of the DCAE paper), or one t-SNE map per model (Fig. 6 of Liu & Zhang). ``maps`` is a
    sequence of ``(Y, labels, title)`` with ``Y`` (N, 2) from :func:`embed_2d`;
    ``class_names`` names the labels; ``ncols`` maps per row (default: all in one row).
    Returns the Figure."""
    ncols = min(ncols or len(maps), len(maps))
    nrows = -(-len(maps) // ncols)
    fig = Figure(figsize=(7 * ncols, 5.2 * nrows), layout="constrained")
    for i, (Y, labels, title) in enumerate(maps):
        ax = plot_embedding(Y, labels, fig.add_subplot(nrows, ncols, i + 1), title,
                            class_names=class_names)  # fmt: skip
        ax.set_xlabel(f"{method}-1", fontsize=LABEL_SIZE)
        ax.set_ylabel(f"{method}-2", fontsize=LABEL_SIZE)
    return fig


# ----------------------------------------------------------------------------- evaluation


def plot_confusion(y_true, clusters, ax: Axes | None = None, class_names: Names = None) -> Axes:
    """Clusters (rows) against true labels (columns), rows ordered by the best matching.

    ``y_true`` and ``clusters`` have shape (N,); noise (-1) is the last row. Colour is the
    share of the cluster (row) in each class; counts are written when there are at most 400
    cells. The Hungarian matching is outlined, and the title gives the share of items in
    matched cells (the clustering accuracy, noise counted as wrong). Returns the Axes.
    """
    M, cluster_ids, class_ids = contingency(y_true, clusters)
    noise = np.flatnonzero(cluster_ids == NOISE)
    order, matched_col = matched_row_order(M, int(noise[0]) if len(noise) else None)
    M, matched_col, ids = M[order], matched_col[order], cluster_ids[order]
    share = M / np.maximum(M.sum(axis=1, keepdims=True), 1)
    R, K = M.shape
    ax = _new_axes(ax, (float(np.clip(2.5 + 0.5 * K, 5, 16)), float(np.clip(1.5 + 0.4 * R, 3, 20))))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.02).set_label("share of the cluster")
    if R * K <= 400:
        fontsize = 9 if R * K <= 150 else 7
        for (i, j), count in np.ndenumerate(M):
            if count:
                colour = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, str(count), ha="center", va="center", fontsize=fontsize, color=colour)
    for i, j in enumerate(matched_col):
        if j >= 0:
            box = Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="#d62728", lw=1.5)
            ax.add_patch(box).set_clip_on(False)
    cols = [_label_name(k, class_names) for k in class_ids]
    ax.set_xticks(range(K), cols, fontsize=8, rotation=45 if max(map(len, cols)) > 3 else 0)
    rows = [f"{_label_name(k, None)} (n={n})" for k, n in zip(ids, M.sum(1), strict=True)]
    ax.set_yticks(range(R), rows, fontsize=8)
    ax.set_xlabel("true label", fontsize=LABEL_SIZE)
    ax.set_ylabel("cluster", fontsize=LABEL_SIZE)
    matched = sum(M[i, j] for i, j in enumerate(matched_col) if j >= 0) / max(M.sum(), 1)
    ax.set_title(f"Clusters vs. true labels (matched: {matched:.1%})", fontsize=TITLE_SIZE)
    return ax


def plot_score_bars(rows, keys=("f1", "acc"), ax: Axes | None = None) -> Axes:
    """Horizontal bars of the mean scores of each method with their standard deviation over
    folds as error bars; ``rows`` as :func:`aeclust.protocol.summarise` returns them."""
    rows = list(rows)[::-1]  # the best method on top
    ax = _new_axes(ax, (7.5, 0.55 * len(rows) * len(keys) + 1.2))
    height = 0.8 / len(keys)
    y = np.arange(len(rows))
    for i, key in enumerate(keys):
        means = [r[key] for r in rows]
        spread = [r.get(f"{key}_std", 0.0) for r in rows]
        ax.barh(y + (i - (len(keys) - 1) / 2) * height, means, height, xerr=spread,
                label=key.upper().replace("_", " "), capsize=3)  # fmt: skip
    ax.set_yticks(y, [r["method"] for r in rows])
    ax.set_xlim(0, 1)
    ax.set_xlabel("score (mean over folds; bars: ±1 std)", fontsize=LABEL_SIZE)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("Scores per method, best on top", fontsize=TITLE_SIZE)
    return ax


def save_figure(fig_or_ax, path, dpi: int = 110) -> Path:
    """Save a Figure (or the figure of an Axes) to ``path``, creating folders, then close it.

    The format follows the suffix (.png, .pdf, .svg). Returns the path.
    """
    fig = fig_or_ax
    if isinstance(fig, Axes):
        fig = fig.get_figure(root=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    if "matplotlib.pyplot" in sys.modules:  # only pyplot keeps figures alive
        sys.modules["matplotlib.pyplot"].close(fig)
    return path
