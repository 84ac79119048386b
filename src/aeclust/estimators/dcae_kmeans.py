"""DCAE with embedded k-means: one network trained on reconstruction + k-means together.

Alqahtani, Xie, Deng, Jones & Xie (2018), "A deep convolutional auto-encoder with embedded
clustering", section 2.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch

from ..cluster.centers import assign_nearest, update_centers
from ..data.validate import check_labels, check_n_clusters
from ..errors import ConfigError, check_choice
from ..losses import embedded_kmeans_loss, reconstruction_loss
from ..metrics import cluster_acc, nmi
from ..training import Callback, Trainer, resolve_device
from .joint import JointClusterer

log = logging.getLogger(__name__)


class CenterUpdate(Callback):
    """After every epoch: assign all codes to their nearest centre, then move the centres.

    Logs ``e2`` (the embedded k-means loss on all data), ``reseeded`` (clusters that were
    empty and got a new centre) and, with labels, ``acc`` and ``nmi`` of the assignment.
    """

    def __init__(self, est: DCAEKMeans, X: np.ndarray, y: np.ndarray | None):
        self.est, self.X, self.y = est, X, y

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        est = self.est
        Z = est._encode(self.X)
        centers = est.centers_.cpu().numpy()
        assign = assign_nearest(Z, centers)  # eq. 6
        centers, empty = update_centers(Z, assign, centers)  # eq. 7
        if empty:
            log.warning("epoch %d: re-seeded empty cluster(s) %s", epoch, empty)
        est._set_centers(centers, assign_nearest(Z, centers))
        logs["e2"] = (
            est.lam / 2 * float(((Z - centers[est.assign_.cpu().numpy()]) ** 2).sum(1).mean())
        )
        logs["reseeded"] = empty
        if self.y is not None:
            labels = est.assign_.cpu().numpy()
            logs["acc"], logs["nmi"] = cluster_acc(self.y, labels), nmi(self.y, labels)


class DCAEKMeans(JointClusterer):
    """Convolutional autoencoder trained jointly with an embedded k-means loss.

    The loss is E = E1 + E2 with E1 the pixel-wise binary cross-entropy of the
    reconstruction (eq. 3) and E2 = λ/(2N) Σ‖h(x_n) − c*_n‖² (eq. 4). Within an epoch the
    centres and assignments are fixed and the network is trained on mini-batches; after it,
    every code is assigned to its nearest centre (eq. 6) and every centre is moved to the
    mean of its codes (eq. 7); an emptied cluster is re-seeded at the worst-fitted code and
    listed under ``reseeded`` in ``history_``.

    As in the paper: Xavier initialisation with zero biases (the "dcae" autoencoder),
    mini-batches of 100, λ = 0.2, no pre-training, random initial centres (``init="random"``:
    K distinct codes of the untrained encoder, the Forgy method). Where we differ: Adam
    (lr 1e-3) rather than plain SGD, whose learning rate the paper does not give.
    ``init="kmeans"`` instead trains on E1 alone for ``warmup_epochs`` and starts from
    k-means (k-means++, 10 inits) on the codes, which users usually prefer: on mnist5k
    (50 epochs in all, 3 seeds) it gave ACC 0.577 against 0.504 from random centres, and
    AE + k-means on the same network 0.570 (BENCHMARKS.md).

    Parameters
    ----------
    n_clusters : int, default=10
    lam : float, default=0.2
        λ, the weight of E2.
    init : {"random", "kmeans"}, default="random"
    warmup_epochs : int, default=0
        Epochs of E1 alone before the centres are initialised (not counted in ``epochs``).
    autoencoder : str, default="dcae"
        Any registered autoencoder; "dcae" is the paper's network.
    loss : {"bce", "mse"}, default="bce"
        E1; the paper uses the cross-entropy.
    e1_reduction : {"sum", "mean"}, default="sum"
        How E1 reduces over the pixels of an image before the mean over images. "sum" is
        eq. 3 as the paper's MatConvNet loss computes it (summed over pixels, divided by
        the number of images), and gives λ = 0.2 the weight the authors tuned. "mean"
        divides E1 by the pixel count (784 on MNIST), which makes E2 784 times stronger:
        on mnist5k that pulls the codes onto the random initial centres and lowers ACC
        (see BENCHMARKS.md).
    Other parameters as in :class:`~aeclust.AEClusterer`.

    Attributes
    ----------
    labels_, n_clusters_, cluster_centers_ (K, latent_dim), history_ (per epoch: loss,
    e1, e2, reseeded, and acc/nmi when ``fit`` got labels), timings_, autoencoder_.
    """

    def __init__(
        self,
        n_clusters: int = 10,
        lam: float = 0.2,
        init: str = "random",
        warmup_epochs: int = 0,
        autoencoder: str = "dcae",
        latent_dim: int = 10,
        epochs: int = 50,
        batch_size: int = 100,
        lr: float = 1e-3,
        loss: str = "bce",
        e1_reduction: str = "sum",
        lr_schedule: str = "constant",
        val_fraction: float = 0.0,
        patience: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        autoencoder_params: dict | None = None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
        checkpoint: str | None = None,
    ):
        self.n_clusters = n_clusters
        self.lam = lam
        self.init = init
        self.warmup_epochs = warmup_epochs
        self.autoencoder = autoencoder
        self.latent_dim = latent_dim
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.loss = loss
        self.e1_reduction = e1_reduction
        self.lr_schedule = lr_schedule
        self.val_fraction = val_fraction
        self.patience = patience
        self.image_shape = image_shape
        self.autoencoder_params = autoencoder_params
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint

    def fit(self, X, y=None):
        """Train network and centres together on X; ``y`` (optional) is only used to log
        ACC and NMI per epoch. Returns self."""
        X = self._check_fit_input(X, y)
        y = check_labels(y, len(X))
        k = check_n_clusters(self.n_clusters, len(X))
        if self.init not in ("random", "kmeans"):
            raise ConfigError(f"init must be 'random' or 'kmeans'; got {self.init!r}.")
        if not self.lam >= 0:
            raise ConfigError(f"lam must be >= 0; got {self.lam!r}.")
        seed = self._seed()
        self.device_ = resolve_device(self.device)
        self.autoencoder_name_ = self.autoencoder
        self.autoencoder_ = self._build_autoencoder(self.autoencoder, seed)
        t0 = time.perf_counter()
        warmup = self._pretrain(X, seed, self.warmup_epochs) if self.warmup_epochs else []
        Z = self._encode(X)
        rng = np.random.default_rng(seed)
        if self.init == "kmeans":
            from sklearn.cluster import KMeans

            centers = KMeans(k, n_init=10, random_state=seed).fit(Z).cluster_centers_
        else:
            centers = Z[rng.choice(len(Z), k, replace=False)]
        self._set_centers(centers.astype(np.float32), assign_nearest(Z, centers))

        e1 = reconstruction_loss(self.loss)
        check_choice("e1_reduction", self.e1_reduction, ("sum", "mean"))
        pixels = math.prod(X.shape[1:]) if self.e1_reduction == "sum" else 1

        def loss_fn(model, batch):
            h = model.encode(batch.x)
            rec = e1(model.decode(h), batch.x) * pixels
            e2 = embedded_kmeans_loss(
                h, self.centers_, self.assign_[batch.index].to(h.device), self.lam
            )
            return {"loss": rec + e2, "e1": rec, "e2_batch": e2}

        callbacks = [CenterUpdate(self, X, y), *self._callbacks("dcae-kmeans")]
        history = Trainer(self.autoencoder_, loss_fn, self._train_config(seed), callbacks).fit(X)
        for row in warmup:
            row["warmup"] = True
        self.history_ = warmup + history
        t1 = time.perf_counter()
        Z = self._encode(X)
        self.labels_ = assign_nearest(Z, self.cluster_centers_)
        self.n_clusters_ = k
        self.timings_ = {"train": t1 - t0, "encode": time.perf_counter() - t1, "cluster": 0.0}
        return self

    def _reconstruction_epochs(self) -> int:
        return self.warmup_epochs + self.epochs

    def _set_centers(self, centers: np.ndarray, assign: np.ndarray) -> None:
        self.cluster_centers_ = np.asarray(centers, dtype=np.float32)
        self.centers_ = torch.as_tensor(self.cluster_centers_, device=self.device_)
        self.assign_ = torch.as_tensor(assign, dtype=torch.long)
