"""One-stage clustering with ACRBM layers: the cluster of an image is the most active unit
of a softmax layer trained by backpropagation, with no clustering step after training.

Paper: "One stage autoencoders for multi-domain learning" (section 2.1, Table 1,
appendix B). :class:`ACRBM` is the shallow layer on the pixels; :class:`AEACRBM` the
layer on a convolutional autoencoder's code, trained end to end, and with
``head="relu"`` the paper's "AE + k-means" reference on the same network.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from sklearn.cluster import KMeans

from ..cluster.centers import assign_nearest
from ..data.validate import check_labels, check_n_clusters
from ..errors import ConfigError, check_choice, check_number
from ..losses import acrbm_loss, reconstruction_loss, to_image
from ..metrics import cluster_acc, nmi, purity
from ..nn import AEACRBM as AEACRBMNet
from ..nn import AEACRBMConfig, ShallowACRBM, ShallowACRBMConfig, module_spec
from ..training import Callback, LossStep, Trainer, apply_batched, resolve_device
from .base import DeepClusterer, check_loss_range, fit_phase
from .dec import init_with


class AssignmentLog(Callback):
    """After every epoch, from the soft assignments of all training images
    (``hidden()`` -> (N, K)): ``confidence`` (the mean of max h, the paper's Fig. 9),
    ``clusters_used`` and, with labels ``y``, ``acc`` (Hungarian), ``purity`` (the
    majority mapping of Table 1) and ``nmi``."""

    def __init__(self, hidden, y):
        self.hidden, self.y = hidden, y

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        H = self.hidden()
        labels = H.argmax(1)
        logs["confidence"] = float(H.max(1).mean())
        logs["clusters_used"] = int(len(np.unique(labels)))
        if self.y is not None:
            logs["acc"], logs["purity"] = cluster_acc(self.y, labels), purity(self.y, labels)
            logs["nmi"] = nmi(self.y, labels)


class OneStageClusterer(DeepClusterer):
    """Base of :class:`ACRBM` and :class:`AEACRBM` (not used directly): one training phase
    on ``_loss_fn``, then the labels from the trained network. Subclasses give the network
    (``_build_network``), the loss and Adam's default β1 (``beta1``, Table 3)."""

    beta1 = 0.9

    def fit(self, X, y=None, resume=None):
        """Train on X; ``y`` (optional) is only used to log ACC, purity and NMI per epoch.
        ``resume``: a ``checkpoint`` directory to continue from, as in
        :meth:`AEClusterer.fit <aeclust.AEClusterer.fit>`. Returns self."""
        X = self._check_fit_input(X, y)
        y = check_labels(y, len(X))
        k = check_n_clusters(self.n_clusters, len(X))
        self._check_settings(X)
        seed = self._seed()
        ckpts = self._checkpoints(X, resume, seed)
        self.device_ = resolve_device(self.device)
        torch.manual_seed(seed)
        self.network_ = self._build_network(k)
        self._prepare(X)
        callbacks = [AssignmentLog(lambda: self._hidden(X), y)] if self._clusters_itself() else []
        t0 = time.perf_counter()
        pretrain = []
        if getattr(self, "pretrain_epochs", 0):
            cfg = self._config(seed, self.pretrain_epochs)
            pretrain = fit_phase(self, self.network_, LossStep(self._loss_fn(pretrain=True)),
                                 cfg, X, ckpts, "pretrain")  # fmt: skip
            for row in pretrain:
                row["pretrain"] = True
        self._before_clustering(X, seed)
        self.history_ = pretrain + fit_phase(
            self, self.network_, LossStep(self._loss_fn()), self._config(seed), X, ckpts,
            "acrbm", callbacks, desc=type(self).__name__,
        )  # fmt: skip
        t1 = time.perf_counter()
        H = self._hidden(X)
        t2 = time.perf_counter()
        if self._clusters_itself():
            self.labels_ = H.argmax(1).astype(np.int64)
            self.confidence_ = float(H.max(1).mean())
        else:  # the reference: k-means on the ReLU head's codes
            km = KMeans(k, n_init=self.n_init, random_state=seed).fit(H)
            self.cluster_centers_ = km.cluster_centers_.astype(np.float32)
            self.labels_ = km.labels_.astype(np.int64)
        self.n_clusters_ = k
        self.timings_ = {"train": t1 - t0, "encode": t2 - t1, "cluster": time.perf_counter() - t2}
        return self

    def _clusters_itself(self) -> bool:
        return True

    def _prepare(self, X) -> None:
        """Set what the network takes from the training data before training."""

    def _before_clustering(self, X, seed: int) -> None:
        """Called between the pre-training phase and the clustering phase."""

    def _config(self, seed: int, epochs: int | None = None):
        """Adam's β1 = ``beta1`` (Table 3) unless ``optimizer_params`` gives betas."""
        cfg = self._train_config(seed, epochs)
        if cfg.optimizer in ("adam", "adamw"):
            params = {"betas": (self.beta1, 0.999), **(cfg.optimizer_params or {})}
            cfg = dataclasses.replace(cfg, optimizer_params=params)
        return cfg

    def _hidden(self, X) -> np.ndarray:
        """h (N, K) of every image: the soft assignments (or the ReLU head's codes)."""
        return apply_batched(
            lambda m, x: m(x).h, self.network_, X, self._infer_batch(), self.device_
        ).astype(np.float32)

    def transform(self, X) -> np.ndarray:
        """The hidden state h of each image, (N, n_clusters): the ACRBM's soft assignment
        (rows sum to 1), or the ReLU head's code for ``head="relu"``."""
        return self._hidden(self._check_input(X))

    def predict(self, X) -> np.ndarray:
        """The cluster of each image: its most active ACRBM unit (or, for the ReLU head,
        the nearest k-means centre); shape (N,)."""
        H = self.transform(X)
        if self._clusters_itself():
            return H.argmax(1).astype(np.int64)
        return assign_nearest(H, self.cluster_centers_)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X, y).labels_

    def predict_proba(self, X) -> np.ndarray:
        """The soft assignments h (N, K); rows sum to 1."""
        if not self._clusters_itself():
            raise ConfigError("head='relu' has no soft assignments; use predict or transform.")
        return self.transform(X)

    def reconstruct(self, X) -> np.ndarray:
        """σ of the network's output logits: eq. 9's v̂ = σ(h·wᵀ) for the shallow ACRBM, the
        decoder's reconstruction for AE + ACRBM; shape (N, C, H, W)."""
        X = self._check_input(X)
        return apply_batched(
            lambda m, x: to_image(m(x).output, self._output_loss()), self.network_, X, 256,
            self.device_,
        )  # fmt: skip

    def _output_loss(self) -> str:
        return "bce"

    # ------------------------------------------------------------------ save / load
    def _named_modules(self) -> dict:
        return {"network": self.network_}

    def _restore_modules(self, modules: dict) -> None:
        self.network_ = modules["network"]
        module_spec(self.network_)  # a registered network, or the file is not ours

    def _extra_state(self):
        arrays = {"labels_": self.labels_}
        if not self._clusters_itself():
            arrays["cluster_centers_"] = self.cluster_centers_
        return {"confidence": getattr(self, "confidence_", None)}, arrays

    def _restore_extra(self, meta, arrays):
        self.labels_ = arrays["labels_"].astype(np.int64)
        self.n_clusters_ = self.network_.config.n_clusters
        if not self._clusters_itself():
            self.cluster_centers_ = arrays["cluster_centers_"].astype(np.float32)
        else:
            self.confidence_ = meta.get("confidence")
        self.timings_ = {}


class ACRBM(OneStageClusterer):
    """Shallow ACRBM: one softmax layer on the pixels, h = softmax(v·w + b_h) (eq. 8),
    trained on the objective of eqs. 13-14 alone; the cluster of an image is argmax h.

    The reconstruction v̂ = σ(h·wᵀ) (eq. 9, the same w) is what :meth:`reconstruct`
    returns (the paper's Fig. 5); as in the paper it is not part of the objective unless
    ``reconstruction_weight`` > 0 adds that times its pixel-mean binary cross-entropy
    (pixels in [0, 1]). Defaults are Table 3's: Adam with β1 = 0.01, lr 1e-2, 20 epochs
    of batch 256.

    ``center=True`` (our choice; the paper does not say) feeds v = x − the training
    images' mean. On raw pixels, which are all ≥ 0, v·w is dominated by how much ink an
    image has, so the winning unit is decided by brightness more than by shape: on
    mnist5k (seed 0, 20 epochs) purity was 0.498 on raw pixels against 0.608 centred,
    where k-means on the pixels reaches 0.534. The reconstruction then adds σ⁻¹(mean) to
    h·wᵀ (see :class:`~aeclust.nn.ShallowACRBM`).

    Parameters
    ----------
    n_clusters : int, default=10
        The layer's width (Table 1 uses 10 and 30); a cluster may stay empty.
    center : bool, default=True
    reconstruction_weight : float, default=0.0
    epochs, batch_size, lr, optimizer, optimizer_params, precision, lr_schedule,
    val_fraction, patience, image_shape, device, random_state, verbose, checkpoint :
        as in :class:`~aeclust.AEClusterer`; Adam's betas default to (0.01, 0.999).

    Attributes
    ----------
    labels_, n_clusters_, confidence_ (mean max h over the training images), history_
    (per epoch: loss, acrbm, confidence, clusters_used and, when ``fit`` got labels, acc,
    purity and nmi), timings_, network_.
    """

    beta1 = 0.01

    def __init__(
        self,
        n_clusters: int = 10,
        center: bool = True,
        reconstruction_weight: float = 0.0,
        epochs: int = 20,
        batch_size: int = 256,
        lr: float = 1e-2,
        optimizer: str = "adam",
        optimizer_params: dict | None = None,
        precision: str = "fp32",
        lr_schedule: str = "constant",
        val_fraction: float = 0.0,
        patience: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
        checkpoint: str | None = None,
    ):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _check_settings(self, X) -> None:
        w = check_number("reconstruction_weight", self.reconstruction_weight)
        if not isinstance(self.center, bool | np.bool_):
            raise ConfigError(f"center must be True or False; got {self.center!r}.")
        if w > 0:
            check_loss_range(X, "bce")

    def _build_network(self, k: int):
        return ShallowACRBM(ShallowACRBMConfig(self.image_shape_, k))

    def _prepare(self, X) -> None:
        if self.center:
            self.network_.set_mean(torch.from_numpy(image_mean(X)))

    def _loss_fn(self, pretrain: bool = False):
        weight = float(self.reconstruction_weight)
        bce = reconstruction_loss("bce")

        def loss_fn(model, batch):
            out = model(batch.x)
            term = acrbm_loss(out.h)
            if not weight:
                return {"loss": term, "acrbm": term}
            rec = bce(out.output, batch.x)
            return {"loss": term + weight * rec, "acrbm": term, "reconstruction": rec}

        return loss_fn


class AEACRBM(OneStageClusterer):
    """AE + ACRBM (appendix B, Fig. 11): a convolutional autoencoder whose linear code h_AE
    feeds an ACRBM layer h; the decoder reconstructs the image from [h_AE, h]. Trained end
    to end on L = reconstruction + ``weight`` · ACRBM objective (eq. 14); the cluster of an
    image is argmax h.

    ``head="relu"`` is the paper's "AE + k-means" reference: the same network with a ReLU
    dense layer of ``n_clusters`` units in the ACRBM's place, trained on reconstruction
    alone, then k-means (``n_init`` runs, the lowest inertia kept) on that layer's output.
    The paper kept the best of 500 k-means runs *by accuracy*, which uses the labels; we
    keep the best by inertia, which does not. Its "K-means on AE latent representation"
    may also mean k-means on h_AE; on mnist5k that reading is the stronger reference
    (ACC 0.525 against 0.318, 3 seeds; ``bench/one_stage.py`` scores both).

    Choices where the paper is silent or where its recipe failed here, and why (mnist5k,
    seed 0, ACC = Hungarian accuracy after the last epoch):

    - **Pre-training, then a k-means start** (``pretrain_epochs`` = 25, ``head_init`` =
      "kmeans"). The ACRBM objective is at its minimum for *every* hard partition, so it
      sharpens whatever partition the layer starts with rather than finding a better one.
      Trained end to end from a random layer, as the paper describes, the term reached a
      confident partition within 3 epochs, before the codes meant anything (purity 0.445
      after 10 epochs). We first train the autoencoder on reconstruction alone, run
      k-means (``n_init`` runs, lowest inertia) on the codes h_AE, and start the layer as
      the k-means posterior (:meth:`~aeclust.nn.ACRBMLayer.init_from_centres`); then both
      terms train together for ``epochs``.
    - **The ACRBM objective does not move the encoder** (``encoder_grad`` = 0; the
      reconstruction still trains the encoder through both codes, and the layer through
      the decoder). With the full gradient (1, the paper's end to end) the encoder
      pulled the codes away from the layer's boundaries and the partition drifted: from
      the k-means start at ACC 0.507 down to 0.401 after 20 joint epochs, with the ACRBM
      term jumping from 0.02 to 0.83 twice; with 0 it rose from 0.508 to 0.528 and the
      term stayed near 0.025 (20 + 20 epochs each). Values in between scale the gradient.
    - ``weight`` = 1 with the reconstruction loss averaged over pixels, i.e. the two terms
      summed as given, as a Keras model with two losses does (the paper gives no weight).
    - The convolutions are 3x3 with stride 2 (28 -> 14 -> 7); the paper gives the widths
      (Table 3: 100 filters and a 90-unit h_AE for 10 clusters; 300 and 300 for 30) but no
      kernels, strides or pooling, so our network has more parameters (1.1 M against the
      paper's 197 K with 10 clusters; most sit in the dense layers next to the 100x7x7 map).
    - 25 + 25 epochs rather than the paper's 500, to fit a CPU; Adam with β1 = 0.05 and
      lr 1e-3, batch 256, as Table 3. The ReLU reference trains for the same 50 epochs.

    Parameters
    ----------
    n_clusters : int, default=10
    head : {"acrbm", "relu"}, default="acrbm"
    latent_dim : int, default=90
        Size of h_AE (Table 3: 90; 300 with 30 clusters, 100 for the reference).
    channels : int, default=100
        Filters of each encoder and decoder convolution (Table 3: 100; 300 with 30 clusters).
    kernel : int, default=3
    weight : float, default=1.0
        Weight of the ACRBM objective against the reconstruction loss.
    loss : {"bce", "mse"}, default="bce"
        Reconstruction loss (pixel mean); "bce" needs pixels in [0, 1].
    pretrain_epochs : int, default=25
        Epochs of reconstruction alone before the clustering phase (``epochs``).
    head_init : {"kmeans", "random"}, default="kmeans"
        How the ACRBM layer starts the clustering phase: from k-means on the codes, or
        Glorot-random as built.
    encoder_grad : float in [0, 1], default=0.0
        Share of the ACRBM objective's gradient that reaches the encoder (1: end to end).
    n_init : int, default=10
        k-means runs (the layer's start, and the ReLU reference).
    Other parameters as in :class:`ACRBM`; Adam's betas default to (0.05, 0.999).

    Attributes
    ----------
    labels_, n_clusters_, confidence_ (head "acrbm"), cluster_centers_ (head "relu"),
    history_ (per epoch: loss, reconstruction, acrbm and the logs of :class:`ACRBM`),
    timings_, network_.
    """

    beta1 = 0.05

    # ACRBM's parameters without its two own, with these added or changed
    __init__ = init_with(
        ACRBM.__init__, drop=("center", "reconstruction_weight"), n_init=10, loss="bce",
        pretrain_epochs=25, weight=1.0, kernel=3, channels=100, latent_dim=90, head="acrbm",
        epochs=25, lr=1e-3, head_init="kmeans", encoder_grad=0.0,
    )  # fmt: skip

    def _clusters_itself(self) -> bool:
        return self.head == "acrbm"

    def _output_loss(self) -> str:
        return self.loss

    def _check_settings(self, X) -> None:
        check_choice("head", self.head, ("acrbm", "relu"))
        check_choice("loss", self.loss, ("bce", "mse"))
        check_choice("head_init", self.head_init, ("kmeans", "random"))
        check_number("weight", self.weight)
        for name in ("latent_dim", "channels", "n_init"):
            check_number(name, getattr(self, name), low=1, integer=True)
        check_number("encoder_grad", self.encoder_grad, high=1)
        check_number("pretrain_epochs", self.pretrain_epochs, integer=True)
        if not (isinstance(self.kernel, int) and self.kernel >= 1 and self.kernel % 2):
            raise ConfigError(f"kernel must be an odd positive integer; got {self.kernel!r}.")
        check_loss_range(X, self.loss)

    def _before_clustering(self, X, seed: int) -> None:
        if self.head != "acrbm" or self.head_init != "kmeans":
            return
        Z = apply_batched(lambda m, x: m(x).code, self.network_, X, self._infer_batch(),
                          self.device_).astype(np.float64)  # fmt: skip
        km = KMeans(self.network_.config.n_clusters, n_init=self.n_init, random_state=seed)
        km.fit(Z)
        self.network_.head.init_from_centres(
            torch.from_numpy(km.cluster_centers_), km.inertia_ / Z.size
        )

    def _build_network(self, k: int):
        cfg = AEACRBMConfig(self.image_shape_, self.latent_dim, k, self.channels, self.kernel,
                            self.head, float(self.encoder_grad))  # fmt: skip
        return AEACRBMNet(cfg)

    def _loss_fn(self, pretrain: bool = False):
        rec_loss = reconstruction_loss(self.loss)
        weight = float(self.weight) if self.head == "acrbm" and not pretrain else 0.0

        def loss_fn(model, batch):
            out = model(batch.x)
            rec = rec_loss(out.output, batch.x)
            if not weight:
                return {"loss": rec, "reconstruction": rec}
            term = acrbm_loss(out.h)
            return {"loss": rec + weight * term, "reconstruction": rec, "acrbm": term}

        return loss_fn

    def network_label(self) -> str:
        return f"ae-acrbm ({self.head} head)"

    def without_clustering_loss(self) -> AEACRBM:
        """An unfitted copy with the ReLU head (reconstruction alone, then k-means): the
        paper's AE + k-means, with this network's widths, seed and training settings."""
        return type(self)(**{**self.get_params(), "head": "relu", "verbose": False,
                             "checkpoint": None})  # fmt: skip


def image_mean(X, batch: int = 4096) -> np.ndarray:
    """The mean image (C, H, W) of X, in float64 batches (X may be memory-mapped)."""
    total = np.zeros(X.shape[1:], dtype=np.float64)
    for start in range(0, len(X), batch):
        total += np.asarray(X[start : start + batch], dtype=np.float64).sum(0)
    return (total / len(X)).astype(np.float32)
