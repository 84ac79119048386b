"""Clustering latent codes that are split across processes (torchrun / DDP).

Every rank holds one contiguous shard of the N codes, in rank order (:func:`shard_bounds`).
All N codes are never gathered: at most a seeded sample of them travels.

- k-means and mini-batch k-means run on all codes: each rank assigns its own codes and only
  per-centre sums (float64) and counts travel, through an all-reduce. From the same initial
  centres one process and several give the same centres (up to the order of float
  summation, ~1e-12) and the same labels. The initial centres are k-means++ on the sample.
- The other clusterers (GMM, HDBSCAN, Ward) and UMAP are fitted on rank 0 over the sample;
  every rank then labels its own shard with the fitted reducer's ``transform`` and the
  clusterer's ``predict``, and the sampled codes keep the labels of the fit itself.

The sample: at most :data:`SAMPLE_SIZE` (50,000) codes, 30,000 for Ward
(:func:`sample_size_for`); all codes when there are fewer. Its rows are drawn with
``numpy.random.default_rng(seed)`` from N alone (:func:`sample_indices`), so it does not
depend on the number of ranks, and each rank sends its sampled rows to all (all-gather;
50,000 x 10 float64 codes are 4 MB). k-means++ draws with ``RandomState(seed)``, mini-batch
k-means orders the codes with ``default_rng([seed, 1])``; the estimators pass their seed.

Without a process group the all-reduces and gathers are no-ops, so the same functions run
in one process (and :func:`cluster_shards` is what the estimators call under torchrun).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from scipy.spatial.distance import cdist
from sklearn.cluster import kmeans_plusplus

from ..training import distributed
from .base import LatentClusterer, check_codes
from .centroid import WARD_LARGE_N

log = logging.getLogger(__name__)

SAMPLE_SIZE = 50_000  # codes rank 0 fits the sample-based clusterers on (and k-means++ on)
ALL_REDUCED = ("kmeans", "minibatch-kmeans")  # clusterers that run on every rank's codes
_CHUNK = 65_536  # rows per distance block: (chunk, K) float64 at a time


@dataclass
class KMeansResult:
    """A k-means fit over all ranks: the centres (K, d) and inertia are the same on every
    rank; ``labels`` (n_local,) are this rank's codes' clusters."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int


class Shard(NamedTuple):
    """One rank's codes (stop - start, d): rows ``start:stop`` of all N."""

    codes: np.ndarray
    start: int
    stop: int


@dataclass
class ShardedFit:
    """What :func:`cluster_shards` returns: the fitted reducer (or None) and clusterer, the
    labels of all N codes (gathered; the same on every rank) and a description."""

    reducer: object
    clusterer: LatentClusterer
    labels: np.ndarray
    info: dict


# ---------------------------------------------------------------------- shards and samples
def shard_bounds(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [start, stop) of rank ``rank``'s shard of ``n`` rows: contiguous, in rank order,
    sizes differing by at most one (the first ``n % world`` ranks hold one more)."""
    size, extra = divmod(n, world)
    start = rank * size + min(rank, extra)
    return start, start + size + (rank < extra)


def shard_layout(n_local: int) -> tuple[int, int]:
    """(start of this rank's shard, N over all ranks), from every rank's shard length."""
    sizes = distributed.gather(int(n_local))
    return sum(sizes[: distributed.rank()]), sum(sizes)


def sample_indices(n: int, size: int, seed: int) -> np.ndarray:
    """``min(size, n)`` distinct rows of ``0..n-1`` drawn with ``seed``, sorted; all rows
    when ``n <= size``. Every rank draws the same, without communicating."""
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def gather_rows(Z_local: np.ndarray, start: int, rows: np.ndarray) -> np.ndarray:
    """The codes of the global ``rows`` (sorted) on every rank, in order; each rank sends only
    the sampled rows of its own shard."""
    mine = rows[(rows >= start) & (rows < start + len(Z_local))] - start
    return np.concatenate(distributed.gather(np.asarray(Z_local)[mine]))


def sample_size_for(clusterer: LatentClusterer) -> int:
    """The sample a clusterer is fitted on when the codes are sharded: :data:`SAMPLE_SIZE`,
    and at most ``WARD_LARGE_N`` (30,000) for Ward, whose memory grows as N^2."""
    return min(SAMPLE_SIZE, WARD_LARGE_N) if clusterer.name == "agglomerative" else SAMPLE_SIZE


# ---------------------------------------------------------------------- k-means, all-reduced
def _nearest(Z: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre (as :func:`~aeclust.cluster.centers.assign_nearest`) and squared
    distance to it of each code; (n,) int64 and (n,) float64."""
    labels = np.empty(len(Z), dtype=np.int64)
    dist = np.empty(len(Z), dtype=np.float64)
    for s in range(0, len(Z), _CHUNK):
        d = cdist(Z[s : s + _CHUNK], centers, "sqeuclidean")  # (chunk, K)
        labels[s : s + _CHUNK] = d.argmin(axis=1)
        dist[s : s + _CHUNK] = d[np.arange(len(d)), labels[s : s + _CHUNK]]
    return labels, dist


def _all_reduce(*arrays: np.ndarray) -> list[np.ndarray]:
    """The element-wise sums over ranks of float64 arrays, in one all-reduce."""
    flat = torch.from_numpy(np.concatenate([np.ravel(a).astype(np.float64) for a in arrays]))
    total = distributed.all_reduce_sum(flat).numpy()
    out, at = [], 0
    for a in arrays:
        out.append(total[at : at + np.size(a)].reshape(np.shape(a)))
        at += np.size(a)
    return out


def _cluster_sums(Z: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums (k, d) and counts (k,) of this rank's codes, float64."""
    sums = np.zeros((k, Z.shape[1]))
    for j in range(Z.shape[1]):
        sums[:, j] = np.bincount(labels, weights=Z[:, j], minlength=k)
    return sums, np.bincount(labels, minlength=k).astype(np.float64)


def _tolerance(Z: np.ndarray, tol: float) -> float:
    """scikit-learn's tolerance: ``tol`` times the mean per-feature variance of all codes
    (two all-reduces: the mean, then the squared deviations from it)."""
    total, n = _all_reduce(Z.sum(axis=0), np.array([len(Z)]))
    mean = total / n[0]
    (squares,) = _all_reduce(((Z - mean) ** 2).sum(axis=0))
    return float(np.mean(squares / n[0]) * tol)


def _relocate_empty(Z, labels, old, sums, counts) -> None:
    """Give each empty cluster one code, as scikit-learn's Lloyd does: the codes farthest
    from their (old) centres over all ranks, farthest first (ties: lower rank, then lower
    row), leave their clusters; the j-th empty cluster (in index order) becomes the j-th of
    them. Every rank gathers the same candidates (each rank's farthest few), so every rank
    applies the same change to ``sums`` and ``counts`` (in place)."""
    empty = np.flatnonzero(counts == 0)
    dist = ((Z - old[labels]) ** 2).sum(axis=1)
    top = np.argsort(-dist, kind="stable")[: len(empty)]
    mine = [(-dist[i], distributed.rank(), int(i), Z[i], int(labels[i])) for i in top]
    found = [c for part in distributed.gather(mine) for c in part]
    far = sorted(found, key=lambda c: c[:3])[: len(empty)]  # by (-distance, rank, row)
    if not far or far[0][0] == 0:  # no code off its centre: more clusters than distinct codes
        return
    for j, (_, _, _, code, label) in zip(empty, far, strict=False):
        sums[label] -= code
        counts[label] -= 1
        sums[j], counts[j] = code, 1


def kmeans_sharded(
    Z_local: np.ndarray, init_centers: np.ndarray, max_iter: int = 300, tol: float = 1e-4
) -> KMeansResult:
    """Lloyd's k-means over the codes of all ranks, from ``init_centers`` (K, d).

    scikit-learn's ``KMeans(init=init_centers, n_init=1, algorithm="lloyd")`` step by step:
    each iteration assigns this rank's codes (n_local, d) to the nearest centre, all-reduces
    the per-centre sums and counts (float64) and the number of changed labels, and moves each
    centre to its mean. Empty clusters are re-seeded as scikit-learn does
    (:func:`_relocate_empty`). It stops when no label changed, or when the squared shift of
    the centres is at most ``tol`` times the mean variance of the codes, or after
    ``max_iter`` iterations (then the labels are recomputed for the final centres). Every
    decision is taken on all-reduced values, so every rank takes it alike.
    """
    Z = np.asarray(Z_local, dtype=np.float64)
    centers = np.array(init_centers, dtype=np.float64)
    k = len(centers)
    tol = _tolerance(Z, tol) if tol > 0 else 0.0
    labels_old = np.full(len(Z), -1, dtype=np.int64)
    strict, n_iter = False, 0
    for it in range(max_iter):
        n_iter = it + 1
        labels, _ = _nearest(Z, centers)
        sums, counts = _cluster_sums(Z, labels, k)
        sums, counts, (changed,) = _all_reduce(sums, counts, [(labels != labels_old).sum()])
        if (counts == 0).any():
            _relocate_empty(Z, labels, centers, sums, counts)
        filled = counts > 0
        new = np.repeat(sums[[np.argmax(counts)]] / counts.max(), k, axis=0)  # empty: biggest
        new[filled] = sums[filled] / counts[filled, None]
        shift = ((new - centers) ** 2).sum()
        centers = new
        if changed == 0:
            strict = True
            break
        if shift <= tol:
            break
        labels_old = labels
    if not strict:  # the labels of the final centres
        labels, _ = _nearest(Z, centers)
    (inertia,) = _all_reduce(np.array([((Z - centers[labels]) ** 2).sum()]))
    return KMeansResult(centers, labels, float(inertia[0]), n_iter)


def minibatch_kmeans_sharded(
    Z_local: np.ndarray,
    init_centers: np.ndarray,
    batch_size: int = 1024,
    max_iter: int = 100,
    seed: int = 0,
    max_no_improvement: int | None = 10,
) -> KMeansResult:
    """Mini-batch k-means over the codes of all ranks, from ``init_centers`` (K, d).

    Each of the ``max_iter`` passes visits the N codes in a seeded random order, in global
    mini-batches of ``batch_size`` rows; each rank takes the rows of a mini-batch that fall
    in its shard, and the per-centre sums and counts of the mini-batch are all-reduced.
    The update is scikit-learn's ``MiniBatchKMeans`` rule: a centre with ``c`` codes so far
    and ``n`` in this mini-batch becomes ``(c * centre + sum) / (c + n)`` (learning rate
    1/count). It stops early as scikit-learn does: after ``max_no_improvement`` mini-batches
    without a better exponentially weighted average of the mini-batch inertia. Unlike
    scikit-learn it never re-seeds small clusters (``reassignment_ratio``). The final labels
    are the nearest final centres, as in :class:`~aeclust.cluster.MiniBatchKMeansClusterer`.
    The result does not depend on the number of ranks (up to the order of float sums).
    """
    Z = np.asarray(Z_local, dtype=np.float64)
    start, n = shard_layout(len(Z))
    centers = np.array(init_centers, dtype=np.float64)
    k = len(centers)
    weight = np.zeros(k)  # codes each centre has absorbed so far
    rng = np.random.default_rng([seed, 1])  # another stream than the sample's
    alpha = min(1.0, 2.0 * batch_size / (n + 1))  # scikit-learn's weight of the average
    ewa, best, no_improvement, step, it, done = None, None, 0, 0, 0, False
    while not done and it < max_iter:
        order = rng.permutation(n)
        it += 1
        for b in range(0, n, batch_size):
            rows = order[b : b + batch_size]
            x = Z[rows[(rows >= start) & (rows < start + len(Z))] - start]
            labels, dist = _nearest(x, centers)
            sums, counts = _cluster_sums(x, labels, k)
            sums, counts, (inertia,) = _all_reduce(sums, counts, [dist.sum()])
            seen = counts > 0
            centers[seen] = (centers[seen] * weight[seen, None] + sums[seen]) / (
                weight[seen] + counts[seen]
            )[:, None]
            weight += counts
            step += 1
            if step == 1 or max_no_improvement is None:  # the first batch measures the init
                continue
            inertia /= len(rows)
            ewa = inertia if ewa is None else ewa * (1 - alpha) + inertia * alpha
            if best is None or ewa < best:
                best, no_improvement = ewa, 0
            else:
                no_improvement += 1
            if no_improvement >= max_no_improvement:
                done = True
                break
    labels, dist = _nearest(Z, centers)
    (inertia,) = _all_reduce(np.array([dist.sum()]))
    return KMeansResult(centers, labels, float(inertia[0]), it)


def kmeans_plusplus_starts(sample: np.ndarray, n_clusters: int, n_init: int, seed: int) -> list:
    """``n_init`` k-means++ initialisations (K, d) drawn on ``sample`` with ``seed``, computed
    on rank 0 and handed to every rank."""

    def draw():
        rs = np.random.RandomState(seed)
        X = np.asarray(sample, dtype=np.float64)
        return [kmeans_plusplus(X, n_clusters, random_state=rs)[0] for _ in range(n_init)]

    return distributed.on_main(draw)


def fit_kmeans(Z_local: np.ndarray, clusterer: LatentClusterer, sample: np.ndarray, seed: int):
    """k-means or mini-batch k-means with ``clusterer``'s parameters over all ranks: every
    k-means++ start of ``sample`` is run (k-means) or scored on all codes (mini-batch, which
    then runs from the best); the lowest all-reduced inertia wins (the first on ties)."""
    params = clusterer.get_config()["params"]
    starts = kmeans_plusplus_starts(sample, clusterer.n_clusters, params["n_init"], seed)
    if clusterer.name == "kmeans":
        runs = [kmeans_sharded(Z_local, c, params["max_iter"], params["tol"]) for c in starts]
        return min(runs, key=lambda r: r.inertia)
    scores = [_all_reduce(np.array([_nearest(Z_local, c)[1].sum()]))[0][0] for c in starts]
    best = starts[int(np.argmin(scores))]
    return minibatch_kmeans_sharded(
        Z_local, best, params["batch_size"], params["max_iter"], seed=seed
    )


# ---------------------------------------------------------------------- the entry point
def cluster_shards(
    Z_local, reducer, clusterer: LatentClusterer, seed: int, sample_size: int | None = None
) -> ShardedFit:
    """Fit ``reducer`` (or None) and ``clusterer`` to the codes of all ranks, this rank
    holding ``Z_local`` (its shard, in rank order). Returns the fitted objects, the labels
    of all N codes (gathered: N int64 on every rank) and a description (``info``).

    k-means family without a reducer: all-reduced (:func:`fit_kmeans`), from k-means++ on
    the sample; the returned clusterer holds the centres and all N labels, so it predicts
    and saves as one fitted in one process. Otherwise rank 0 fits reducer and clusterer on
    the sample and every rank assigns its shard (:func:`fit_on_sample`). ``sample_size``:
    default :func:`sample_size_for` the clusterer; the sample is drawn with ``seed``.
    """
    Z_local = _checked(Z_local)
    start, n = shard_layout(len(Z_local))
    size = sample_size_for(clusterer) if sample_size is None else sample_size
    rows = sample_indices(n, size, seed)
    info = {"processes": distributed.world_size(), "n_codes": n, "clusterer": clusterer.name,
            "reducer": None if reducer is None else reducer.name, "sample_size": len(rows),
            "sample_seed": seed}  # fmt: skip
    if reducer is None and clusterer.name in ALL_REDUCED:
        result = fit_kmeans(Z_local, clusterer, gather_rows(Z_local, start, rows), seed)
        labels = np.concatenate(distributed.gather(result.labels))
        state = {"labels_": labels, "cluster_centers_": result.centers}
        clusterer = type(clusterer).from_state(clusterer.get_config(), state)
        info.update(method="all-reduce", inertia=result.inertia, n_iter=result.n_iter)
        on = f"all {n:,} codes" if len(rows) == n else f"a sample of {len(rows):,} codes"
        info["summary"] = (
            f"clustering {info['processes']} shards of {n:,} codes: {clusterer.name} with "
            f"all-reduced centres (k-means++ on {on}, seed {seed})"
        )
    else:
        reducer, clusterer, local = fit_on_sample(Z_local, start, rows, reducer, clusterer)
        labels = np.concatenate(distributed.gather(local))
        what = clusterer.name if reducer is None else f"{reducer.name} + {clusterer.name}"
        info["method"] = "sample"
        over = f"all {n:,} codes" if len(rows) == n else (
            f"a sample of {len(rows):,} of {n:,} codes (seed {seed})")  # fmt: skip
        info["summary"] = (
            f"{what} fitted on rank 0 over {over}; each of the {info['processes']} ranks "
            "assigned its shard with predict"
        )
    if distributed.is_main():
        log.info("%s", info["summary"])
    return ShardedFit(reducer, clusterer, labels, info)


def _checked(Z_local) -> np.ndarray:
    """``check_codes`` on every rank's shard (which must not be empty); an error on any rank
    is raised on all of them, instead of leaving the others waiting in a collective."""
    Z, error = np.asarray(Z_local), None
    try:
        Z = check_codes(Z)
    except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
        error = exc
    errors = [e for e in distributed.gather(error) if e is not None]
    if errors:
        raise errors[0]
    return Z


def fit_on_sample(Z_local, start: int, rows: np.ndarray, reducer, clusterer: LatentClusterer):
    """Rank 0 fits ``reducer`` (or None) and ``clusterer`` on the global ``rows`` of the codes
    (only those rows are gathered) and hands them to every rank; each rank then labels its
    shard: a sampled code keeps the label of the fit, any other gets
    ``clusterer.predict(reducer.transform(code))`` (HDBSCAN: the label of the nearest sampled
    code; Ward: the nearest cluster mean; UMAP: its ``transform`` of new points).
    Returns (reducer, clusterer, this rank's labels (n_local,))."""
    sample = gather_rows(Z_local, start, rows)

    def fit():
        clusterer.fit(reducer.fit_transform(sample) if reducer is not None else sample)
        return reducer, clusterer

    reducer, clusterer = distributed.on_main(fit)
    mine = rows[(rows >= start) & (rows < start + len(Z_local))]
    labels = np.empty(len(Z_local), dtype=np.int64)
    rest = np.setdiff1d(np.arange(len(Z_local)), mine - start)
    labels[mine - start] = clusterer.labels_[np.searchsorted(rows, mine)]
    if len(rest):
        codes = Z_local[rest]
        labels[rest] = clusterer.predict(codes if reducer is None else reducer.transform(codes))
    return reducer, clusterer, labels
