"""Issue 19's first probe: which label-free features cluster best when fed to the default
clustering stage (UMAP to k components, GMM with 10 initialisations), with no training?

    python bench/features.py DATASET FEATURE SEED

FEATURE is ``pixels``, ``pcaN`` (N principal components of the pixels), ``hogP`` (HOG with
9 orientations, P×P-pixel cells, 2×2-cell blocks) or ``pixhog`` (50 components of each,
side by side). Prints one JSON line: ACC and NMI against the labels (used only to score)
and the seconds of each stage. Grey images only (HOG of the first channel).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from sklearn.decomposition import PCA

from aeclust.cluster import build_clusterer, build_reducer
from aeclust.data import load_dataset
from aeclust.metrics import cluster_acc, nmi


def hog_features(X: np.ndarray, cell: int) -> np.ndarray:
    from skimage.feature import hog

    return np.stack(
        [hog(x[0], orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2)) for x in X]
    )


def features(X: np.ndarray, name: str, seed: int) -> np.ndarray:
    flat = X.reshape(len(X), -1)
    if name == "pixels":
        return flat
    if name.startswith("pca"):
        return PCA(int(name[3:]), random_state=seed).fit_transform(flat)
    if name == "pixhog":
        pca = PCA(50, random_state=seed)
        return np.hstack([pca.fit_transform(flat), pca.fit_transform(hog_features(X, 4))])
    if name.startswith("hog"):
        return hog_features(X, int(name[3:] or 4))
    raise SystemExit(f"unknown feature {name!r}: use pixels, pcaN, hogP or pixhog")


def main(dataset: str, name: str, seed: int) -> dict:
    data = load_dataset(dataset)
    k = len(np.unique(data.y))
    t0 = time.perf_counter()
    F = np.ascontiguousarray(features(data.X, name, seed), dtype=np.float32)
    t1 = time.perf_counter()
    Z = build_reducer("umap", n_components=k, random_state=seed).fit_transform(F)
    t2 = time.perf_counter()
    labels = build_clusterer("gmm", n_clusters=k, random_state=seed, n_init=10).fit_predict(Z)
    t3 = time.perf_counter()
    return dict(
        dataset=dataset, feat=name, seed=seed, dim=F.shape[1],
        acc=round(cluster_acc(data.y, labels), 4), nmi=round(nmi(data.y, labels), 4),
        feat_s=round(t1 - t0, 1), umap_s=round(t2 - t1, 1), gmm_s=round(t3 - t2, 1),
    )  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
