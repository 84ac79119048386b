"""Gaussian mixture clustering (scikit-learn ``GaussianMixture``), saved without pickle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.mixture import GaussianMixture

from .base import LatentClusterer


class GMMClusterer(LatentClusterer):
    """Gaussian mixture model; each code goes to its most probable component.

    The state is the fitted parameters: ``weights_`` (K,), ``cluster_centers_`` (K, d) (the
    means), ``covariances_`` and ``precisions_cholesky_`` ((K, d, d) for "full"). Restoring
    sets them on a fresh ``GaussianMixture``, whose ``predict`` then matches the original.

    Parameters
    ----------
    n_clusters : int, default=10
        Number of components K.
    random_state : int or None
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
    n_init : int, default=10
        EM runs from different k-means starts; the one with the best likelihood is kept.
        scikit-learn's default is 1, but on UMAP-reduced codes a single start sometimes
        merges two classes and splits a third; in our mnist5k runs ten starts scored up
        to 0.016 ACC higher and never lower, for a few seconds (on fashion-mnist the
        better likelihood was not always the better ACC; BENCHMARKS.md).
    reg_covar : float, default=1e-6
        Added to the covariance diagonals, for stability.
    max_iter : int, default=100
    tol : float, default=1e-3
    init_params : str, default="kmeans"

    Attributes
    ----------
    model_ : sklearn.mixture.GaussianMixture
    """

    name = "gmm"
    defaults = {
        "covariance_type": "full",
        "n_init": 10,
        "reg_covar": 1e-6,
        "max_iter": 100,
        "tol": 1e-3,
        "init_params": "kmeans",
    }
    state_keys = ("weights_", "covariances_", "precisions_cholesky_")

    def _fit(self, Z: np.ndarray, params: dict[str, Any]):
        self.model_ = GaussianMixture(
            n_components=self.n_clusters, random_state=self.random_state, **params
        ).fit(Z)
        # predict (not fit's own labels) so that predict(Z) == labels_ holds exactly
        return self.model_.predict(Z), self.model_.means_

    def _predict(self, Z: np.ndarray) -> np.ndarray:
        return self.model_.predict(Z)

    def _state(self) -> dict[str, np.ndarray]:
        return {key: getattr(self.model_, key) for key in self.state_keys}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        params = self.get_config()["params"]
        model = GaussianMixture(
            n_components=self.n_clusters, random_state=self.random_state, **params
        )
        model.means_ = self.cluster_centers_
        for key in self.state_keys:
            setattr(model, key, np.asarray(arrays[key], dtype=np.float64))
        model.n_features_in_ = self.cluster_centers_.shape[1]
        self.model_ = model
        self.n_features_in_ = model.n_features_in_
