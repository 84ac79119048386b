"""Diagnose DCAE-KMeans against AE + k-means: ACC of the method's own centres and of
k-means (k-means++, 10 inits) re-run on its final codes, the final E1 and E2, and how many
emptied clusters were re-seeded. Prints one JSON line per (variant, seed):

    python bench/dcae_diagnosis.py mnist5k 0 1 2

Variants: λ = 0 (E1 only), the paper's λ = 0.2 from random centres, and λ = 0.2 from
k-means centres after 5 warm-up epochs; 20 epochs in all. Never run by the test suite.
"""

from __future__ import annotations

import json
import sys
import time

from sklearn.cluster import KMeans

from aeclust import DCAEKMeans, load_dataset
from aeclust.metrics import evaluate

VARIANTS = [
    {"epochs": 20, "lam": 0.0},
    {"epochs": 20},
    {"epochs": 15, "warmup_epochs": 5, "init": "kmeans"},
]


def main(dataset: str, seeds: list[int]) -> None:
    data = load_dataset(dataset)
    k = len(set(data.y.tolist()))
    for variant in VARIANTS:
        for seed in seeds:
            t0 = time.perf_counter()
            est = DCAEKMeans(n_clusters=k, random_state=seed, **variant).fit(data.X, data.y)
            own = evaluate(data.y, est.labels_)
            km = KMeans(k, n_init=10, random_state=seed).fit(est.transform(data.X)).labels_
            rerun = evaluate(data.y, km)
            last = est.history_[-1]
            row = {
                "dataset": dataset, "seed": seed, **variant,
                "acc": own["acc"], "nmi": own["nmi"],
                "acc_kmeans_on_codes": rerun["acc"], "nmi_kmeans_on_codes": rerun["nmi"],
                "e1": last["e1"], "e2": last["e2"],
                "reseeded_total": sum(len(r.get("reseeded", [])) for r in est.history_),
                "acc_per_epoch": [r["acc"] for r in est.history_ if "acc" in r],
                "seconds": round(time.perf_counter() - t0, 1),
            }  # fmt: skip
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]] or [0])
