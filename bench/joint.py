"""Benchmark the joint methods: DCAE-KMeans, DEC, IDEC, DCEC, and AE + k-means as reference.

The reference ("ae+kmeans") is the DCAE paper's network trained on E1 (BCE) alone for the
same epochs and batch size as DCAE-KMeans, then k-means on its codes: the comparison the
issue asks for. Prints one JSON line per (dataset, method, seed): acc, nmi, ari, seconds
(training + clustering), the number of epochs run and peak memory (max RSS, MiB). Run from
the repository root:

    python bench/joint.py --datasets mnist5k digits --seeds 0 1 2
    python bench/joint.py --datasets fashion-mnist --subset 5000 --methods dcae-kmeans

Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from aeclust import DCEC, DEC, IDEC, AEClusterer, DCAEKMeans, load_dataset
from aeclust.metrics import evaluate

METHODS = ("ae+kmeans", "dcae-kmeans", "dec", "idec", "dcec")


def make(method: str, k: int, seed: int, args) -> object:
    joint = dict(n_clusters=k, random_state=seed)
    dec = dict(pretrain_epochs=args.pretrain_epochs, epochs=args.cluster_epochs, **joint)
    if method == "ae+kmeans":
        return AEClusterer(autoencoder="dcae", loss="bce", epochs=args.epochs, batch_size=100,
                           augment=None,
                           clusterer="kmeans", **joint)  # fmt: skip
    if method == "dcae-kmeans":
        return DCAEKMeans(epochs=args.epochs, init=args.dcae_init,
                          warmup_epochs=args.warmup_epochs, e1_reduction=args.e1_reduction,
                          **joint)  # fmt: skip
    return {"dec": DEC, "idec": IDEC, "dcec": DCEC}[method](**dec)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist5k", "fashion-mnist"])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=50, help="DCAE-KMeans and its reference")
    parser.add_argument("--dcae-init", default="random", choices=["random", "kmeans"])
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--e1-reduction", default="sum", choices=["sum", "mean"])
    parser.add_argument("--pretrain-epochs", type=int, default=50, help="DEC, IDEC, DCEC")
    parser.add_argument(
        "--subset",
        type=int,
        default=0,
        help="a random subset of this many images (chosen with seed 0)",
    )
    parser.add_argument("--cluster-epochs", type=int, default=50, help="DEC, IDEC, DCEC (most)")
    args = parser.parse_args(argv)
    for name in args.datasets:
        data = load_dataset(name)
        if args.subset:  # the same images for every seed and method
            rng = np.random.default_rng(0)
            data = data.subset(rng.choice(len(data), args.subset, replace=False))
        k = len(set(data.y.tolist()))
        for seed in args.seeds:
            for method in args.methods:
                est = make(method, k, seed, args)
                t0 = time.perf_counter()
                est.fit(data.X, data.y) if method != "ae+kmeans" else est.fit(data.X)
                seconds = time.perf_counter() - t0
                scores = evaluate(data.y, est.labels_)
                row = {
                    "dataset": name, "method": method, "seed": seed, "n": len(data),
                    "epochs": len(est.history_), "acc": scores["acc"], "nmi": scores["nmi"],
                    "ari": scores["ari"], "seconds": round(seconds, 1),
                    "peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                    "settings": {k: v for k, v in vars(args).items() if k not in
                                 ("datasets", "methods", "seeds")},
                }  # fmt: skip
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
