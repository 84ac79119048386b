"""UMAP reduction of latent codes before clustering (the N2D recipe), saved without pickle.

A fitted ``umap.UMAP`` cannot be saved without pickle, so the state of
:class:`UMAPReducer` is its training input: restoring refits UMAP with the same
parameters and seed on the same codes. UMAP with a fixed ``random_state`` runs
single-threaded and is deterministic, so the refit gives the same ``transform`` output
(checked on restore against the saved embedding; a warning says if it differs, e.g. after
an umap-learn or numba upgrade). Refitting takes as long as the original fit.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from numbers import Real
from typing import Any

import numpy as np

from ..errors import ConfigError, ModelFileError
from .base import check_codes, check_fitted
from .numba_cache import import_umap, is_filled

log = logging.getLogger(__name__)

UMAP_EXACT_BELOW = 4096  # umap-learn finds exact neighbours itself below this many points
# from there up to EXACT_UP_TO codes, UMAPReducer gives UMAP exact neighbours (sklearn, brute
# force) instead of its approximate search; the metrics measure the same distance in both
EXACT_UP_TO = 100_000
EXACT_METRICS = ("euclidean", "manhattan", "cosine")


def auto_neighbours(n_samples: int) -> int:
    """Morais' eq. 3.8: n_neighbors = min(N // 300, 100), and at least 5.

    The thesis used it on 10,000 images or more (33 neighbours and up). Below 1,500 codes
    it would give fewer than 5; with 2, UMAP's neighbour graph falls apart into pieces and
    its layout is not even reproducible (two fits with the same seed differed, on 300
    random codes), so 5 is the floor."""
    return max(5, min(n_samples // 300, 100))


class UMAPReducer:
    """UMAP from codes (N, d) to (N, n_components).

    Parameters
    ----------
    n_components : int, default=10
        Size of the reduced codes.
    random_state : int or None, default=0
        Seed of UMAP. None is replaced by 0: a seed is needed for reproducible results and
        for save/load, which refits UMAP. With a seed UMAP runs single-threaded.
    n_neighbors : int or "auto", default=20
        "auto" is Morais' eq. 3.8, min(N // 300, 100) for N codes (at least 5): about the
        same share of each cluster's neighbourhood whatever the size of the data.
    min_dist : float, default=0.0
        0 packs clusters tightly, which helps clustering (N2D, McConville et al. 2020).
    metric : str, default="euclidean"
    n_epochs : int or None, default=200
        UMAP's own default is 200 for more than 10,000 points and 500 below; we use 200
        for every size: on mnist5k codes it cut the fit from 15 s to 6 s (after numba's
        compilation, which :mod:`aeclust.cluster.numba_cache` keeps on disk) with no loss
        of accuracy in our runs. None lets UMAP choose.
    learning_rate : float, default=1.0
    spread : float, default=1.0

    Neighbours: below 4,096 codes UMAP computes all distances and takes the exact nearest
    neighbours. Above, umap-learn switches to pynndescent's approximate search, whose
    ``nn_descent`` numba cannot keep in its cache: every process compiled it again, 22-25 s
    on 2 cores, more than the search itself costs on 70,000 codes (10 s). So from 4,096 up
    to :data:`EXACT_UP_TO` (100,000) codes, for the metrics of :data:`EXACT_METRICS`, this
    class finds the exact neighbours with scikit-learn's brute-force search (0.2 s for
    5,000 codes, 19 s for 70,000, quadratic in N) and hands them to UMAP; ``transform``
    searches new codes' neighbours the same way. Exact neighbours are what the approximate
    search estimates, so the graph can only be closer to UMAP's definition; the layouts are
    not bit-identical to the approximate ones. Above 100,000 codes, or for another metric,
    UMAP searches itself.

    Attributes
    ----------
    umap_ : umap.UMAP
        The fitted UMAP.
    train_codes_ : ndarray of shape (N, d), float32
        The training input (UMAP works in float32).
    embedding_ : ndarray of shape (N, n_components), float32
    n_features_in_ : int
    """

    name = "umap"
    defaults: dict[str, Any] = {
        "n_neighbors": 20,
        "min_dist": 0.0,
        "metric": "euclidean",
        "n_epochs": 200,
        "learning_rate": 1.0,
        "spread": 1.0,
    }

    def __init__(self, n_components: int = 10, random_state: int | None = 0, **params):
        self.n_components = n_components
        self.random_state = random_state
        self.params = params

    def fit(self, Z, y=None) -> UMAPReducer:
        """Fit UMAP on the codes Z of shape (N, d); returns self."""
        Z = check_codes(Z, dtype=np.float32)
        self.check_n_samples(len(Z))
        k = self.n_components
        umap = import_umap("UMAP reduction")
        config = self.get_config()
        params = self.resolved_params(len(Z))
        log.info("Fitting UMAP on %d codes of size %d -> %d", len(Z), Z.shape[1], k)
        knn = exact_neighbours(Z, params) if uses_exact_neighbours(len(Z), params) else None
        self.umap_ = umap.UMAP(
            n_components=int(k), random_state=config["random_state"], n_jobs=1,
            precomputed_knn=(None, None, None) if knn is None else knn, **params,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
            warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\]")
            self.embedding_ = np.asarray(self.umap_.fit_transform(Z))
        self.train_codes_ = Z
        self.n_features_in_ = Z.shape[1]
        return self

    def precompile(self, n_samples: int, n_features: int) -> None:
        """Compile UMAP's numba code now for a later fit on ``n_samples`` codes of size
        ``n_features``.

        Estimators call this before training their network. Compiling beside training on
        the same cores made each epoch five to eight times slower and the compile itself
        twice as slow (BENCHMARKS.md); it used to run in a thread while the network
        trained. This fits a UMAP with these parameters to a few hundred random codes, on
        the path the real fit takes (UMAP's own neighbours below 4,096 codes, the exact ones
        given to it or pynndescent's above); it changes no state of this reducer, and the
        real fit gives the same bits with or without it.
        Later processes load the code from numba's on-disk cache (about 1 s), except
        pynndescent's ``nn_descent``, compiled again in every process that needs it (above
        100,000 codes or for other metrics; 22-25 s on 2 cores), see
        :mod:`aeclust.cluster.numba_cache`.
        """
        umap = import_umap("UMAP reduction")
        params = {**self.resolved_params(n_samples), "n_epochs": 5}
        approximate = n_samples >= UMAP_EXACT_BELOW
        exact = uses_exact_neighbours(n_samples, params)
        if not is_filled():
            log.info(
                "Compiling UMAP's numba code before training: 10-20 s the first time on this "
                "machine, then loaded from numba's cache."
            )
        elif approximate and not exact:
            log.info("Compiling UMAP's nearest-neighbour search before training (about 25 s).")
        config = self.get_config()
        n = max(300, 2 * (self.n_components + 2), params["n_neighbors"] + 1)
        Z = np.random.default_rng(0).normal(size=(n, n_features)).astype(np.float32)
        model = umap.UMAP(
            n_components=self.n_components,
            random_state=config["random_state"],
            n_jobs=1,
            **params,
            force_approximation_algorithm=approximate,
            precomputed_knn=exact_neighbours(Z, params) if exact else (None, None, None),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model.fit(Z)
            except (ValueError, TypeError) as exc:  # e.g. an unknown metric, before training
                raise ConfigError(
                    f"UMAP rejects these settings ({config['params']}): {exc}"
                ) from exc

    def check_n_samples(self, n_samples: int) -> None:
        """Raise ConfigError if UMAP cannot reduce ``n_samples`` codes with these settings
        (``fit`` checks it too; estimators call it before training their network)."""
        k = self.n_components
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"n_components must be a positive integer; got {k!r}.")
        params = self.resolved_params(n_samples)
        neighbours = params["n_neighbors"]
        integer = isinstance(neighbours, int | np.integer) and not isinstance(neighbours, bool)
        if not integer or neighbours < 2:
            raise ConfigError(f"UMAP's n_neighbors must be an integer >= 2; got {neighbours!r}.")
        numbers = [params[key] for key in ("min_dist", "spread")]
        if not all(isinstance(v, Real) and not isinstance(v, bool) for v in numbers) or not (
            0 <= numbers[0] <= numbers[1]
        ):
            raise ConfigError(
                f"UMAP needs 0 <= min_dist <= spread; got min_dist={params['min_dist']}, "
                f"spread={params['spread']}."
            )
        if n_samples <= k + 1:
            raise ConfigError(
                f"UMAP to {k} components needs more than {k + 1} codes; got {n_samples}. "
                "Give more data or a smaller n_components (reducer_params), or --reducer none."
            )
        if neighbours >= n_samples:
            log.warning(
                "UMAP's n_neighbors=%d is not below the %d codes; UMAP will use %d.",
                neighbours,
                n_samples,
                n_samples - 1,
            )

    def resolved_params(self, n_samples: int) -> dict[str, Any]:
        """UMAP's parameters for ``n_samples`` codes, with ``n_neighbors="auto"`` resolved."""
        params = self.get_config()["params"]
        if params["n_neighbors"] == "auto":
            params["n_neighbors"] = auto_neighbours(n_samples)
        return params

    def fit_transform(self, Z, y=None) -> np.ndarray:
        """Fit and return the reduced training codes, shape (N, n_components)."""
        return self.fit(Z).embedding_

    def transform(self, Z) -> np.ndarray:
        """Reduce new codes Z (M, d) to shape (M, n_components)."""
        check_fitted(self, "umap_")
        Z = check_codes(Z, n_features=self.n_features_in_, dtype=np.float32)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
            return np.asarray(self.umap_.transform(Z))

    def get_config(self) -> dict[str, Any]:
        """JSON-ready description: name, n_components, random_state and all parameters."""
        return {
            "name": self.name,
            "n_components": self.n_components,
            "random_state": 0 if self.random_state is None else self.random_state,
            "params": {**self.defaults, **self.params},
        }

    def state_dict(self) -> dict[str, np.ndarray]:
        """The training codes (to refit on) and the embedding (to check the refit)."""
        check_fitted(self, "umap_")
        return {
            "train_codes_": np.ascontiguousarray(self.train_codes_),
            "embedding_": np.ascontiguousarray(self.embedding_, dtype=np.float32),
        }

    @classmethod
    def from_state(cls, config: Mapping[str, Any], arrays: Mapping[str, np.ndarray]):
        """Refit UMAP with the saved parameters and seed on the saved training codes."""
        missing = sorted({"train_codes_", "embedding_"} - set(arrays))
        if missing:
            raise ModelFileError(
                f"The saved UMAP reducer lacks the arrays {missing}; the model file is "
                "incomplete or from another version. Refit the model."
            )
        obj = cls(config["n_components"], config["random_state"], **config["params"])
        log.info("Restoring UMAP: refitting on the %d saved codes", len(arrays["train_codes_"]))
        obj.fit(arrays["train_codes_"])
        if not np.array_equal(obj.embedding_, arrays["embedding_"]):
            warnings.warn(
                "The refitted UMAP differs from the saved one; predictions may differ from "
                "those made before saving. "
                "This happens with another umap-learn/numba version or CPU.",
                RuntimeWarning,
                stacklevel=2,
            )
        return obj

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return (
            f"UMAPReducer(n_components={self.n_components!r}, "
            f"random_state={self.random_state!r}{extra})"
        )


def uses_exact_neighbours(n_samples: int, params: Mapping[str, Any]) -> bool:
    """Whether :class:`UMAPReducer` hands UMAP exact neighbours for ``n_samples`` codes."""
    return (
        UMAP_EXACT_BELOW <= n_samples <= EXACT_UP_TO
        and params.get("metric", "euclidean") in EXACT_METRICS
        and params["n_neighbors"] < n_samples
    )


def exact_neighbours(Z: np.ndarray, params: Mapping[str, Any]) -> tuple:
    """``precomputed_knn`` for UMAP: each code's ``n_neighbors`` nearest codes (itself
    first, as in UMAP's own search), their distances, and a search index for
    ``transform``."""
    index = ExactSearch(Z, params.get("metric", "euclidean"))
    indices, distances = index.query(Z, params["n_neighbors"])
    return indices, distances, index


class ExactSearch:
    """The part of pynndescent's index that ``umap.UMAP.transform`` uses (``query`` and
    ``_angular_trees``), answered by scikit-learn's exact brute-force search."""

    _angular_trees = False  # transform reads it to choose pynndescent's epsilon

    def __init__(self, Z: np.ndarray, metric: str):
        from sklearn.neighbors import NearestNeighbors

        self.search = NearestNeighbors(algorithm="brute", metric=metric).fit(Z)

    def query(self, X, k: int, epsilon: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Indices (int32) and distances (float32) of the ``k`` nearest codes, nearest
        first; ``epsilon`` (pynndescent's search slack) has no use in an exact search."""
        distances, indices = self.search.kneighbors(X, int(k))
        return indices.astype(np.int32), distances.astype(np.float32)
