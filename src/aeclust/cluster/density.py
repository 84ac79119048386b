"""Density-based clustering with scikit-learn's ``HDBSCAN``; it finds K itself."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.neighbors import NearestNeighbors

from ..errors import ConfigError
from .base import LatentClusterer, centroids

log = logging.getLogger(__name__)


class HDBSCANClusterer(LatentClusterer):
    """HDBSCAN: clusters of any shape and number; sparse codes are labelled noise (-1).

    ``n_clusters`` is ignored: HDBSCAN decides how many clusters there are
    (``n_clusters_``, noise excluded). It is deterministic, so ``random_state`` is unused.
    HDBSCAN has no rule for new points, so ``predict`` gives each new code the label of its
    nearest training code (which may be -1); the training codes and labels are therefore
    part of the saved state. ``cluster_centers_`` holds the mean code of each found
    cluster, or None when every code is noise (a warning is logged then).

    Parameters
    ----------
    min_cluster_size : int or None, default=None
        Smallest cluster; None means HDBSCAN's default of 5 unless
        ``min_cluster_size_denominator`` is given.
    min_cluster_size_denominator : int or None, default=None
        Set ``min_cluster_size = max(2, N // denominator)`` from the number of codes N,
        e.g. 10 for roughly ten clusters at most; give this or ``min_cluster_size``.
    min_samples : int or None, default=None
        Neighbours that make a point a core point; None means ``min_cluster_size``.
    cluster_selection_epsilon : float, default=0.0
    cluster_selection_method : {"eom", "leaf"}, default="eom"

    Attributes
    ----------
    min_cluster_size_ : int
        The minimum cluster size used in the last ``fit``.
    train_codes_ : ndarray of shape (N, d)
        The training codes, for ``predict``.
    """

    name = "hdbscan"
    defaults = {
        "min_cluster_size": None,
        "min_cluster_size_denominator": None,
        "min_samples": None,
        "cluster_selection_epsilon": 0.0,
        "cluster_selection_method": "eom",
    }
    needs_n_clusters = False
    state_keys = ("train_codes_",)

    def _fit(self, Z: np.ndarray, params: dict[str, Any]):
        params = dict(params)
        self.min_cluster_size_ = _min_cluster_size(
            params.pop("min_cluster_size"), params.pop("min_cluster_size_denominator"), len(Z)
        )
        labels = HDBSCAN(min_cluster_size=self.min_cluster_size_, copy=True, **params).fit(Z)
        labels = labels.labels_
        if not (labels >= 0).any():
            log.warning(
                "HDBSCAN found no cluster in %d codes: every code is noise (-1). "
                "Try a smaller min_cluster_size or min_samples.",
                len(Z),
            )
        self._index(Z)
        return labels, centroids(Z, labels)

    def check_n_samples(self, n_samples: int) -> None:
        params = {**self.defaults, **self.params}
        if n_samples < 2:
            raise ConfigError(f"HDBSCAN needs at least 2 codes; got {n_samples}.")
        _min_cluster_size(  # raises for a min_cluster_size larger than n_samples
            params["min_cluster_size"], params["min_cluster_size_denominator"], n_samples
        )
        min_samples = params["min_samples"]
        if min_samples is not None and min_samples > n_samples:
            raise ConfigError(
                f"min_samples={min_samples} is larger than the number of codes ({n_samples}); "
                "give a smaller min_samples."
            )

    def _predict(self, Z: np.ndarray) -> np.ndarray:
        nearest = self.nn_.kneighbors(Z, n_neighbors=1, return_distance=False)[:, 0]
        return self.labels_[nearest]

    def _state(self) -> dict[str, np.ndarray]:
        return {"train_codes_": self.train_codes_}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        self._index(np.ascontiguousarray(arrays["train_codes_"], dtype=np.float64))

    def _index(self, Z: np.ndarray) -> None:
        """Keep the training codes and a nearest-neighbour index over them."""
        self.train_codes_ = Z
        self.n_features_in_ = Z.shape[1]
        self.nn_ = NearestNeighbors(n_neighbors=1).fit(Z)


def _min_cluster_size(size, denominator, n_samples: int) -> int:
    """The HDBSCAN ``min_cluster_size`` from either parameter (5 when neither is given)."""
    if size is not None and denominator is not None:
        raise ConfigError(
            "Give min_cluster_size or min_cluster_size_denominator for hdbscan, not both."
        )
    if denominator is None:
        size = 5 if size is None else size
        if isinstance(size, int) and size > n_samples:
            raise ConfigError(
                f"min_cluster_size={size} is larger than the number of codes ({n_samples}); "
                "give a smaller min_cluster_size."
            )
        return size
    if isinstance(denominator, bool) or not isinstance(denominator, int) or denominator < 1:
        raise ConfigError(
            f"min_cluster_size_denominator must be a positive integer; got {denominator!r}."
        )
    return max(2, n_samples // denominator)
