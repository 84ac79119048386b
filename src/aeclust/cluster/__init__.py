"""Clustering of latent codes Z (N, d): k-means family, GMM, Ward, HDBSCAN, UMAP reduction.

Build by name, fit, predict, and save/restore without pickle::

    c = build_clusterer("gmm", n_clusters=10, random_state=0).fit(Z)
    config, arrays = c.get_config(), c.state_dict()   # JSON + numeric arrays (safetensors)
    same = clusterer_from_state(config, arrays)       # same.predict(Z_new) == c.predict(Z_new)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data.validate import check_n_clusters
from ..errors import ConfigError, ModelFileError
from .base import LatentClusterer, check_choice, check_params, check_seed
from .centroid import AgglomerativeClusterer, KMeansClusterer, MiniBatchKMeansClusterer
from .density import HDBSCANClusterer
from .gmm import GMMClusterer
from .reducers import UMAPReducer

_CLUSTERERS: dict[str, type[LatentClusterer]] = {
    cls.name: cls
    for cls in (
        KMeansClusterer,
        MiniBatchKMeansClusterer,
        GMMClusterer,
        AgglomerativeClusterer,
        HDBSCANClusterer,
    )
}
_REDUCERS = {UMAPReducer.name: UMAPReducer}

CLUSTERERS: tuple[str, ...] = tuple(_CLUSTERERS)
"""Names accepted by :func:`build_clusterer`."""
REDUCERS: tuple[str, ...] = tuple(_REDUCERS)
"""Names accepted by :func:`build_reducer` (which also accepts None: no reduction)."""


def build_clusterer(
    name: str, n_clusters: int = 10, random_state: int | None = 0, **params: Any
) -> LatentClusterer:
    """An unfitted clusterer, checked now so that typos fail before any training.

    Parameters
    ----------
    name : str
        One of :data:`CLUSTERERS`.
    n_clusters : int, default=10
        Number of clusters K (ignored by "hdbscan", which finds K itself).
    random_state : int or None, default=0
    **params
        Extra parameters of that clusterer, e.g. ``n_init=20`` for "kmeans"; see its class.

    Raises
    ------
    ConfigError
        For an unknown name or parameter, or a bad n_clusters / random_state.
    """
    cls = _CLUSTERERS[check_choice("clusterer", name, CLUSTERERS)]
    if cls.needs_n_clusters:
        # type and lower bound now; the upper bound (<= N) when fit sees the data
        n_clusters = check_n_clusters(n_clusters, np.iinfo(np.int64).max)
    elif isinstance(n_clusters, int | np.integer):
        n_clusters = int(n_clusters)
    params = check_params(f"clusterer {name!r}", params, cls.defaults)
    return cls(n_clusters, check_seed(random_state), **params)


def clusterer_from_state(
    config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
) -> LatentClusterer:
    """A fitted clusterer from ``get_config()`` and ``state_dict()`` of a fitted one.

    Its ``predict`` gives the same labels as the original's.
    """
    _check_config(config, ("name", "n_clusters", "random_state", "params"))
    clusterer = build_clusterer(
        config["name"], config["n_clusters"], config["random_state"], **config["params"]
    )
    return type(clusterer).from_state(clusterer.get_config(), arrays)


def build_reducer(
    name: str | None, n_components: int = 10, random_state: int | None = 0, **params: Any
) -> UMAPReducer | None:
    """An unfitted reducer, or None when ``name`` is None or "none" (no reduction).

    Parameters
    ----------
    name : {"umap", "none", None}
    n_components : int, default=10
        Size of the reduced codes.
    random_state : int or None, default=0
        Seed; None is replaced by 0, since save/load refits UMAP with the same seed.
    **params
        Extra UMAP parameters: n_neighbors (20), min_dist (0.0), metric ("euclidean"),
        n_epochs, learning_rate, spread.
    """
    if name is None or name == "none":
        return None
    cls = _REDUCERS[check_choice("reducer", name, (*REDUCERS, "none"))]
    if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer):
        raise ConfigError(f"n_components must be a positive integer; got {n_components!r}.")
    if n_components < 1:
        raise ConfigError(f"n_components must be a positive integer; got {n_components}.")
    params = check_params(f"reducer {name!r}", params, cls.defaults)
    return cls(int(n_components), check_seed(random_state), **params)


def reducer_from_state(config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> UMAPReducer:
    """A fitted reducer from ``get_config()`` and ``state_dict()`` of a fitted one.

    UMAP is refitted on the saved training codes with the saved seed, so this takes as long
    as the original fit; its ``transform`` then gives the same output as the original's.
    """
    _check_config(config, ("name", "n_components", "random_state", "params"))
    reducer = build_reducer(
        config["name"], config["n_components"], config["random_state"], **config["params"]
    )
    if reducer is None:
        raise ModelFileError("The saved reducer config has name None; there is nothing to load.")
    return type(reducer).from_state(reducer.get_config(), arrays)


def _check_config(config: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in config]
    if missing:
        raise ModelFileError(
            f"The saved configuration lacks the keys {missing}; the model file is incomplete "
            "or was not written by aeclust."
        )


__all__ = [
    "CLUSTERERS",
    "REDUCERS",
    "AgglomerativeClusterer",
    "GMMClusterer",
    "HDBSCANClusterer",
    "KMeansClusterer",
    "LatentClusterer",
    "MiniBatchKMeansClusterer",
    "UMAPReducer",
    "build_clusterer",
    "build_reducer",
    "clusterer_from_state",
    "reducer_from_state",
]
