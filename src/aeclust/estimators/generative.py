"""Generative deep clustering after Morais' thesis: the β-VAE, the WAE-GAN with relativistic
latent discriminators, and the hierarchical HRWAE-GAN, each followed by the clustering box
(UMAP with eq. 3.8's neighbours, then GMM or HDBSCAN) on every latent group.

- :class:`BetaVAE`: Higgins et al. (2017); the thesis' section 4.2 (β = 30, d = 23).
- :class:`WAEGAN`: Tolstikhin et al. (2017) with the relativistic losses of eqs. 3.3-3.4;
  ``latent_groups=L > 1`` is HRWAE-GAN (sections 3.1.2-3.1.4).
- :class:`HRWAEGAN`: WAEGAN with two latent groups by default (the thesis' final model).

All three share one network (:class:`aeclust.nn.HRWAE`), so that they differ only in how
the codes are regularised, as in the thesis' comparison ("the exact same structure").
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ..cluster import build_clusterer, build_reducer
from ..errors import ConfigError, DataError, check_number
from ..losses import gaussian_kl, per_sample, to_image
from ..metrics import silhouette
from ..nn import LatentDiscriminator, LatentDiscriminatorConfig, build_autoencoder
from ..nn.adversarial import AdversarialAE
from ..training import DivergenceGuard, LossStep, apply_batched, distributed
from ..training.adversarial import AdversarialStep
from ..training.noise_attention import NoiseAttention
from ..training.trainer import batch_bounds
from .ae_clusterer import AEClusterer
from .base import check_loss_range, fit_phase
from .dec import init_with

GENERATIVE_PARAMS = """
    latent_dim : int, default=23
        Size of each latent group's code (the thesis' section 4.2).
    clusterer : str, default="gmm"
        Any clusterer of the package; the thesis used "hdbscan" (here with min_cluster_size
        = N / ``hdbscan_denominator`` unless ``clusterer_params`` sets a size) and "gmm".
    n_clusters : int or None, default=10
        None: K is the number of clusters HDBSCAN finds (min_cluster_size = N /
        ``hdbscan_denominator``) on the reduced codes, as the thesis did for GMM (section 4.4).
    reducer : {"umap", None}, default="umap"
        UMAP before clustering, with ``n_neighbors="auto"`` = min(N // 300, 100) (eq. 3.8)
        unless ``reducer_params`` says otherwise; to ``n_clusters`` components (10 when
        n_clusters is None).
    loss : {"bce", "mse"}, default="bce"
        Reconstruction loss, summed over the pixels of each image (the scale on which the
        β-VAE's β and the adversarial weight are defined); "bce" for images in [0, 1].
    cluster_group : int, default=0
        The latent group whose clusters are ``labels_`` and ``predict`` (0 = the top).
        Every group is clustered on its own (``group_labels_``).
    noise_attention : float, default=0.0
        β of eq. 3.9: every ``noise_every`` epochs the images HDBSCAN calls noise in z_0
        get the weight 1 + β (:mod:`aeclust.training.noise_attention`); 0 = off.
    noise_every : int or None, default=None
        e of Fig. 3.4; epochs = e·t for t cycles.
    hdbscan_denominator : int, default=50
        min_cluster_size = N / denominator for noise attention and for K when n_clusters is
        None (eq. 4.3; 50 had the best silhouette in the thesis' Table 4.2).
    max_rollbacks : int, default=3
        A diverging step (non-finite, or a loss 1000x the last epoch's mean) rolls back to
        the last epoch at half the learning rate, at most this often; then the fit stops
        (:mod:`aeclust.training.divergence`). ``rollbacks_`` counts them.
    autoencoder_params : dict or None
        The network's settings (:class:`aeclust.nn.HRWAEConfig`): ``channels`` (32),
        ``max_channels`` (256), ``encoder_layers`` and ``decoder_layers`` (the thesis'
        non-reducing n and m per cell, 0).
    Other parameters as :class:`AEClusterer`.

    Attributes
    ----------
    labels_, n_clusters_, history_, timings_ : as AEClusterer (history: "reconstruction",
        the regulariser's terms; "diverged" and "lr_scale" on an epoch after a rollback;
        "noise" after a noise test).
    group_labels_ : ndarray (L, N), the clusters of each latent group.
    group_silhouette_ : list of float, silhouette of each group's clusters in the space
        they were found in (noise left out; on up to 5,000 codes).
    autoencoder_ : the :class:`aeclust.nn.HRWAE`.
"""


class GenerativeClusterer(AEClusterer):
    """Base of :class:`BetaVAE` and :class:`WAEGAN`: the HRWAE network, training with a
    regularised objective, every latent group clustered, and generation from the prior."""

    # K may come from HDBSCAN and every group is clustered: rank 0 clusters all codes
    shards_clustering = False

    def _build_networks(self, seed: int) -> None:
        torch.manual_seed(seed)
        params = {"latent_groups": getattr(self, "latent_groups", 1),
                  **(self.autoencoder_params or {})}  # fmt: skip
        if isinstance(self, BetaVAE):
            params["variational"] = True
        self.autoencoder_name_ = "hrwae"
        self.autoencoder_ = build_autoencoder("hrwae", self.image_shape_, self.latent_dim, **params)

    def _check_settings(self, X) -> None:
        """Everything that can be known before training (the reducer's compilation, the
        first epoch): the pixel range for BCE, the group to cluster, the numbers."""
        for name in ("beta", "alpha", "noise_attention", "layer_matching"):
            check_number(name, getattr(self, name, 0.0))
        check_number("hdbscan_denominator", self.hdbscan_denominator, low=1, integer=True)
        every = self.noise_every
        if self.noise_attention and (every is None or not 1 <= every < max(self.epochs, 2)):
            raise ConfigError(
                f"noise_attention needs noise_every (epochs between noise tests) from 1 to "
                f"epochs - 1 = {self.epochs - 1}; got {self.noise_every!r}."
            )
        check_loss_range(X, self.loss)
        try:
            DivergenceGuard(self.max_rollbacks)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"max_rollbacks must be an integer >= 0; got {self.max_rollbacks!r}."
            ) from exc
        groups = self.autoencoder_.config.latent_groups
        if not 0 <= self.cluster_group < groups:
            raise ConfigError(
                f"cluster_group={self.cluster_group} is not a latent group; the model has "
                f"groups 0..{groups - 1}."
            )

    def _config(self, seed: int):
        cfg = self._train_config(seed)
        return dataclasses.replace(cfg, divergence=DivergenceGuard(self.max_rollbacks))

    def _box_params(self) -> tuple[dict, dict]:
        """The thesis' defaults under the user's settings: UMAP's n_neighbors by eq. 3.8,
        HDBSCAN's min_cluster_size = N / ``hdbscan_denominator`` (eq. 4.3)."""
        clusterer, reducer = super()._box_params()
        reducer = {"n_neighbors": "auto", **reducer}
        if self.n_clusters is None:
            reducer.setdefault("n_components", 10)
        sizes = {"min_cluster_size", "min_cluster_size_denominator"}
        if self.clusterer == "hdbscan" and not sizes & set(clusterer):
            clusterer["min_cluster_size_denominator"] = self.hdbscan_denominator
        return clusterer, reducer

    def _clustering_box(self, n_samples: int, seed: int, n_clusters=None):
        # n_clusters=None: K comes from HDBSCAN after the reduction; 2 stands in for checks
        return super()._clustering_box(n_samples, seed, n_clusters or self.n_clusters or 2)

    def _cluster(self, Z, reducer, clusterer):
        Zr = reducer.fit_transform(Z) if reducer is not None else Z
        if self.n_clusters is None and clusterer.needs_n_clusters:
            k = self._hdbscan(Zr).n_clusters_
            if k < 2:
                raise DataError(
                    f"HDBSCAN found {k} cluster(s) to take K from (min_cluster_size = N / "
                    f"{self.hdbscan_denominator}); give n_clusters, or a larger "
                    "hdbscan_denominator for smaller clusters."
                )
            clusterer = build_clusterer(self.clusterer, k, clusterer.random_state,
                                        **(self.clusterer_params or {}))  # fmt: skip
        clusterer.fit(Zr)
        self._last_space = Zr  # for the silhouette
        return reducer, clusterer

    def _hdbscan(self, Z):
        return build_clusterer(
            "hdbscan", min_cluster_size_denominator=self.hdbscan_denominator
        ).fit(Z)

    def _find_noise(self, X, seed: int):
        def find():
            reducer = build_reducer("umap", 10, seed, n_neighbors="auto")
            return self._hdbscan(reducer.fit_transform(self._encode_group(X, 0))).labels_ < 0

        return find

    def _callbacks(self, X, seed: int) -> list:
        if not self.noise_attention:
            return []
        return [NoiseAttention(self.noise_every, self.noise_attention, self._find_noise(X, seed))]

    def fit(self, X, y=None, resume=None):
        """Train the network, then cluster every latent group (see the class). Returns self."""
        super().fit(X, y, resume)
        X, seed = self._check_input(X), self.clusterer_.random_state  # vectors -> images

        def cluster_groups():
            labels, silhouettes = [], []
            for g in range(self.autoencoder_.config.latent_groups):
                if g == self.cluster_group:
                    space, lab = self._space, self.labels_
                else:
                    reducer, clusterer = self._clustering_box(len(X), seed)
                    _, clusterer = self._cluster(self._encode_group(X, g), reducer, clusterer)
                    space, lab = self._last_space, np.asarray(clusterer.labels_, dtype=np.int64)
                labels.append(lab)
                silhouettes.append(silhouette(space, lab, 5000, seed))
            return np.stack(labels), silhouettes

        # one process clusters, for all
        self.group_labels_, self.group_silhouette_ = distributed.on_main(cluster_groups)
        self.__dict__.pop("_space", None)
        self.__dict__.pop("_last_space", None)
        return self

    def _set_cluster_attributes(self) -> None:
        super()._set_cluster_attributes()
        self._space = getattr(self, "_last_space", None)

    # ------------------------------------------------------------------ codes and images
    def _encode_group(self, X, group: int) -> np.ndarray:
        if group == 0:
            fn = lambda m, x: m.encode(x)  # noqa: E731 - no decoder pass for the top group
        else:
            fn = lambda m, x: m.encode_groups(x)[group]  # noqa: E731
        return apply_batched(fn, self.autoencoder_, X, self._infer_batch(), self.device_)

    def _encode(self, X) -> np.ndarray:
        return self._encode_group(X, self.cluster_group).astype(np.float32)

    def transform_groups(self, X) -> np.ndarray:
        """Every latent group's codes of X, shape (L, N, latent_dim)."""
        X = self._check_input(X)
        return np.stack([self._encode_group(X, g)
                         for g in range(self.autoencoder_.config.latent_groups)])  # fmt: skip

    def generate(self, n: int = 64, random_state=0) -> np.ndarray:
        """``n`` images (n, C, H, W) decoded from samples of the priors (z_0 ~ N(0, I), the
        lower groups from their prior cells), on the input's scale."""
        check_is_fitted(self)
        generator = torch.Generator().manual_seed(int(random_state))
        model = self.autoencoder_.eval()
        out = torch.cat([model.generate(len(chunk), generator)
                         for chunk in np.array_split(np.arange(n), max(1, n // 512))])  # fmt: skip
        return to_image(out, self.loss).cpu().numpy()

    def interpolate(self, a, b, steps: int = 8) -> np.ndarray:
        """Images decoded along the straight line between the top codes of images ``a`` and
        ``b`` (C, H, W), lower groups at their prior means: (steps, C, H, W)."""
        z = self._encode_group(self._check_input(np.stack([a, b])), 0)
        t = np.linspace(0, 1, steps, dtype=np.float32)[:, None]
        line = torch.as_tensor((1 - t) * z[0] + t * z[1])
        return apply_batched(lambda m, h: to_image(m.decode(h), self.loss),
                             self.autoencoder_, line, 256, self.device_)  # fmt: skip

    # ------------------------------------------------------------------ save / load
    def _extra_state(self):
        meta, arrays = super()._extra_state()
        meta["group_silhouette"] = self.group_silhouette_
        return meta, {**arrays, "group_labels_": self.group_labels_}

    def _restore_extra(self, meta, arrays):
        super()._restore_extra(meta, {k: v for k, v in arrays.items() if k != "group_labels_"})
        self.group_labels_ = arrays["group_labels_"].astype(np.int64)
        self.group_silhouette_ = meta.get("group_silhouette", [])


def _steps_per_epoch(est, n: int) -> int:
    n_train = n - int(round(est.val_fraction * n))
    return len(batch_bounds(n_train, est.batch_size))


ADVERSARIAL = ("latent_groups", "alpha", "alpha_warmup", "layer_matching", "updates",
               "first_updates", "first_epochs", "group_decay", "discriminator_lr",
               "discriminator_hidden", "discriminator_batch_norm")  # fmt: skip


class WAEGAN(GenerativeClusterer):
    (
        """WAE-GAN (Tolstikhin et al. 2017) with relativistic latent discriminators (Morais'
    eqs. 3.3-3.6) + the clustering box; with ``latent_groups`` > 1, HRWAE-GAN.

    The encoder's codes of every group are pushed towards their prior by that group's
    discriminator: N(0, I) for z_0, the Gaussian of the group's prior cell for the lower
    ones. Training: :class:`aeclust.training.adversarial.AdversarialStep` (n autoencoder
    and m discriminator updates per batch, α warmed up from ~0, optional first phase).

    Parameters
    ----------
    latent_groups : int, default=1
        L; 1 is the plain WAE-GAN. At most the network's depth (4 for 28x28 images).
    alpha : float, default=10.0
        Weight α of the adversarial loss against the reconstruction summed over the pixels
        (eq. 3.9), as Tolstikhin et al.'s λ = 10 for MNIST. α = 30 (the thesis sets "the
        β parameters" to 30) pulled the codes further from the prior and reconstructed
        worse in a 5-epoch comparison on mnist5k.
    alpha_warmup : float, default=1.0
        Epochs over which α rises linearly, step by step, from α/steps to α (4.3.3).
    layer_matching : float, default=0.0
        κ of eq. 3.9, the weight of layer matching (eq. 3.10; for L > 1).
    updates : (int, int), default=(1, 1)
        (n, m): autoencoder and discriminator updates per batch (4.3.1), with Adam's
        β1 = 0.5 for both networks unless ``optimizer_params`` gives betas (Tolstikhin et
        al.'s and DCGAN's setting). Chosen without labels, by the loss curves and the
        reconstruction: on Fashion-MNIST (70,000 images, 10 epochs) β1 = 0.9 let the
        discriminator's loss jump from 0.55 to 7.3 in the last epoch, too little for the
        divergence guard, and ended with a reconstruction MSE of 0.046 against 0.011 for
        β1 = 0.5; on mnist5k (30 epochs) (1, 1) with β1 = 0.5 kept the silhouette of
        (1, 1) with β1 = 0.9 (0.63 and 0.68, against 0.42 for (1, 3) with β1 = 0.5) at a
        third of the discriminator updates of (1, 3) (BENCHMARKS.md).
    first_updates : (int, int) or None; first_epochs : int, default=0
        (n, m) for the first ``first_epochs`` epochs: the two-phase schedule of 4.3.2
        (e.g. (1, 5) so the discriminators learn first; the thesis paired it with RMSprop,
        ``optimizer="rmsprop"``).
    group_decay : float, default=0.5
        α_l = group_decay ** l, the decreasing group weights of eqs. 3.5-3.6.
    discriminator_lr : float or None
        The discriminators' learning rate (None: ``lr``).
    discriminator_hidden : tuple of int, default=(512, 512)
        Hidden widths of each latent discriminator (LeakyReLU).
    discriminator_batch_norm : bool, default=False
        Batch normalisation in the discriminators' hidden layers, as the thesis has (section
        3.1.4). Off by default: with it the encoder learnt to game the discriminator through
        the batch statistics (:mod:`aeclust.nn.adversarial`; on mnist5k its codes drifted to
        a mean of -4 while it "won"), without it the codes follow the prior (BENCHMARKS.md).
    """
        + GENERATIVE_PARAMS
    )

    def __init__(
        self,
        latent_groups: int = 1,
        latent_dim: int = 23,
        clusterer: str = "gmm",
        n_clusters: int | None = 10,
        reducer: str | None = "umap",
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer: str = "adam",
        optimizer_params: dict | None = None,
        precision: str = "fp32",
        loss: str = "bce",
        alpha: float = 10.0,
        alpha_warmup: float = 1.0,
        layer_matching: float = 0.0,
        updates: tuple[int, int] = (1, 1),
        first_updates: tuple[int, int] | None = None,
        first_epochs: int = 0,
        group_decay: float = 0.5,
        discriminator_lr: float | None = None,
        discriminator_hidden: tuple[int, ...] = (512, 512),
        discriminator_batch_norm: bool = False,
        lr_schedule: str = "constant",
        val_fraction: float = 0.0,
        patience: int | None = None,
        cluster_group: int = 0,
        noise_attention: float = 0.0,
        noise_every: int | None = None,
        hdbscan_denominator: int = 50,
        max_rollbacks: int = 3,
        image_shape: tuple[int, int, int] | None = None,
        autoencoder_params: dict | None = None,
        clusterer_params: dict | None = None,
        reducer_params: dict | None = None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
        checkpoint: str | None = None,
    ):
        for name, value in list(locals().items()):
            if name not in ("self", "__class__"):
                setattr(self, name, value)

    def _build_networks(self, seed: int) -> None:
        super()._build_networks(seed)
        d, hidden = self.autoencoder_.config.latent_dim, tuple(self.discriminator_hidden)
        self.discriminators_ = [
            LatentDiscriminator(LatentDiscriminatorConfig(d, hidden, self.discriminator_batch_norm))
            for _ in range(self.autoencoder_.config.latent_groups)
        ]

    def _check_settings(self, X) -> None:
        super()._check_settings(X)
        self._step(len(X))  # the step checks its own settings
        decay = self.group_decay
        if isinstance(decay, bool) or not isinstance(decay, int | float) or not 0 < decay <= 1:
            raise ConfigError(f"group_decay must be in (0, 1]; got {decay!r}.")
        if self.first_updates is not None and not self.first_epochs:
            raise ConfigError("first_updates applies for first_epochs epochs; set first_epochs.")

    def _config(self, seed: int):
        """Adam's β1 = 0.5 unless ``optimizer_params`` gives betas (see ``updates``)."""
        cfg = super()._config(seed)
        if cfg.optimizer in ("adam", "adamw"):
            params = {"betas": (0.5, 0.999), **(cfg.optimizer_params or {})}
            cfg = dataclasses.replace(cfg, optimizer_params=params)
        return cfg

    def _step(self, n_samples: int) -> AdversarialStep:
        try:
            return AdversarialStep(
                loss=self.loss,
                alpha=self.alpha,
                warmup_steps=round(self.alpha_warmup * _steps_per_epoch(self, n_samples)),
                layer_matching=self.layer_matching,
                updates=tuple(self.updates),
                first_updates=None if self.first_updates is None else tuple(self.first_updates),
                first_epochs=self.first_epochs,
                group_decay=self.group_decay,
                discriminator_lr=self.discriminator_lr,
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{type(self).__name__}: {exc}") from exc

    def _train_autoencoder(self, X, seed, ckpts, epochs=None, eval_sets=None):
        step = self._step(len(X))
        model = AdversarialAE(self.autoencoder_, self.discriminators_)
        callbacks = self._callbacks(X, seed)
        cfg = self._config(seed)
        history = fit_phase(self, model, step, cfg, X, ckpts, "autoencoder", callbacks)
        self.rollbacks_ = sum(h.get("rollbacks", 0) for h in history)
        return history

    def _named_modules(self):
        return {"autoencoder": self.autoencoder_,
                **{f"discriminator{g}": d for g, d in enumerate(self.discriminators_)}}  # fmt: skip

    def _restore_modules(self, modules):
        super()._restore_modules(modules)
        n = len([k for k in modules if k.startswith("discriminator")])
        self.discriminators_ = [modules[f"discriminator{g}"] for g in range(n)]


class HRWAEGAN(WAEGAN):
    """HRWAE-GAN: :class:`WAEGAN` with ``latent_groups=2`` by default (the thesis' final
    model; it could not train L > 2). Same parameters as WAEGAN."""

    __init__ = init_with(WAEGAN.__init__, latent_groups=2)


class BetaVAE(GenerativeClusterer):
    (
        """β-VAE (Higgins et al. 2017) + the clustering box: the HRWAE network with a Gaussian
    top group, trained on L_R + β·KL(q(z|x) || N(0, I)) with the KL in closed form
    (:func:`aeclust.losses.gaussian_kl`); the code is the posterior mean.

    Parameters
    ----------
    beta : float, default=30.0
        Weight of the KL term (the thesis' section 4.2).
    """
        + GENERATIVE_PARAMS
    )

    # the WAE-GAN's parameters without the adversarial ones, and β
    __init__ = init_with(WAEGAN.__init__, drop=ADVERSARIAL, beta=30.0)

    def _train_autoencoder(self, X, seed, ckpts, epochs=None, eval_sets=None):
        loss, beta = self.loss, float(self.beta)

        def loss_fn(model, batch):
            out = model(batch.x)
            rec = per_sample(loss, out.output.float(), batch.x)
            rec = (rec * batch.weight).mean() if batch.weight is not None else rec.mean()
            kl = gaussian_kl(out.code.float(), out.logvar.float())
            return {"loss": rec + beta * kl, "reconstruction": rec, "kl": kl}

        step, callbacks = LossStep(loss_fn), self._callbacks(X, seed)
        model, cfg = self.autoencoder_, self._config(seed)
        history = fit_phase(self, model, step, cfg, X, ckpts, "autoencoder", callbacks)
        self.rollbacks_ = sum(h.get("rollbacks", 0) for h in history)
        return history

    def _named_modules(self):
        return {"autoencoder": self.autoencoder_}
