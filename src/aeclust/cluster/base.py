"""Shared pieces of the latent-code clusterers: input checks, name checks and the base class.

A clusterer wraps one library algorithm (scikit-learn) behind one small interface:
``fit(Z)``, ``predict(Z)``, ``state_dict()`` (numeric arrays only, for safetensors) and
``get_config()`` (JSON), so a fitted clusterer can be saved and restored without pickle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.exceptions import NotFittedError

from ..data.validate import check_n_clusters
from ..errors import ConfigError, DataError, ModelFileError, check_choice, check_names  # noqa: F401

# the dtypes a state array may have (what safetensors and the loaders expect)
STATE_DTYPES = (np.float32, np.float64, np.int64)


def check_codes(Z, *, n_features: int | None = None, dtype=np.float64) -> np.ndarray:
    """Return latent codes as a C-contiguous float array of shape (N, d), or raise DataError.

    Parameters
    ----------
    Z : array-like of shape (N, d)
        Latent codes, one row per sample.
    n_features : int, optional
        The ``d`` the codes must have (the one seen in ``fit``).
    dtype : numpy dtype, default=np.float64
        The float dtype of the result.
    """
    Z = np.asarray(Z)
    if Z.dtype == object or not (np.issubdtype(Z.dtype, np.number) or Z.dtype == bool):
        raise DataError(f"Latent codes must be numeric; got an array of dtype {Z.dtype}.")
    if Z.ndim != 2:
        raise DataError(
            f"Latent codes must be a 2-D array (N, d); got shape {Z.shape}. "
            "Use Z.reshape(len(Z), -1) to flatten them."
        )
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        raise DataError(f"The latent codes are empty (shape {Z.shape}).")
    if n_features is not None and Z.shape[1] != n_features:
        raise DataError(
            f"The codes have {Z.shape[1]} features but the model was fitted on {n_features}; "
            "give codes from the same encoder (and reducer)."
        )
    Z = np.ascontiguousarray(Z, dtype=dtype)
    if not np.isfinite(Z).all():
        bad = np.flatnonzero(~np.isfinite(Z).all(axis=1))
        raise DataError(
            f"The latent codes contain NaN or infinite values in {len(bad)} row(s) "
            f"(first indices: {bad[:5].tolist()}); the encoder may have diverged "
            "(try a lower learning rate)."
        )
    return Z


def check_params(owner: str, params: Mapping[str, Any], valid: Iterable[str]) -> dict[str, Any]:
    """Return ``params`` as a JSON-ready dict, or raise ConfigError naming a bad key."""
    check_names(owner, params, valid)
    plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
    try:
        json.dumps(plain)
    except TypeError as exc:
        raise ConfigError(
            f"The parameters of {owner} must be plain numbers, strings or None; {exc}"
        ) from exc
    return plain


def check_seed(random_state) -> int | None:
    """Return ``random_state`` as an int or None (it is saved to JSON), or raise."""
    if random_state is None:
        return None
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise ConfigError(
            f"random_state must be an integer or None; got {random_state!r}. "
            "Pass an int seed so the result can be reproduced and saved."
        )
    return int(random_state)


def check_fitted(obj, attribute: str) -> None:
    """Raise sklearn's NotFittedError unless ``obj`` has the fitted ``attribute``."""
    if not hasattr(obj, attribute):
        raise NotFittedError(f"This {type(obj).__name__} is not fitted yet; call fit first.")


def centroids(Z: np.ndarray, labels: np.ndarray) -> np.ndarray | None:
    """Mean code of each cluster 0..K-1 (noise -1 ignored); shape (K, d), or None if K = 0."""
    found = np.unique(labels[labels >= 0])
    if len(found) == 0:
        return None
    return np.stack([Z[labels == k].mean(axis=0) for k in range(found.max() + 1)])


class LatentClusterer:
    """Base class: fit on latent codes Z (N, d), predict new codes, save and restore.

    Subclasses set :attr:`name`, :attr:`defaults` (their extra parameters) and implement
    ``_fit``, ``_predict``, ``_state`` and ``_restore``.

    Parameters
    ----------
    n_clusters : int, default=10
        Number of clusters K.
    random_state : int or None, default=None
        Seed of the algorithm.
    **params
        Extra parameters, keys of :attr:`defaults`.

    Attributes
    ----------
    labels_ : ndarray of shape (N,), int64
        Cluster of each training code (-1 = noise, hdbscan only).
    n_clusters_ : int
        Number of clusters found, noise excluded.
    cluster_centers_ : ndarray of shape (K, d) or None
        Centre of each cluster in code space, when there is one.
    n_features_in_ : int
        The code size d seen in ``fit``.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    needs_n_clusters: ClassVar[bool] = True  # False when the algorithm finds K itself
    state_keys: ClassVar[tuple[str, ...]] = ()  # arrays besides labels_/cluster_centers_

    def __init__(self, n_clusters: int = 10, random_state: int | None = None, **params):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.params = params

    # ------------------------------------------------------------------ public API
    def fit(self, Z, y=None) -> LatentClusterer:
        """Cluster the codes Z of shape (N, d); returns self."""
        Z = check_codes(Z)
        self.check_n_samples(len(Z))
        self.n_features_in_ = Z.shape[1]
        labels, centers = self._fit(Z, self.get_config()["params"])
        self._set_fitted(labels, centers)
        return self

    def check_n_samples(self, n_samples: int) -> None:
        """Raise ConfigError if ``n_samples`` codes cannot be clustered with these settings.

        ``fit`` checks this too; an estimator calls it before training its network, so that
        e.g. more clusters than images fails at once rather than after the last epoch.
        """
        if self.needs_n_clusters:
            check_n_clusters(self.n_clusters, n_samples)

    def fit_predict(self, Z, y=None) -> np.ndarray:
        """Fit and return ``labels_``, shape (N,)."""
        return self.fit(Z).labels_

    def predict(self, Z) -> np.ndarray:
        """Label of each code in Z (M, d), in the label space of ``labels_``; shape (M,)."""
        check_fitted(self, "labels_")
        Z = check_codes(Z, n_features=self.n_features_in_)
        return np.asarray(self._predict(Z), dtype=np.int64)

    def get_config(self) -> dict[str, Any]:
        """JSON-ready description: name, n_clusters, random_state and all parameters."""
        return {
            "name": self.name,
            "n_clusters": self.n_clusters,
            "random_state": self.random_state,
            "params": {**self.defaults, **self.params},
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """The fitted state as contiguous numeric arrays (for safetensors)."""
        check_fitted(self, "labels_")
        arrays = {"labels_": self.labels_, **self._state()}
        if self.cluster_centers_ is not None:
            arrays["cluster_centers_"] = self.cluster_centers_
        out = {}
        for key, value in arrays.items():
            value = np.ascontiguousarray(value)
            if value.dtype not in STATE_DTYPES:
                value = value.astype(np.int64 if value.dtype.kind in "iub" else np.float64)
            out[key] = value
        return out

    @classmethod
    def from_state(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        """A fitted clusterer from ``get_config()`` and ``state_dict()`` output."""
        missing = sorted({"labels_", *cls.state_keys} - set(arrays))
        if missing:
            raise ModelFileError(
                f"The saved {cls.name} clusterer lacks the arrays {missing}; "
                "the model file is incomplete or from another version. Refit the model."
            )
        obj = cls(config["n_clusters"], config["random_state"], **config["params"])
        obj._set_fitted(arrays["labels_"], arrays.get("cluster_centers_"))
        obj._restore(arrays)
        return obj

    # ------------------------------------------------------------------ for subclasses
    def _set_fitted(self, labels, centers: np.ndarray | None) -> None:
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.n_clusters_ = len(np.unique(self.labels_[self.labels_ >= 0]))
        self.cluster_centers_ = (
            None if centers is None else np.ascontiguousarray(centers, dtype=np.float64)
        )

    def _fit(self, Z: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """Return (labels (N,), centres (K, d) or None); may keep a fitted model on self."""
        raise NotImplementedError

    def _predict(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        """Arrays besides labels_ and cluster_centers_ that predict needs."""
        return {}

    def _restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Rebuild what predict needs (labels_ and cluster_centers_ are already set)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return (
            f"{type(self).__name__}(n_clusters={self.n_clusters!r}, "
            f"random_state={self.random_state!r}{extra})"
        )
