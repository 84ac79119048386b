"""One clustpy method on one data file; run by bench/peers.py inside clustpy's own virtual
environment (it never imports aeclust). Saves the cluster of every image to OUT.npy.

    python peers_worker.py DATA.npz METHOD SEED PRETRAIN_EPOCHS CLUSTERING_EPOCHS OUT.npy

METHOD: kmeans and umap-gmm (on the pixels), ae-kmeans, dec, idec, dcn, n2d (clustpy's
default 500-500-2000 feed-forward autoencoder, 10-d code, batch 256, Adam 1e-3).
"""

from __future__ import annotations

import sys

import numpy as np
import torch


def torchvision_schemas() -> None:
    """clustpy imports torchvision, whose compiled operators do not load against the CPU
    torch; declaring the operators its Python side registers fakes for lets it import. None
    of them runs in these methods (they would fail loudly if one did)."""
    lib = torch.library.Library("torchvision", "DEF")
    for op in ("nms", "qnms", "roi_align", "_roi_align_backward", "qroi_align", "roi_pool",
               "_roi_pool_backward", "ps_roi_align", "_ps_roi_align_backward", "ps_roi_pool",
               "_ps_roi_pool_backward", "deform_conv2d", "_deform_conv2d_backward",
               "box_iou_rotated"):  # fmt: skip
        lib.define(f"{op}(Tensor[] args) -> Tensor")
    torchvision_schemas.lib = lib  # keep the library alive


def main(data: str, method: str, seed: int, pretrain: int, clustering: int, out: str) -> None:
    torchvision_schemas()
    from sklearn.cluster import KMeans
    from sklearn.mixture import GaussianMixture

    with np.load(data) as f:
        X, k = f["X"].astype(np.float32), int(f["k"])
    torch.manual_seed(seed)
    deep = dict(n_clusters=k, pretrain_epochs=pretrain, random_state=seed)
    if method == "kmeans":
        labels = KMeans(k, n_init=10, random_state=seed).fit_predict(X)
    elif method == "umap-gmm":
        import umap

        Z = umap.UMAP(n_components=k, n_neighbors=20, min_dist=0.0, random_state=seed)
        labels = GaussianMixture(k, random_state=seed).fit_predict(Z.fit_transform(X))
    elif method == "n2d":
        import umap
        from clustpy.deep import N2D

        manifold = dict(n_components=k, n_neighbors=20, min_dist=0.0)  # N2D's authors' UMAP
        labels = N2D(**deep, manifold_class=umap.UMAP, manifold_params=manifold).fit(X).labels_
    else:
        from clustpy.deep import DCN, DEC, IDEC

        if method == "ae-kmeans":  # DCN's pre-training and its k-means start, no DCN epochs
            est = DCN(**deep, clustering_epochs=0)
        else:
            est = {"dec": DEC, "idec": IDEC, "dcn": DCN}[method](
                **deep, clustering_epochs=clustering
            )
        labels = est.fit(X).labels_
    np.save(out, np.asarray(labels, dtype=np.int64))


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]), int(a[3]), int(a[4]), a[5])
