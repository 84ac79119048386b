"""DEC, IDEC and DCEC: autoencoder pre-training, then self-training with a KL clustering loss.

- DEC: Xie, Girshick & Farhadi (2016), "Unsupervised deep embedding for clustering analysis".
- IDEC: Guo, Gao, Liu & Yin (2017), "Improved deep embedded clustering with local structure
  preservation": DEC's loss plus γ × the reconstruction loss; the decoder is kept.
- DCEC: Guo, Liu, Zhu & Yin (2017), "Deep clustering with convolutional autoencoders":
  IDEC with the convolutional autoencoder.
"""

from __future__ import annotations

import inspect
import logging
import math
import time

import numpy as np
import torch
from sklearn.cluster import KMeans

from ..cluster.centers import assign_nearest
from ..data.validate import check_labels, check_n_clusters
from ..errors import ConfigError
from ..losses import kl_clustering_loss, reconstruction_loss, target_distribution
from ..metrics import cluster_acc, nmi
from ..nn import ClusteringLayer, ClusteringModel
from ..training import Callback, LossStep, Trainer, apply_batched, distributed, resolve_device
from .base import fit_phase
from .joint import JointClusterer

log = logging.getLogger(__name__)


def init_with(base_init, drop=(), **defaults):
    """An ``__init__`` with the parameters of ``base_init`` but those in ``drop``, where
    ``defaults`` change a default or add a parameter (after ``n_clusters``): IDEC is DEC
    plus ``gamma``, DCEC is IDEC with another network, and neither repeats DEC's twenty-odd
    parameters.

    Like every scikit-learn ``__init__`` it only stores its arguments; scikit-learn reads
    the parameters from its signature, which is the explicit one built here.
    """
    params = [p for p in inspect.signature(base_init).parameters.values() if p.name not in drop]
    for name, value in defaults.items():
        names = [p.name for p in params]
        if name in names:
            params[names.index(name)] = params[names.index(name)].replace(default=value)
        else:
            params.insert(2, inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=value))
    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if i else p
              for i, p in enumerate(params)]  # fmt: skip
    signature = inspect.Signature(params)

    def __init__(self, **kwargs):
        try:
            bound = signature.bind(self, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}(): {exc}") from None
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


class TargetUpdate(Callback):
    """DEC's target distribution P and its update: before the first mini-batch and every
    ``interval`` mini-batches, soft-assign all data (``soft_assign()`` -> Q (N, K)), set P,
    and stop when fewer than ``tol`` of the hard labels changed since the last update.

    ``target`` (N, K) on the training device is read by the loss and saved with the
    training state, with the labels of the last update and their change. Logs
    ``delta_label`` and, with labels ``y``, ``acc`` and ``nmi`` every epoch.
    """

    def __init__(self, soft_assign, y, interval: int, tol: float, device):
        self.soft_assign, self.y, self.interval, self.tol = soft_assign, y, interval, tol
        self.device = device
        self.target, self.labels, self.delta = None, None, float("nan")

    def update(self, trainer: Trainer) -> None:
        q = torch.as_tensor(distributed.broadcast(self.soft_assign()))  # rank 0's, on all
        self.target = target_distribution(q).to(self.device)
        labels = q.argmax(1).numpy()
        if self.labels is not None:
            self.delta = float((labels != self.labels).mean())
            if self.delta < self.tol:
                log.info("converged: %.4f%% of labels changed (< tol)", 100 * self.delta)
                trainer.stop = True
        self.labels = labels

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.resumed:
            self.update(trainer)

    def on_batch_end(self, trainer: Trainer, logs: dict) -> None:
        if trainer.global_step % self.interval == 0:
            self.update(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        logs["delta_label"] = self.delta
        if self.y is not None:
            logs["acc"], logs["nmi"] = cluster_acc(self.y, self.labels), nmi(self.y, self.labels)

    def state_dict(self) -> dict:
        return {"target": self.target, "labels": self.labels, "delta": self.delta}

    def load_state_dict(self, state: dict) -> None:
        self.target = state["target"].to(self.device)
        self.labels, self.delta = state["labels"], state["delta"]


class DEC(JointClusterer):
    """Deep Embedded Clustering: pre-train an autoencoder, then fine-tune its encoder and
    the cluster centres on KL(P ‖ Q) alone (the decoder is dropped).

    Steps: (1) train the autoencoder on reconstruction for ``pretrain_epochs``; (2) k-means
    (``n_init`` runs) on the codes gives the initial centres; (3) mini-batch training of
    encoder + centres on KL(P ‖ Q), with Q the Student's t soft assignment (α = ``alpha``) and
    the target P = q²/f, renormalised, recomputed on all data every ``update_interval``
    mini-batches; training stops once fewer than ``tol`` of the hard labels change between
    two target updates, or after ``epochs`` epochs.

    Choices where we differ from the paper, and why: the autoencoder is pre-trained end to
    end with Adam (as IDEC and DCEC do) instead of greedy layer-wise denoising; the
    clustering stage uses Adam (lr ``lr``) rather than SGD with momentum, like DCEC's code;
    ``pretrain_epochs`` defaults to 50 instead of the ~200 epochs the authors used, to fit
    a CPU (set it to 200 to follow them). ``update_interval=None`` updates the target about
    every half epoch, ``ceil(N / batch_size / 2)`` — 137 for all of MNIST at batch 256, the
    authors' 140.

    Parameters
    ----------
    n_clusters : int, default=10
    autoencoder : str, default="mlp"
        DEC's d-500-500-2000-10 network; any registered autoencoder works.
    pretrain_epochs : int, default=50
    epochs : int, default=50
        Most epochs of the clustering stage (it usually stops earlier, on ``tol``).
    batch_size : int, default=256
    update_interval : int or None, default=None
        Mini-batches between target updates (T).
    tol : float, default=0.001
        Stop when fewer than this share of the labels changed between two target updates.
    alpha : float, default=1.0
        Degrees of freedom of the Student's t kernel.
    n_init : int, default=20
        k-means runs for the initial centres.
    Other parameters as in :class:`~aeclust.AEClusterer`.

    Attributes
    ----------
    labels_, n_clusters_, cluster_centers_ (K, latent_dim), history_ (pre-training epochs
    marked ``pretrain``, then per clustering epoch: loss, kl, delta_label and, when ``fit``
    got labels, acc and nmi), timings_, autoencoder_.
    """

    gamma = 0.0  # IDEC's reconstruction weight; DEC drops the decoder
    keeps_decoder = False

    def __init__(
        self,
        n_clusters: int = 10,
        autoencoder: str = "mlp",
        latent_dim: int = 10,
        pretrain_epochs: int = 50,
        epochs: int = 50,
        batch_size: int = 256,
        lr: float = 1e-3,
        optimizer: str = "adam",
        optimizer_params: dict | None = None,
        precision: str = "fp32",
        loss: str = "mse",
        update_interval: int | None = None,
        tol: float = 0.001,
        alpha: float = 1.0,
        n_init: int = 20,
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
        self.autoencoder = autoencoder
        self.latent_dim = latent_dim
        self.pretrain_epochs = pretrain_epochs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.precision = precision
        self.loss = loss
        self.update_interval = update_interval
        self.tol = tol
        self.alpha = alpha
        self.n_init = n_init
        self.lr_schedule = lr_schedule
        self.val_fraction = val_fraction
        self.patience = patience
        self.image_shape = image_shape
        self.autoencoder_params = autoencoder_params
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint

    def _check_params(self, n: int) -> int:
        """The number of clusters; raises ConfigError on a bad parameter."""
        k = check_n_clusters(self.n_clusters, n)
        if self.update_interval is not None and not self.update_interval >= 1:
            raise ConfigError(f"update_interval must be >= 1; got {self.update_interval!r}.")
        if not 0 <= self.tol <= 1:
            raise ConfigError(f"tol must be in [0, 1]; got {self.tol!r}.")
        if not self.alpha > 0:
            raise ConfigError(f"alpha must be > 0; got {self.alpha!r}.")
        if not self.gamma >= 0:
            raise ConfigError(f"gamma must be >= 0; got {self.gamma!r}.")
        if self.pretrain_epochs < 0 or self.n_init < 1:
            raise ConfigError("pretrain_epochs must be >= 0 and n_init >= 1.")
        return k

    def fit(self, X, y=None, resume=None):
        """Pre-train, initialise the centres with k-means, then self-train on X; ``y``
        (optional) is only used to log ACC and NMI per epoch. ``resume``: a ``checkpoint``
        directory to continue from, as in :meth:`AEClusterer.fit <aeclust.AEClusterer.fit>`.
        Returns self."""
        X = self._check_fit_input(X, y)
        y = check_labels(y, len(X))
        k = self._check_params(len(X))
        seed = self._seed()
        ckpts = self._checkpoints(X, resume, seed)
        self.device_ = resolve_device(self.device)
        self.autoencoder_name_ = self.autoencoder
        self.autoencoder_ = self._build_autoencoder(self.autoencoder, seed)
        t0 = time.perf_counter()
        pretrain = []
        if self.pretrain_epochs:
            pretrain = self._train_autoencoder(X, seed, ckpts, self.pretrain_epochs)
        for row in pretrain:
            row["pretrain"] = True
        Z = self._encode(X)
        kmeans = KMeans(k, n_init=self.n_init, random_state=seed).fit(Z)
        head = ClusteringLayer(kmeans.cluster_centers_, self.alpha)
        model = ClusteringModel(self.autoencoder_, head, decode=self.keeps_decoder)
        interval = self.update_interval or max(1, math.ceil(len(X) / self.batch_size / 2))
        update = TargetUpdate(
            lambda: apply_batched(
                lambda m, x: m.head(m.autoencoder.encode(x)),
                model, X, self._infer_batch(), self.device_,
            ), y, interval, self.tol, self.device_,
        )  # fmt: skip
        history = fit_phase(
            self, model, LossStep(self._loss_fn(update)), self._train_config(seed), X, ckpts,
            "clustering", [update], desc=type(self).__name__,
        )  # fmt: skip
        self.history_ = pretrain + history
        self.cluster_centers_ = model.head.centers.detach().cpu().numpy().astype(np.float32)
        t1 = time.perf_counter()
        self.labels_ = assign_nearest(self._encode(X), self.cluster_centers_)
        self.n_clusters_ = k
        self.timings_ = {"train": t1 - t0, "encode": time.perf_counter() - t1, "cluster": 0.0}
        return self

    def _reconstruction_epochs(self) -> int:
        return self.pretrain_epochs

    def _loss_fn(self, update: TargetUpdate):
        rec_loss = reconstruction_loss(self.loss)

        def loss_fn(model, batch):
            out = model(batch.x)
            kl = kl_clustering_loss(out.q, update.target[batch.index.to(out.q.device)])
            if not self.keeps_decoder:
                return {"loss": kl, "kl": kl}
            rec = rec_loss(out.output, batch.x)
            return {"loss": rec + self.gamma * kl, "kl": kl, "reconstruction": rec}

        return loss_fn


class IDEC(DEC):
    """Improved DEC: DEC's KL loss plus the reconstruction loss, decoder kept:
    L = L_reconstruction + γ · KL(P ‖ Q), with γ = 0.1 (Guo et al. 2017).

    Everything else, defaults included, as in :class:`DEC` (fully connected autoencoder,
    batch 256, ``tol`` 0.001). ``gamma`` is the weight of the clustering loss.
    """

    keeps_decoder = True

    __init__ = init_with(DEC.__init__, gamma=0.1)  # DEC's parameters, and gamma after k


class DCEC(IDEC):
    """Deep Convolutional Embedded Clustering: IDEC with the convolutional autoencoder
    (32-64-128 strided convolutions + a dense 10-d code, Guo et al. 2017), γ = 0.1."""

    __init__ = init_with(IDEC.__init__, autoencoder="conv")
