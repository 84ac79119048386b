"""Issue 19's second probe: self-labelling after a first clustering (SPICE/SPC-like).

    python bench/selflabel.py DATASET SEED [--start pca50] [--share 0.5] [--rounds 2]
        [--epochs 3] [--then argmax|recluster]

Round 0 clusters label-free start features (``pcaN``, ``hogP`` as in features.py, or the
codes in a .npy file, e.g. a run's embeddings.npy) with the default stage
(UMAP to k components, GMM with 10 starts) and keeps, in every cluster, the ``share`` of its
images with the highest GMM posterior. A small CNN (the conv AE's encoder widths, batch norm,
a 128-unit embedding and a k-way head) learns those pseudo-labels on randomly shifted and
rotated copies (label smoothing 0.1). Then, for every image, either its argmax class
(``argmax``) or UMAP + GMM on its embedding (``recluster``) gives the next round's clusters
and confidences. Prints one JSON line per round: ACC, NMI (labels only score) and seconds.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from features import features
from torch import nn

from aeclust.cluster import build_clusterer, build_reducer
from aeclust.data import load_dataset
from aeclust.metrics import cluster_acc, nmi
from aeclust.training.augment import RandomAffine


class Net(nn.Module):
    def __init__(self, c: int, k: int, widths=(32, 64, 128), dim: int = 128):
        super().__init__()
        layers, c_in = [], c
        for w in widths:
            layers += [nn.Conv2d(c_in, w, 3, 2, 1), nn.BatchNorm2d(w), nn.ReLU()]
            c_in = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(c_in, dim), nn.BatchNorm1d(dim), nn.ReLU())
        self.head = nn.Linear(dim, k)

    def forward(self, x):
        e = self.embed(self.body(x))
        return e, self.head(e)


def cluster(F_: np.ndarray, k: int, seed: int, over: int = 0):
    """(clusters, their k-cluster labels' posteriors, pseudo-labels, their posteriors): the
    pseudo-labels are k-means with ``over`` clusters on the same UMAP codes when ``over``
    (confidence: closeness to the centre; GMM with 30 components took 150 s on 70,000)."""
    Z = build_reducer("umap", n_components=k, random_state=seed).fit_transform(F_)
    c = build_clusterer("gmm", n_clusters=k, random_state=seed, n_init=10).fit(Z)
    labels, conf = c.labels_, c.model_.predict_proba(Z).max(1)
    if not over:
        return labels, conf, labels, conf
    o = build_clusterer("kmeans", n_clusters=over, random_state=seed, n_init=3).fit(Z)
    near = -np.linalg.norm(Z - o.cluster_centers_[o.labels_], axis=1)  # ranked per cluster
    return labels, conf, o.labels_, near


def confident(labels: np.ndarray, conf: np.ndarray, share: float) -> np.ndarray:
    keep = []
    for j in np.unique(labels):
        idx = np.flatnonzero(labels == j)
        keep.append(idx[np.argsort(-conf[idx])[: max(1, int(share * len(idx)))]])
    return np.concatenate(keep)


def fit(params, batch_loss, idx: np.ndarray, epochs: int, batch: int, g) -> list[float]:
    """Adam with a one-cycle learning rate (peak 3e-3) on ``batch_loss(indices)``, over
    shuffled full batches of ``idx`` drawn with ``g``; the loss of every step."""
    opt = torch.optim.Adam(params, 1e-3)
    steps = epochs * (len(idx) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
    losses = []
    for _ in range(epochs):
        perm = torch.from_numpy(idx)[torch.randperm(len(idx), generator=g)]
        for s in range(len(idx) // batch):
            loss = batch_loss(perm[s * batch : (s + 1) * batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
    return losses


def train(X, idx, y, k, seed, epochs, batch, aug, width):
    torch.manual_seed(seed)
    net = Net(X.shape[1], k, widths=(width, 2 * width, 4 * width))
    g = torch.Generator().manual_seed(seed)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y.astype(np.int64))

    def batch_loss(b):
        _, logits = net(aug(Xt[b], g))
        return F.cross_entropy(logits, yt[b], label_smoothing=0.1)

    net.train()
    fit(net.parameters(), batch_loss, idx, epochs, batch, g)
    return net


@torch.no_grad()
def infer(net, X, batch=1024):
    net.eval()
    E, P = [], []
    for s in range(0, len(X), batch):
        e, logits = net(torch.from_numpy(X[s : s + batch]))
        E.append(e.numpy())
        P.append(F.softmax(logits, 1).numpy())
    return np.concatenate(E), np.concatenate(P)


def images(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The dataset's images (float32, contiguous), labels and number of classes."""
    torch.set_num_threads(2)
    data = load_dataset(name)
    return np.ascontiguousarray(data.X, dtype=np.float32), data.y, len(np.unique(data.y))


def main(a) -> None:
    X, y, k = images(a.dataset)
    t0 = time.perf_counter()
    if a.start.endswith(".npy"):
        start = np.load(a.start).astype(np.float32)
    else:
        start = np.ascontiguousarray(features(X, a.start, a.seed), dtype=np.float32)
    labels, conf, pseudo, pconf = cluster(start, k, a.seed, a.over)
    kk = a.over or k
    aug = RandomAffine(shift=a.shift, rotation=a.rotation, hflip=a.hflip)

    def line(r, **extra):
        out = dict(
            dataset=a.dataset,
            seed=a.seed,
            round=r,
            start=a.start,
            share=a.share,
            over=a.over,
            epochs=a.epochs,
            then=a.then,
            acc=round(cluster_acc(y, labels), 4),
            nmi=round(nmi(y, labels), 4),
            s=round(time.perf_counter() - t0, 1),
            **extra,
        )
        print(json.dumps(out), flush=True)  # fmt: skip

    line(0)
    for r in range(1, a.rounds + 1):
        idx = confident(pseudo, pconf, a.share)
        picked = round(cluster_acc(y[idx], labels[idx]), 4)
        net = train(X, idx, pseudo, kk, a.seed + r, a.epochs, a.batch, aug, a.width)
        E, P = infer(net, X)
        if a.then == "argmax":
            labels = pseudo = P.argmax(1)
            conf = pconf = P.max(1)
        else:
            labels, conf, pseudo, pconf = cluster(E, k, a.seed, a.over)
        line(r, picked_acc=picked, argmax_acc=round(cluster_acc(y, P.argmax(1)), 4))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("seed", type=int)
    p.add_argument("--start", default="pca50")
    p.add_argument("--share", type=float, default=0.5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--shift", type=float, default=0.1)
    p.add_argument("--rotation", type=float, default=10.0)
    p.add_argument("--hflip", action="store_true")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--over", type=int, default=0, help="pseudo-labels from this many clusters")
    p.add_argument("--then", choices=("argmax", "recluster"), default="argmax")
    main(p.parse_args())
