"""Segmentation as pure functions: segment maps to consecutive labels, the median rule that
turns them into foreground masks, the paper's scores (one-stage autoencoders, appendix A,
eqs. 23-25) and the colour k-means baseline of its Table 2.

Shapes: a batch of segment maps or masks is (N, H, W); images are (N, C, H, W).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from .errors import DataError

POLARITIES = ("border", "none")


def consecutive(segments: np.ndarray) -> np.ndarray:
    """Each map's labels renumbered 0..n-1 in increasing order (so no label is skipped, as
    section 2.2 asks): (N, H, W) int64."""
    out = np.empty(segments.shape, dtype=np.int64)
    for i, s in enumerate(segments):
        out[i] = np.unique(s, return_inverse=True)[1].reshape(s.shape)
    return out


def n_segments(segments: np.ndarray) -> np.ndarray:
    """The number of distinct labels in each map, (N,) int64."""
    return np.array([len(np.unique(s)) for s in segments], dtype=np.int64)


def median_masks(segments: np.ndarray, polarity: str = "border") -> np.ndarray:
    """Foreground masks (N, H, W) bool from ordered segment maps by the median rule of
    section 3.2: in each map, the lower half of its sorted labels is background, the upper
    half foreground (with n labels, the first n // 2; one label is all foreground).

    The rule alone does not say which end of the order is the object, and an unsupervised
    order need not put it on top. ``polarity="border"`` (default) swaps a mask whose
    foreground covers more of the image's border than its background does, since an object
    is seldom mostly border; ``"none"`` is the paper's rule as written. Both LOC and the
    k-means baseline go through this function, so they are compared on the same rule.
    """
    if polarity not in POLARITIES:
        raise DataError(f"polarity must be one of {POLARITIES}; got {polarity!r}")
    masks = np.empty(segments.shape, dtype=bool)
    for i, s in enumerate(segments):
        labels = np.unique(s)
        m = s >= labels[len(labels) // 2]
        if polarity == "border" and len(labels) > 1 and _border(m).mean() > 0.5:
            m = ~m
        masks[i] = m
    return masks


def _border(mask: np.ndarray) -> np.ndarray:
    return np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])


def _masks(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    if y_true.shape != y_pred.shape or y_true.ndim != 3:
        raise DataError(
            f"Masks must be two (N, H, W) arrays of the same shape; got {y_true.shape} and "
            f"{y_pred.shape}."
        )
    return y_true.reshape(len(y_true), -1), y_pred.reshape(len(y_pred), -1)


def pixel_accuracy(y_true, y_pred) -> float:
    """The share of pixels whose mask value is right, over all images (eq. 23)."""
    t, p = _masks(y_true, y_pred)
    return float((t == p).mean())


def pixel_accuracy_per_image(y_true, y_pred) -> np.ndarray:
    """The share of right pixels in each image (N,)."""
    t, p = _masks(y_true, y_pred)
    return (t == p).mean(1)


def iou_per_image(y_true, y_pred) -> np.ndarray:
    """|t ∧ p| / |t ∨ p| of each image (N,); 1 where both masks are empty (they agree)."""
    t, p = _masks(y_true, y_pred)
    inter, union = (t & p).sum(1), (t | p).sum(1)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def dice_per_image(y_true, y_pred) -> np.ndarray:
    """2 |t ∧ p| / (|t| + |p|) of each image (N,); 1 where both masks are empty."""
    t, p = _masks(y_true, y_pred)
    inter, total = (t & p).sum(1), t.sum(1) + p.sum(1)
    return np.where(total > 0, 2 * inter / np.maximum(total, 1), 1.0)


def iou(y_true, y_pred) -> float:
    """Intersection over union averaged over images (eq. 24)."""
    return float(iou_per_image(y_true, y_pred).mean())


def dice(y_true, y_pred) -> float:
    """The Sørensen-Dice coefficient averaged over images (eq. 25)."""
    return float(dice_per_image(y_true, y_pred).mean())


def segmentation_scores(y_true, y_pred) -> dict:
    """``{"pixel_acc", "iou", "dice"}`` of predicted against true masks (N, H, W)."""
    return {
        "pixel_acc": pixel_accuracy(y_true, y_pred),
        "iou": iou(y_true, y_pred),
        "dice": dice(y_true, y_pred),
    }


def kmeans_segments(
    X: np.ndarray, n_clusters: int = 2, positions: float = 0.0, random_state: int = 0
) -> np.ndarray:
    """The paper's K-means row: k-means on each image's pixel colours on its own, the
    clusters ordered by mean brightness (so the median rule has an order to split), (N, H,
    W) int64. ``positions`` > 0 appends each pixel's (row, col), scaled to [0, positions],
    to its colour, so nearby pixels tend to share a cluster."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 4:
        raise DataError(f"Images must be (N, C, H, W); got shape {X.shape}.")
    n, c, h, w = X.shape
    rows, cols = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    where = np.stack([rows.ravel(), cols.ravel()], 1) * positions
    out = np.empty((n, h, w), dtype=np.int64)
    for i, image in enumerate(X):
        pixels = image.reshape(c, -1).T  # (H*W, C)
        feats = np.concatenate([pixels, where], 1) if positions > 0 else pixels
        k = min(n_clusters, len(np.unique(pixels, axis=0)))
        km = KMeans(k, n_init=3, random_state=random_state).fit(feats)
        order = np.argsort(np.argsort(km.cluster_centers_[:, :c].mean(1)))
        out[i] = order[km.labels_].reshape(h, w)
    return out
