"""Table 1 of the one-stage autoencoders paper, measured: k-means on pixels, AE + k-means,
shallow ACRBM and AE + ACRBM, each with 10 or 30 clusters.

One JSON line per fitted model, appended to --out as soon as it finishes, with the
paper's score, the majority-mapped accuracy ("purity": every cluster to its most frequent
class, which minimises the total cluster entropy, appendix A), the one-to-one Hungarian
ACC (meaningful when K = the number of classes), NMI, the clusters in use, the mean
confidence max h (ACRBM), the parameter count and the training seconds; for the two
autoencoder methods also ``code_kmeans``, the scores of k-means on the linear code h_AE,
and for ``ae-kmeans`` the ReLU units that are zero on every image. Methods:

- ``kmeans``: k-means (10 runs, lowest inertia) on the flattened pixels;
- ``ae-kmeans``: ``AEACRBM(head="relu")``, the same network trained on reconstruction
  alone, then k-means on its ReLU layer (Table 3: h_AE of 100);
- ``acrbm``: the shallow ACRBM (Table 3's settings, 20 epochs);
- ``ae-acrbm``: AE + ACRBM with the estimator's defaults (h_AE of 90 and 100 filters;
  Table 3 widens both to 300 for 30 clusters, which costs about 5x the time per step on
  this CPU, so ``--wide`` asks for it).

The autoencoder methods train for the estimator's default epochs (25 of pre-training + 25)
unless ``--param epochs=..`` / ``--param pretrain_epochs=..`` say otherwise; the reference
``ae-kmeans`` trains for the same number.

    python bench/one_stage.py --dataset mnist5k --seeds 0,1,2 \
        --out bench/results/one_stage_mnist5k.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

import numpy as np
from sklearn.cluster import KMeans

from aeclust import ACRBM, AEACRBM, load_dataset
from aeclust.metrics import cluster_acc, nmi, purity
from aeclust.training.inference import apply_batched

PAPER = {  # Table 1, MNIST test set (purity, %)
    ("kmeans", 10): 57.32, ("ae-kmeans", 10): 79.56, ("acrbm", 10): 61.44,
    ("acrbm", 30): 76.95, ("ae-acrbm", 10): 86.80, ("ae-acrbm", 30): 92.86,
}  # fmt: skip


def estimator(method: str, k: int, seed: int, wide: bool, extra: dict):
    if method == "acrbm":
        extra = {key: v for key, v in extra.items() if key in ACRBM().get_params()}
        return ACRBM(n_clusters=k, random_state=seed, **extra)
    if method == "ae-kmeans":
        return AEACRBM(n_clusters=k, head="relu", latent_dim=100, random_state=seed, **extra)
    width = {"latent_dim": 300, "channels": 300} if wide and k > 10 else {}
    return AEACRBM(n_clusters=k, random_state=seed, **{**width, **extra})


def code_kmeans(est, X, y, k: int, seed: int) -> dict:
    """k-means (10 runs, lowest inertia) on the linear code h_AE of a fitted AEACRBM: the
    other reading of the paper's "K-means on AE latent representation" (appendix B), and
    for AE + ACRBM where k-means on its final codes would land."""
    Z = apply_batched(lambda m, x: m(x).code, est.network_, X, 512, est.device_)
    return scores(y, KMeans(k, n_init=10, random_state=seed).fit(Z.astype(np.float64)).labels_)


def scores(y, labels) -> dict:
    """The paper's purity, the one-to-one Hungarian ACC and NMI of one partition."""
    return {"purity": purity(y, labels), "acc": cluster_acc(y, labels), "nmi": nmi(y, labels)}


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--methods", default="kmeans,acrbm,ae-kmeans,ae-acrbm")
    p.add_argument("--clusters", default="10,30")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--wide", action="store_true", help="Table 3's 300 widths for 30 clusters")
    p.add_argument("--param", action="append", default=[], metavar="KEY=JSON")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    data = load_dataset(args.dataset)
    X, y = data.X, data.y
    extra = {kv.split("=", 1)[0]: json.loads(kv.split("=", 1)[1]) for kv in args.param}
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method in args.methods.split(","):
            for k in [int(c) for c in args.clusters.split(",")]:
                if method in ("kmeans", "ae-kmeans") and k != 10:
                    continue  # the paper's references have 10 clusters only
                row = {"dataset": data.name, "n": len(X), "method": method, "k": k,
                       "seed": seed, "params": extra, "commit": commit(),
                       "paper_mnist": PAPER.get((method, k))}  # fmt: skip
                t0 = time.perf_counter()
                if method == "kmeans":
                    km = KMeans(k, n_init=10, random_state=seed).fit(X.reshape(len(X), -1))
                    labels, n_params, confidence = km.labels_, None, None
                    seconds = time.perf_counter() - t0
                else:
                    est = estimator(method, k, seed, args.wide, extra).fit(X)
                    seconds = time.perf_counter() - t0
                    labels, confidence = est.labels_, getattr(est, "confidence_", None)
                    n_params = sum(p.numel() for p in est.network_.parameters())
                    row["epochs"] = est.epochs + getattr(est, "pretrain_epochs", 0)
                    row["latent_dim"] = getattr(est, "latent_dim", None)
                    if method.startswith("ae-"):
                        row["code_kmeans"] = code_kmeans(est, X, y, k, seed)
                    if method == "ae-kmeans":  # ReLU units that are zero on every image
                        row["dead_units"] = int((est.transform(X).max(0) <= 0).sum())
                row.update(
                    seconds=seconds, **scores(y, labels),
                    clusters_used=int(len(np.unique(labels))), confidence=confidence,
                    parameters=n_params,
                )  # fmt: skip
                print(json.dumps(row), flush=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
