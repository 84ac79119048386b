"""UMAP + GMM on the same codes with pynndescent's approximate neighbours and with the
exact ones that :class:`aeclust.cluster.reducers.UMAPReducer` now gives UMAP (from 4,096
to 100,000 codes). One JSON line per seed and mode (ACC, NMI); the default UMAP settings
and a 10-start GMM, the seed shared by UMAP and GMM as in ``aeclust run``.

    aeclust -q run --out /tmp/codes --reducer none --clusterer kmeans   # codes of mnist5k
    python bench/umap_neighbours.py /tmp/codes/embeddings.npy --dataset mnist5k \
        --seeds 0,1,2 >> bench/results/umap_neighbours.jsonl

Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np

from aeclust.cluster import build_clusterer
from aeclust.cluster.numba_cache import import_umap
from aeclust.cluster.reducers import UMAPReducer, exact_neighbours
from aeclust.data import load_dataset
from aeclust.metrics import cluster_acc, nmi


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("codes", help="embeddings.npy of a run, in the dataset's order")
    parser.add_argument("--dataset", default="mnist5k", help="the labels to score against")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated")
    args = parser.parse_args(argv)
    Z = np.load(args.codes).astype(np.float32)
    y = load_dataset(args.dataset).y
    umap = import_umap()
    warnings.simplefilter("ignore")
    for seed in (int(s) for s in args.seeds.split(",")):
        params = UMAPReducer(10, seed).resolved_params(len(Z))
        for mode in ("approximate", "exact"):
            knn = exact_neighbours(Z, params) if mode == "exact" else (None, None, None)
            reducer = umap.UMAP(
                n_components=10, random_state=seed, n_jobs=1, precomputed_knn=knn, **params
            )
            labels = build_clusterer("gmm", 10, seed).fit(reducer.fit_transform(Z)).labels_
            scores = {"acc": round(cluster_acc(y, labels), 4), "nmi": round(nmi(y, labels), 4)}
            row = {"dataset": args.dataset, "seed": seed, "neighbours": mode, **scores}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
