"""Cluster codes split across the processes torchrun started, and report (from rank 0, as
JSON on stdout) what every rank got: ``torchrun --nproc-per-node 2 ddp_kmeans.py MODE OUT``.

MODE "functions": the functions of :mod:`aeclust.cluster.sharded` on the codes of
:func:`codes` (each rank holds its shard); the test runs the same in one process.
MODE "estimator": AEClusterer fits (k-means, GMM) of 200 digits with a sample size of 150
(k-means++ and GMM on a sample); rank 0 saves the models to OUT/kmeans and OUT/gmm.
"""

import json
import logging
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, make_blobs

from aeclust import AEClusterer
from aeclust.cluster import build_clusterer, sharded
from aeclust.cluster.sharded import (
    cluster_shards,
    kmeans_sharded,
    minibatch_kmeans_sharded,
    shard_bounds,
)
from aeclust.training import distributed

N_CODES = 1001  # odd: the shards differ in size


def codes():
    """(N, 6) codes in 5 overlapping blobs; initial centres, one of them far from every code
    (its cluster is empty at the first step)."""
    Z, _ = make_blobs(N_CODES, n_features=6, centers=5, cluster_std=2.5, random_state=0)
    init = Z[:5].copy()
    far = np.vstack([Z[:4], Z.max(axis=0) + 50])
    return Z, init, far


def run_functions(Z_local, init, far):
    """Everything the test compares with one process; labels are this rank's."""
    out = {}
    for name, start in (("kmeans", init), ("kmeans_far", far)):
        r = kmeans_sharded(Z_local, start, max_iter=300, tol=1e-4)
        out[name] = {"centers": r.centers.tolist(), "labels": r.labels.tolist(),
                     "inertia": r.inertia, "n_iter": r.n_iter}  # fmt: skip
    r = minibatch_kmeans_sharded(Z_local, init, batch_size=64, max_iter=5, seed=3)
    out["minibatch"] = {"centers": r.centers.tolist(), "labels": r.labels.tolist(),
                        "n_iter": r.n_iter}  # fmt: skip
    Z_all = codes()[0]  # the test's view of every code, for rank 0's fitted clusterer
    for name in ("kmeans", "minibatch-kmeans", "gmm", "hdbscan"):
        params = {"min_cluster_size": 20} if name == "hdbscan" else {"n_init": 2}
        clusterer = build_clusterer(name, 5, random_state=0, **params)
        fit = cluster_shards(Z_local, None, clusterer, seed=7, sample_size=400)
        out[f"fit-{name}"] = {
            "labels": fit.labels.tolist(),
            "info": fit.info,
            "predict_all": fit.clusterer.predict(Z_all).tolist(),
        }
    return out


def run_estimators(out_dir: Path):
    d = load_digits()
    X = (d.images[:200] / 16).astype(np.float32)[:, None]
    report = {}
    sharded.SAMPLE_SIZE = 150  # below N: GMM predicts the codes outside its sample
    for clusterer in ("kmeans", "gmm"):
        est = AEClusterer(epochs=2, batch_size=50, n_clusters=4, clusterer=clusterer,
                          clusterer_params={"n_init": 2}, random_state=0,
                          device="cpu").fit(X)  # fmt: skip
        shard = est.transform_shard(X)
        report[clusterer] = {
            "labels": est.labels_.tolist(), "n_clusters": est.n_clusters_,
            "centers": np.asarray(est.cluster_centers_).tolist(), "info": est.cluster_info_,
            "shard": list(est.shard_), "shard_rows": [shard.start, shard.stop],
            "codes": shard.codes.tolist(),
        }  # fmt: skip
        if distributed.is_main():
            est.save(out_dir / clusterer)
    return report


if __name__ == "__main__":
    mode, out_dir = sys.argv[1], Path(sys.argv[2])
    distributed.setup("cpu")
    if distributed.is_main():
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if mode == "functions":
        Z, init, far = codes()
        start, stop = shard_bounds(len(Z), distributed.rank(), distributed.world_size())
        mine = run_functions(Z[start:stop], init, far)
    else:
        mine = run_estimators(out_dir)
    everyone = distributed.gather(mine)
    if distributed.is_main():
        print(json.dumps({"world": distributed.world_size(), "ranks": everyone}))
