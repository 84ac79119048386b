"""Clusterers whose clusters are represented by centres: k-means, mini-batch k-means, Ward.

All three predict a new code by its nearest centre, so their saved state is the centres
(K, d) plus the training labels; no pickle is needed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans, MiniBatchKMeans

from ..errors import ModelFileError
from .base import LatentClusterer, centroids
from .centers import assign_nearest

log = logging.getLogger(__name__)

# Ward needs the (N, N) distances; beyond this many codes it is slow and memory-hungry
WARD_LARGE_N = 30_000


class CentroidClusterer(LatentClusterer):
    """Base of the clusterers that predict by the nearest of ``cluster_centers_``."""

    def _predict(self, Z: np.ndarray) -> np.ndarray:
        return assign_nearest(Z, self.cluster_centers_)

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        if self.cluster_centers_ is None:
            raise ModelFileError(f"The saved {self.name} clusterer has no cluster_centers_.")
        self.n_features_in_ = self.cluster_centers_.shape[1]


class KMeansClusterer(CentroidClusterer):
    """k-means (scikit-learn ``KMeans``, k-means++ initialisation).

    ``predict`` assigns each code to its nearest centre, as ``KMeans.predict`` does.

    Parameters
    ----------
    n_clusters : int, default=10
    random_state : int or None
    n_init : int, default=10
        Number of k-means++ restarts; the one with the lowest inertia is kept.
    max_iter : int, default=300
    tol : float, default=1e-4
    """

    name = "kmeans"
    defaults = {"n_init": 10, "max_iter": 300, "tol": 1e-4}

    def _fit(self, Z: np.ndarray, params: dict[str, Any]):
        model = KMeans(
            n_clusters=self.n_clusters, init="k-means++", random_state=self.random_state, **params
        ).fit(Z)
        return model.labels_, model.cluster_centers_


class MiniBatchKMeansClusterer(CentroidClusterer):
    """Mini-batch k-means (scikit-learn ``MiniBatchKMeans``), for many codes.

    ``labels_`` and ``predict`` both give the nearest final centre.

    Parameters
    ----------
    n_clusters : int, default=10
    random_state : int or None
    batch_size : int, default=1024
    n_init : int, default=3
        Number of initialisations tried; the best on a validation batch is kept.
    max_iter : int, default=100
        Passes over the data.
    """

    name = "minibatch-kmeans"
    defaults = {"batch_size": 1024, "n_init": 3, "max_iter": 100}

    def _fit(self, Z: np.ndarray, params: dict[str, Any]):
        model = MiniBatchKMeans(
            n_clusters=self.n_clusters, random_state=self.random_state, **params
        ).fit(Z)
        return model.labels_, model.cluster_centers_


class AgglomerativeClusterer(CentroidClusterer):
    """Ward agglomerative clustering (scikit-learn ``AgglomerativeClustering``).

    Ward has no rule for new points, so ``predict`` is a nearest-centroid approximation:
    a code goes to the cluster whose mean training code (``cluster_centers_``) is closest.
    It can disagree with ``labels_`` for training codes near a cluster border. Ward is
    deterministic (``random_state`` is unused) and needs O(N^2) memory: keep N below a few
    tens of thousands, or use "kmeans" / "gmm" for more codes. It has no extra parameters.
    """

    name = "agglomerative"
    defaults: dict[str, Any] = {}

    def _fit(self, Z: np.ndarray, params: dict[str, Any]):
        if len(Z) > WARD_LARGE_N:
            log.warning(
                "Ward clustering of %d codes needs O(N^2) memory and time; "
                "consider clusterer='kmeans' or 'gmm'.",
                len(Z),
            )
        labels = AgglomerativeClustering(n_clusters=self.n_clusters, linkage="ward").fit_predict(Z)
        return labels, centroids(Z, labels)
