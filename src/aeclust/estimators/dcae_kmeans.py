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
from ..training import Callback, LossStep, Trainer, distributed, resolve_device
from .base import fit_phase
from .joint import JointClusterer

log = logging.getLogger(__name__)


class CenterUpdate(Callback):
    """The centres and assignments of DCAE's k-means, and their update after every epoch:
    assign all codes to their nearest centre (eq. 6), then move every centre to the mean of
    its codes (eq. 7).

    ``centers`` (K, d) on the training device and ``assign`` (N,) are read by the loss and
    saved with the training state. Logs ``e2`` (the embedded k-means loss on all data),
    ``reseeded`` (clusters that were empty and got a new centre) and, with labels ``y``,
    ``acc`` and ``nmi`` of the assignment.
    """

    def __init__(self, encode, centers: np.ndarray, assign, lam: float, y, device):
        self.encode, self.lam, self.y, self.device = encode, lam, y, device
        self.set(centers, assign)

    def set(self, centers: np.ndarray, assign) -> None:
        self.centers = torch.as_tensor(np.asarray(centers, dtype=np.float32), device=self.device)
        self.assign = torch.as_tensor(assign, dtype=torch.long)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        Z = self.encode()
        centers = self.centers.cpu().numpy()
        assign = assign_nearest(Z, centers)  # eq. 6
        centers, empty = update_centers(Z, assign, centers)  # eq. 7
        if empty:
            log.warning("epoch %d: re-seeded empty cluster(s) %s", epoch, empty)
        assign = assign_nearest(Z, centers)
        # every rank computed the same from the same weights; rank 0's result makes sure
        centers, assign, empty = distributed.broadcast((centers, assign, empty))
        self.set(centers, assign)
        labels = self.assign.numpy()
        logs["e2"] = self.lam / 2 * float(((Z - centers[labels]) ** 2).sum(1).mean())
        logs["reseeded"] = empty
        if self.y is not None:
            logs["acc"], logs["nmi"] = cluster_acc(self.y, labels), nmi(self.y, labels)

    def state_dict(self) -> dict:
        return {"centers": self.centers, "assign": self.assign}

    def load_state_dict(self, state: dict) -> None:
        self.set(state["centers"].numpy(), state["assign"])


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
        optimizer: str = "adam",
        optimizer_params: dict | None = None,
        precision: str = "fp32",
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
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.precision = precision
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

    def fit(self, X, y=None, resume=None):
        """Train network and centres together on X; ``y`` (optional) is only used to log
        ACC and NMI per epoch. ``resume``: a ``checkpoint`` directory to continue from, as
        in :meth:`AEClusterer.fit <aeclust.AEClusterer.fit>`. Returns self."""
        X = self._check_fit_input(X, y)
        y = check_labels(y, len(X))
        k = check_n_clusters(self.n_clusters, len(X))
        if self.init not in ("random", "kmeans"):
            raise ConfigError(f"init must be 'random' or 'kmeans'; got {self.init!r}.")
        if not self.lam >= 0:
            raise ConfigError(f"lam must be >= 0; got {self.lam!r}.")
        seed = self._seed()
        ckpts = self._checkpoints(X, resume, seed)
        self.device_ = resolve_device(self.device)
        self.autoencoder_name_ = self.autoencoder
        self.autoencoder_ = self._build_autoencoder(self.autoencoder, seed)
        t0 = time.perf_counter()
        warmup = []
        if self.warmup_epochs:
            warmup = self._train_autoencoder(X, seed, ckpts, self.warmup_epochs)
        Z = self._encode(X)
        rng = np.random.default_rng(seed)
        if self.init == "kmeans":
            from sklearn.cluster import KMeans

            centers = KMeans(k, n_init=10, random_state=seed).fit(Z).cluster_centers_
        else:
            centers = Z[rng.choice(len(Z), k, replace=False)]
        centers = centers.astype(np.float32)
        update = CenterUpdate(
            lambda: self._encode(X), centers, assign_nearest(Z, centers), self.lam, y, self.device_
        )

        e1 = reconstruction_loss(self.loss)
        check_choice("e1_reduction", self.e1_reduction, ("sum", "mean"))
        pixels = math.prod(X.shape[1:]) if self.e1_reduction == "sum" else 1

        def loss_fn(model, batch):
            h, output = model(batch.x)
            rec = e1(output, batch.x) * pixels
            e2 = embedded_kmeans_loss(
                h, update.centers, update.assign[batch.index].to(h.device), self.lam
            )
            return {"loss": rec + e2, "e1": rec, "e2_batch": e2}

        history = fit_phase(
            self, self.autoencoder_, LossStep(loss_fn), self._train_config(seed), X, ckpts,
            "clustering", [update], desc="dcae-kmeans",
        )  # fmt: skip
        self.cluster_centers_ = update.centers.cpu().numpy()
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
