"""Checks shared by the loaders and the estimators: shapes, values, labels."""

from __future__ import annotations

import numpy as np

from ..errors import ConfigError, DataError


def to_images(X, image_shape=None) -> np.ndarray:
    """Return ``X`` as a float32 array of shape (N, C, H, W), or raise :class:`DataError`.

    Accepted inputs: (N, C, H, W) images; (N, H, W) single-channel images; (N, D) flat
    vectors, reshaped to ``image_shape`` = (C, H, W) when given, else kept as (N, 1, 1, D).
    """
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise DataError(f"Images must be numeric; got an array of dtype {X.dtype}.")
    if X.ndim not in (2, 3, 4):
        raise DataError(
            f"Expected images of shape (N, C, H, W), (N, H, W) or flat vectors (N, D); "
            f"got an array with {X.ndim} dimension(s), shape {X.shape}. "
            "Reshape it, e.g. X.reshape(len(X), -1) for flat vectors."
        )
    if X.shape[0] == 0:
        raise DataError("The data is empty (0 samples); give at least 2 images.")
    if X.size == 0:
        raise DataError(f"The images are empty (shape {X.shape}); each needs at least one pixel.")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X.reshape(len(X), -1)).all(axis=1))
        raise DataError(
            f"The data contains NaN or infinite values in {len(bad)} sample(s) "
            f"(first indices: {bad[:5].tolist()}). Remove or impute them first."
        )
    if X.ndim == 3:
        X = X[:, None]
    elif X.ndim == 2:
        if image_shape is None:
            X = X[:, None, None, :]
        else:
            shape = tuple(int(s) for s in image_shape)
            if len(shape) == 2:
                shape = (1, *shape)
            if len(shape) != 3 or int(np.prod(shape)) != X.shape[1]:
                raise DataError(
                    f"image_shape={tuple(image_shape)} does not fit vectors of length "
                    f"{X.shape[1]}; "
                    "give (C, H, W) with C*H*W equal to the number of features."
                )
            X = X.reshape(len(X), *shape)
    return X


def check_labels(y, n_samples: int) -> np.ndarray | None:
    """Return labels as an int64 array of length ``n_samples`` (or None), or raise."""
    if y is None:
        return None
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"Labels must be a 1-D array; got shape {y.shape}.")
    if len(y) != n_samples:
        raise DataError(
            f"There are {len(y)} labels for {n_samples} images; give exactly one label per image."
        )
    if y.dtype.kind in "iub":
        return y.astype(np.int64)
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise DataError(
                "Labels must be whole numbers (or strings); found fractional or NaN values."
            )
        return y.astype(np.int64)
    # strings or other categories: encode in sorted order
    _, codes = np.unique(y.astype(str), return_inverse=True)
    return codes.astype(np.int64)


def check_n_clusters(n_clusters, n_samples: int) -> int:
    """Return ``n_clusters`` as an int in [2, n_samples], or raise."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, int | np.integer):
        raise ConfigError(f"n_clusters must be an integer; got {n_clusters!r}.")
    if n_clusters < 2:
        raise ConfigError(f"n_clusters={n_clusters} is too small; ask for at least 2 clusters.")
    if n_clusters > n_samples:
        raise ConfigError(
            f"n_clusters={n_clusters} is larger than the number of samples ({n_samples}); "
            "ask for fewer clusters or give more data."
        )
    return int(n_clusters)
