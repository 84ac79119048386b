"""Benchmark the default pipelines: conv AE + k-means and conv AE + UMAP + GMM (N2D).

Prints one JSON line per (dataset, pipeline, seed): acc, nmi, ari, seconds per stage and
peak memory (max RSS of this process, MiB). Run from the repository root:

    python bench/pipelines.py --datasets digits mnist5k fashion-mnist --seeds 0 1 2

The autoencoder of a seed is trained once and shared by both pipelines (they differ only
after the latent codes). Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from aeclust import AEClusterer, load_dataset
from aeclust.cluster import build_clusterer, build_reducer
from aeclust.metrics import evaluate

PIPELINES = {"conv+kmeans": (None, "kmeans"), "conv+umap+gmm": ("umap", "gmm")}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mnist5k", "fashion-mnist"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None, help="default: AEClusterer's 30")
    parser.add_argument(
        "--augment", default=None, choices=["auto", "affine", "none"],
        help="default: AEClusterer's none (auto: random shifts and rotations)",
    )  # fmt: skip
    parser.add_argument(
        "--gmm-n-init", type=int, nargs="+", default=None,
        help="GMM restarts, default aeclust's 10; several values give one row each",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--umap-epochs", type=int, default=None, help="default: aeclust's 200")
    parser.add_argument("--pipelines", nargs="+", default=list(PIPELINES), choices=list(PIPELINES))
    args = parser.parse_args(argv)
    for name in args.datasets:
        data = load_dataset(name)
        k = len(set(data.y.tolist()))
        for seed in args.seeds:
            settings = {"epochs": args.epochs, "augment": args.augment}
            est = AEClusterer(
                autoencoder="conv", clusterer="kmeans", n_clusters=k, batch_size=args.batch_size,
                random_state=seed, **{key: v for key, v in settings.items() if v is not None},
            )  # fmt: skip
            est.fit(data.X)
            Z = est.transform(data.X)
            for pipeline in args.pipelines:
                reducer_name, clusterer_name = PIPELINES[pipeline]
                t0 = time.perf_counter()
                umap = {"n_epochs": args.umap_epochs} if args.umap_epochs else {}
                params = umap if reducer_name == "umap" else {}
                reducer = build_reducer(reducer_name, n_components=k, random_state=seed, **params)
                codes = Z if reducer is None else reducer.fit_transform(Z)
                seconds_reduce = time.perf_counter() - t0
                # several GMM restart counts share the codes and their UMAP reduction
                n_inits = (args.gmm_n_init or [None]) if clusterer_name == "gmm" else [None]
                for n_init in n_inits:
                    t1 = time.perf_counter()
                    params = {} if n_init is None else {"n_init": n_init}
                    clusterer = build_clusterer(clusterer_name, k, random_state=seed, **params)
                    labels = clusterer.fit(codes).labels_
                    seconds_cluster = seconds_reduce + time.perf_counter() - t1
                    scores = evaluate(data.y, labels)
                    row = {
                        "dataset": name, "pipeline": pipeline, "seed": seed, "n": len(data),
                        "epochs": est.epochs, "augment": est.augment or "none",
                        "batch_size": args.batch_size,
                        **({"umap_epochs": args.umap_epochs} if args.umap_epochs else {}),
                        **({"gmm_n_init": clusterer.get_config()["params"]["n_init"]}
                           if clusterer_name == "gmm" else {}),
                        "acc": scores["acc"], "nmi": scores["nmi"],
                        "ari": scores["ari"], "seconds_train": round(est.timings_["train"], 1),
                        "seconds_encode": round(est.timings_["encode"], 1),
                        "seconds_cluster": round(seconds_cluster, 1),
                        "peak_mib": round(peak_mib()),
                    }  # fmt: skip
                    print(json.dumps(row), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
