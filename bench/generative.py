"""Morais' thesis tables, measured: β-VAE vs WAE-GAN (Table 4.1), the HDBSCAN denominator
sweep (Table 4.2), L latent groups per group (Table 4.3), GMM vs HDBSCAN (Table 4.4).

One JSON line per trained model (appended to --out as soon as it finishes): for every
latent group its codes are reduced once with UMAP (eq. 3.8's neighbours, 10 components),
then clustered on that embedding by HDBSCAN with min_cluster_size = N / 50 (eq. 4.3), by
HDBSCAN with each denominator of Table 4.2 on at most --sweep-max points of it, by GMM
with K from HDBSCAN at denominator 50 (the thesis' fully unsupervised GMM, section 4.4)
and by GMM with K = the number of classes. Scores per
clustering: n_clusters, labelled, acc_labelled, acc (total; noise counts as wrong), nmi,
silhouette. Also the reconstruction error (mean squared error per pixel, [0, 1] scale),
the rollbacks, and whether training diverged without recovering. With --frechet-epochs E,
a DenseNet classifier is trained for E epochs on the data's labels (seed 0, once per
invocation) and the Fréchet distance between 5,000 generated and 5,000 real images is
computed in its features ("frechet_densenet"; not the Inception FID, see
aeclust.metrics.frechet_distance).

    python bench/generative.py --dataset mnist5k --models wae-gan,beta-vae --groups 1 \
        --seeds 0,1,2 --epochs 30 --out bench/results/generative_mnist5k.jsonl
    python bench/table.py generative bench/results/generative_mnist5k.jsonl
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from aeclust import WAEGAN, BetaVAE, DenseNetClassifier, load_dataset
from aeclust.cluster import build_clusterer, build_reducer
from aeclust.metrics import (
    acc_labelled,
    cluster_acc,
    frechet_distance,
    labelled_fraction,
    nmi,
    silhouette,
)
from aeclust.training import TrainingDiverged

DENOMINATORS = (20, 25, 30, 35, 40, 45, 50, 55)


def scores(y, labels, space, seed) -> dict:
    return {
        "n_clusters": int(len(set(labels.tolist()) - {-1})),
        "labelled": labelled_fraction(labels),
        "acc_labelled": acc_labelled(y, labels),
        "acc": cluster_acc(y, labels),
        "nmi": nmi(y, labels),
        "silhouette": silhouette(space, labels, 5000, seed),
    }


def cluster_group(Z, y, k, seed, sweep_max: int) -> dict:
    embedding = build_reducer("umap", 10, seed, n_neighbors="auto").fit_transform(Z)
    hdb = build_clusterer("hdbscan", min_cluster_size_denominator=50).fit(embedding)
    out = {"hdbscan_50": scores(y, hdb.labels_, embedding, seed)}
    # the sweep (Table 4.2, which the thesis ran on the 10,000 test images): on a seeded
    # subsample of at most sweep_max points, as sklearn's HDBSCAN is O(N^2) with
    # min_samples = min_cluster_size (about 2 minutes per fit on 70,000 points here)
    sub = np.arange(len(Z))
    if len(sub) > sweep_max:
        sub = np.sort(np.random.default_rng(seed).choice(len(Z), sweep_max, replace=False))
    out["sweep_n"] = len(sub)
    for d in DENOMINATORS:
        hdb = build_clusterer("hdbscan", min_cluster_size_denominator=d).fit(embedding[sub])
        out[f"sweep_hdbscan_{d}"] = scores(y[sub], hdb.labels_, embedding[sub], seed)
    k_found = out["hdbscan_50"]["n_clusters"]
    for name, kk in (("gmm_k_hdbscan", k_found), ("gmm_k_classes", k)):
        if kk >= 2:  # a GMM needs two clusters; one HDBSCAN cluster leaves this one out
            gmm = build_clusterer("gmm", kk, seed).fit(embedding)
            out[name] = scores(y, gmm.labels_, embedding, seed)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--models", default="wae-gan,beta-vae")
    p.add_argument("--groups", default="1", help="latent groups L for wae-gan, e.g. 1,2,3")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--param", action="append", default=[], metavar="KEY=JSON")
    p.add_argument("--frechet-epochs", type=int, default=0, help="0: no Fréchet distance")
    p.add_argument("--sweep-max", type=int, default=10000, help="points for the sweep")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    data = load_dataset(args.dataset)
    X, y = data.X, data.y
    k = len(np.unique(y))
    real_features = classifier = None
    if args.frechet_epochs:
        classifier = DenseNetClassifier(epochs=args.frechet_epochs, random_state=0).fit(X, y)
        real = np.random.default_rng(0).choice(len(X), min(5000, len(X)), replace=False)
        real_features = classifier.features(X[np.sort(real)])
    extra = {kv.split("=", 1)[0]: json.loads(kv.split("=", 1)[1]) for kv in args.param}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for model in args.models.split(","):
            for L in [int(g) for g in args.groups.split(",")] if model != "beta-vae" else [1]:
                common = dict(epochs=args.epochs, random_state=seed, reducer=None,
                              clusterer="kmeans", n_clusters=k, **extra)  # fmt: skip
                est = BetaVAE(**common) if model == "beta-vae" else WAEGAN(latent_groups=L,
                                                                          **common)  # fmt: skip
                row = {"dataset": data.name, "n": len(X), "model": model, "latent_groups": L,
                       "seed": seed, "epochs": args.epochs, "params": extra}  # fmt: skip
                t0 = time.perf_counter()
                try:
                    est.fit(X)
                except TrainingDiverged as exc:
                    row.update(diverged=str(exc), seconds=time.perf_counter() - t0)
                    print(json.dumps(row), flush=True)
                    with open(args.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
                    continue
                row["train_seconds"] = est.timings_["train"]
                row["rollbacks"] = est.rollbacks_
                X_hat = np.concatenate([est.reconstruct(X[i : i + 2048])
                                        for i in range(0, len(X), 2048)])  # fmt: skip
                row["reconstruction_mse"] = float(np.mean((X_hat - X) ** 2))
                if classifier is not None:
                    fake = classifier.features(est.generate(len(real_features), random_state=0))
                    row["frechet_densenet"] = frechet_distance(fake, real_features)
                groups = est.transform_groups(X)
                row["groups"] = [cluster_group(Z, y, k, seed, args.sweep_max) for Z in groups]
                row["seconds"] = time.perf_counter() - t0
                print(json.dumps({k_: v for k_, v in row.items() if k_ != "groups"}), flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
