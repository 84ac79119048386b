"""Issue 19's third probe: a small CNN trained contrastively (SimCLR's NT-Xent on two
random views of each image), its embedding clustered by the default stage (UMAP + GMM).

    python bench/contrastive.py DATASET SEED [--epochs 3] [--batch 256] [--tau 0.5]
        [--scale 0.8] [--width 32] [--subset N]

A view is a random affine copy (shift 0.1, rotation 10 degrees, zoom in 1..1/scale) with
random erasing of one rectangle. The projection head (128 -> 64) is dropped after training;
the 128-unit embedding of every image (no augmentation) is reduced with UMAP to k
components and clustered with GMM (10 starts). ``--subset`` trains on a random subset and
encodes all. Prints one JSON line: ACC, NMI (labels only score) and seconds per stage.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from selflabel import Net, fit, images, infer
from torch import nn

from aeclust.cluster import build_clusterer, build_reducer
from aeclust.metrics import cluster_acc, nmi


def view(x: torch.Tensor, g: torch.Generator, scale: float) -> torch.Tensor:
    b = len(x)
    angle = (torch.rand(b, generator=g) * 2 - 1) * math.radians(10)
    zoom = scale + (1 - scale) * torch.rand(b, generator=g)  # <1 zooms in
    move = (torch.rand(b, 2, generator=g) * 2 - 1) * 0.2
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, move[:, 0]], 1), torch.stack([sin, cos, move[:, 1]], 1)], 1
    )
    out = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False),
                        align_corners=False)  # fmt: skip
    h, w = x.shape[-2:]
    ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
    cy = torch.randint(0, h, (b, 1, 1), generator=g)
    cx = torch.randint(0, w, (b, 1, 1), generator=g)
    r = torch.randint(2, max(3, h // 3), (b, 1, 1), generator=g)
    erase = ((ys - cy).abs() < r) & ((xs - cx).abs() < r) & (torch.rand(b, 1, 1, generator=g) < 0.5)
    return out * (~erase).unsqueeze(1)


def nt_xent(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    z = F.normalize(torch.cat([a, b]), dim=1)
    sim = z @ z.T / tau
    n = len(a)
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, target)


def main(a) -> None:
    X, y, k = images(a.dataset)
    t0 = time.perf_counter()
    torch.manual_seed(a.seed)
    net = Net(X.shape[1], k, widths=(a.width, 2 * a.width, 4 * a.width))
    proj = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 64))
    params = [*net.body.parameters(), *net.embed.parameters(), *proj.parameters()]
    g = torch.Generator().manual_seed(a.seed)
    train_idx = np.arange(len(X))
    if a.subset:
        train_idx = np.random.default_rng(a.seed).choice(len(X), a.subset, replace=False)
    Xt = torch.from_numpy(X)

    def batch_loss(b):
        v = torch.cat([view(Xt[b], g, a.scale), view(Xt[b], g, a.scale)])
        return nt_xent(*proj(net.embed(net.body(v))).chunk(2), a.tau)

    net.train()
    losses = fit(params, batch_loss, train_idx, a.epochs, a.batch, g)
    t1 = time.perf_counter()
    E, _ = infer(net, X)
    Z = build_reducer("umap", n_components=k, random_state=a.seed).fit_transform(E)
    t2 = time.perf_counter()
    labels = build_clusterer("gmm", n_clusters=k, random_state=a.seed, n_init=10).fit_predict(Z)
    t3 = time.perf_counter()
    print(json.dumps(dict(
        dataset=a.dataset, seed=a.seed, epochs=a.epochs, batch=a.batch, tau=a.tau,
        scale=a.scale, width=a.width, subset=a.subset, loss_end=round(np.mean(losses[-20:]), 3),
        acc=round(cluster_acc(y, labels), 4), nmi=round(nmi(y, labels), 4),
        train_s=round(t1 - t0, 1), umap_s=round(t2 - t1, 1), gmm_s=round(t3 - t2, 1),
    )), flush=True)  # fmt: skip


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("seed", type=int)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--tau", type=float, default=0.5)
    p.add_argument("--scale", type=float, default=0.8)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--subset", type=int, default=0)
    main(p.parse_args())
