"""Two-stage deep clustering: train an autoencoder, then cluster its latent codes."""

from __future__ import annotations

import logging
import time

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..cluster import build_clusterer, build_reducer, clusterer_from_state, reducer_from_state
from ..cluster.sharded import Shard, cluster_shards, sample_size_for, shard_bounds
from ..errors import ConfigError
from ..training import distributed, resolve_device
from .base import DeepClusterer

log = logging.getLogger(__name__)


class AEClusterer(DeepClusterer):
    """Autoencoder -> latent codes -> (optional UMAP) -> clusters.

    With ``reducer="umap"`` and ``clusterer="gmm"`` this is N2D (McConville et al. 2020);
    with ``autoencoder="conv"`` and ``clusterer="kmeans"`` it is the "conv AE + k-means"
    baseline of DCEC and Liu & Zhang.

    Parameters
    ----------
    autoencoder : str, default="conv"
        A name from :data:`aeclust.nn.AUTOENCODERS` ("conv": 32-64-128 strided convolutions;
        "mlp": 500-500-2000 fully connected; Liu & Zhang's "fc", "conv-pool",
        "conv-nopool", "alexnet" and "resnet").
    latent_dim : int or None, default=None
        Size of the latent code; None takes the architecture's own default (10 for "conv"
        and "mlp"; the paper's sizes for Liu & Zhang's networks, e.g. 64 for "fc", 192 for
        "conv-nopool").
    clusterer : str, default="kmeans"
        "kmeans", "minibatch-kmeans", "gmm", "agglomerative" or "hdbscan".
    n_clusters : int, default=10
        Number of clusters (ignored by "hdbscan", which finds it).
    reducer : {None, "umap"}, default=None
        Reduce the codes with UMAP before clustering (needs ``aeclust[umap]``), to
        ``n_clusters`` dimensions unless ``reducer_params`` sets ``n_components`` (N2D).
        UMAP's numba code is compiled once per machine and kept in numba's cache
        (:mod:`aeclust.cluster.numba_cache`).
    epochs : int, default=30
        Epochs of autoencoder training. The codes keep improving for clustering after the
        reconstruction loss has slowed down (mnist5k, conv + UMAP + GMM: 0.81 ACC after 8
        epochs, 0.93 after 30; BENCHMARKS.md).
    batch_size, lr : training of the autoencoder (Adam).
    augment : {None, "auto", "affine"} or dict, default=None
        None trains on the images as given, as DEC, N2D and Liu & Zhang do. "affine":
        random shifts (up to 10% of the size) and rotations (up to 10 degrees) of every
        training batch, reconstructed as they are (DEC-DA, Guo et al. 2018; see
        :class:`aeclust.training.RandomAffine`); "auto" does that for images of at least
        8x8 pixels and leaves flat vectors alone; a dict sets RandomAffine's ``shift``,
        ``rotation``, ``hflip`` (mirror images, e.g. for tissue tiles) and ``padding``.
        Off by default because it is not a general win (BENCHMARKS.md, conv + UMAP + GMM,
        30 epochs, 3 seeds): it helped `digits` (0.918 against 0.865 ACC), changed nothing
        on mnist5k (0.937 against 0.933) and cost `fashion-mnist` (0.585 against 0.598).
    optimizer : {"adam", "adamw", "rmsprop", "sgd"}, default="adam"
    optimizer_params : dict or None
        The optimizer's own settings, e.g. ``{"betas": [0.5, 0.999]}`` for Adam or
        ``{"momentum": 0.9, "nesterov": True}`` for SGD; ``lr`` is set by ``lr``.
    precision : {"fp32", "bf16"}, default="fp32"
        "bf16" trains with the forward pass and the loss autocast to bfloat16 (CPUs with
        AVX512-BF16 or AMX, and CUDA GPUs; refused elsewhere, where it would be emulated);
        encoding stays fp32. BENCHMARKS.md has its speed and its effect on ACC.
    loss : {"mse", "bce"}, default="mse"
        Reconstruction loss; "bce" needs pixel values in [0, 1].
    lr_schedule : {"constant", "cosine", "step"}, default="constant"
    val_fraction : float, default=0.0
        Share of the data held out for the validation loss.
    patience : int or None, default=None
        Early stopping on the validation loss (needs ``val_fraction`` > 0).
    image_shape : (C, H, W) or None
        Shape of one image when X is given as flat (N, D) vectors; None treats each
        vector as a 1x1xD image (use ``autoencoder="mlp"`` then).
    autoencoder_params, clusterer_params, reducer_params : dict or None
        Extra parameters, e.g. ``{"hidden": (500, 500, 2000)}``, ``{"n_init": 10}``,
        ``{"n_neighbors": 20}``.
    device : str, default="auto"
        "auto" (CUDA when present, else CPU), "cpu" or "cuda".
    random_state : int, RandomState or None
        Seed of the weights, the shuffling, the clusterer and UMAP.
    verbose : bool, default=False
        Show a progress bar while training.
    checkpoint : str or None
        A directory: the whole training state (weights, optimizer, epoch, shuffling) is
        written to ``<checkpoint>/autoencoder.safetensors`` after every epoch and at
        Ctrl-C, and ``fit(X, resume=checkpoint)`` continues a killed fit from it.
    encoder_weights : str or None
        A local state dict (safetensors, or a torch file read with ``weights_only=True``)
        loaded into the encoder before training, e.g. torchvision's AlexNet weights for
        ``autoencoder="alexnet"`` (see :func:`aeclust.weights.load_encoder_weights`).

    Attributes
    ----------
    labels_ : ndarray (N,) cluster of each training sample (-1 = noise for hdbscan).
    n_clusters_ : int, number of clusters found (noise excluded).
    cluster_centers_ : ndarray (K, d), where the clusterer has centres, in the space it
        clustered (the latent codes, or their UMAP reduction).
    history_ : list of dict, one per epoch (loss, val_loss, lr, seconds).
    timings_ : dict, seconds spent to train, encode and cluster.
    cluster_info_ : dict, how the codes were clustered: ``processes``, ``n_codes``,
        ``method`` ("one process", "all-reduce" or "sample"), for a sample its size and
        seed, and ``summary``, one sentence for the run's output.
    embedding_ : ndarray (stop - start, latent_dim), the codes ``fit`` clustered: those of
        the rows ``shard_`` of X (all of X in one process), so that a caller that needs
        the training codes does not encode the images again. Not saved with the model.
    shard_ : (start, stop), the rows of X whose codes this process computed in ``fit``
        (all of them in one process; see :meth:`transform_shard`).
    autoencoder_ : the trained torch module.

    Several processes (torchrun): every rank trains on its part of each batch (DDP), then
    encodes only its shard of X (contiguous rows, in rank order). k-means and mini-batch
    k-means run over all shards with all-reduced centre sums and counts, from k-means++ on
    a seeded sample; GMM, HDBSCAN, Ward and UMAP are fitted on rank 0 over a seeded sample
    of at most 50,000 codes (30,000 for Ward) and every rank labels its shard with
    ``predict`` (:mod:`aeclust.cluster.sharded`). Only the sample of the codes is gathered;
    the labels (N integers) are, so ``labels_`` holds all N on every rank.
    """

    # whether fit under several processes clusters the shards (else rank 0 clusters all codes)
    shards_clustering = True

    def __init__(
        self,
        autoencoder: str = "conv",
        latent_dim: int | None = None,
        clusterer: str = "kmeans",
        n_clusters: int = 10,
        reducer: str | None = None,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer: str = "adam",
        optimizer_params: dict | None = None,
        precision: str = "fp32",
        loss: str = "mse",
        lr_schedule: str = "constant",
        augment: str | dict | None = None,
        val_fraction: float = 0.0,
        patience: int | None = None,
        image_shape: tuple[int, int, int] | None = None,
        autoencoder_params: dict | None = None,
        clusterer_params: dict | None = None,
        reducer_params: dict | None = None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
        checkpoint: str | None = None,
        encoder_weights: str | None = None,
    ):
        self.autoencoder = autoencoder
        self.latent_dim = latent_dim
        self.clusterer = clusterer
        self.n_clusters = n_clusters
        self.reducer = reducer
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.precision = precision
        self.loss = loss
        self.lr_schedule = lr_schedule
        self.augment = augment
        self.val_fraction = val_fraction
        self.patience = patience
        self.image_shape = image_shape
        self.autoencoder_params = autoencoder_params
        self.clusterer_params = clusterer_params
        self.reducer_params = reducer_params
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint
        self.encoder_weights = encoder_weights

    def fit(self, X, y=None, resume=None, eval_sets=None):
        """Train the autoencoder on X, then cluster its codes. Returns self.

        ``resume``: the ``checkpoint`` directory of a fit that was killed or interrupted
        with the same data and settings; training continues from its last checkpoint and
        ends with the same weights and labels as a fit that was never stopped. A
        checkpoint of other data or settings is refused with the difference named.

        ``eval_sets``: ``{name: images}``, e.g. ``{"test": X_test}``; after every epoch the
        mean squared reconstruction error of each, in eval mode, goes into ``history_`` as
        ``<name>_mse`` (the error of the epoch's final weights on the same images every
        epoch, unlike the running training ``loss``).
        """
        X = self._check_fit_input(X, y)
        eval_sets = self._eval_sets(eval_sets)
        seed = self._seed()
        ckpts = self._checkpoints(X, resume, seed, eval_sets=eval_sets)
        # build everything first, so a bad name fails before minutes of training
        reducer, clusterer = self._clustering_box(len(X), seed)
        self.device_ = resolve_device(self.device)
        self._build_networks(seed)
        self._check_settings(X)

        sharded = distributed.active() and self.shards_clustering
        # the codes UMAP will be fitted on: all, or the sample of the shards
        n_fit = min(len(X), sample_size_for(clusterer)) if sharded else len(X)
        t_compile = time.perf_counter()
        if reducer is not None and self.epochs > 0 and distributed.is_main():  # not beside training
            reducer.precompile(n_fit, self.autoencoder_.config.latent_dim)
        t0 = time.perf_counter()
        self.history_ = self._train_autoencoder(X, seed, ckpts, eval_sets=eval_sets)
        t1 = time.perf_counter()
        if sharded:
            self.shard_ = shard_bounds(len(X), distributed.rank(), distributed.world_size())
            Z = self._encode(_rows(X, *self.shard_))  # this rank's codes only
            t2 = time.perf_counter()
            fit = cluster_shards(Z, reducer, clusterer, seed)
            reducer, clusterer, labels = fit.reducer, fit.clusterer, fit.labels
            self.cluster_info_ = fit.info
        else:
            Z = self._encode(X)
            t2 = time.perf_counter()
            # one process clusters, for all
            reducer, clusterer = distributed.on_main(lambda: self._cluster(Z, reducer, clusterer))
            labels, self.shard_ = None, (0, len(X))
            self.cluster_info_ = _one_process_info(len(X), reducer, clusterer)
        t3 = time.perf_counter()
        self.embedding_ = Z
        self.reducer_, self.clusterer_ = reducer, clusterer
        self._set_cluster_attributes()
        if labels is not None:  # a clusterer fitted on a sample holds the sample's labels
            self._set_all_labels(labels)
        self.timings_ = {
            "compile": t0 - t_compile,  # UMAP's numba code, before training
            "train": t1 - t0,
            "encode": t2 - t1,
            "cluster": t3 - t2,
        }
        return self

    def _set_all_labels(self, labels: np.ndarray) -> None:
        self.labels_ = np.asarray(labels, dtype=np.int64)
        self.n_clusters_ = len(np.unique(self.labels_[self.labels_ >= 0]))

    def transform_shard(self, X) -> Shard:
        """This process's shard of X, encoded: ``Shard(codes, start, stop)`` with the codes
        (stop - start, latent_dim) of rows ``start:stop``, this rank's contiguous part
        (:func:`~aeclust.cluster.sharded.shard_bounds`, as in ``fit``). In one process that
        is all of X; under torchrun the ranks' shards, in rank order, make up
        ``transform(X)`` without any rank holding all codes."""
        check_is_fitted(self)
        X = self._check_input(X)
        start, stop = shard_bounds(len(X), distributed.rank(), distributed.world_size())
        return Shard(self._encode(_rows(X, start, stop)), start, stop)

    def _clustering_box(self, n_samples: int, seed: int, n_clusters=None):
        """(reducer or None, clusterer), unfitted and checked against ``n_samples`` codes
        (more clusters than images, and the like)."""
        n_clusters = self.n_clusters if n_clusters is None else n_clusters
        clusterer_params, reducer_params = self._box_params()
        clusterer = build_clusterer(self.clusterer, n_clusters, random_state=seed,
                                    **clusterer_params)  # fmt: skip
        reducer_params = {"n_components": n_clusters, **reducer_params}
        reducer = build_reducer(self.reducer, random_state=seed, **reducer_params)
        clusterer.check_n_samples(n_samples)
        if reducer is not None:
            reducer.check_n_samples(n_samples)
        return reducer, clusterer

    def _box_params(self) -> tuple[dict, dict]:
        """The clusterer's and the reducer's parameters (``clusterer_params``,
        ``reducer_params``)."""
        return dict(self.clusterer_params or {}), dict(self.reducer_params or {})

    def _cluster(self, Z: np.ndarray, reducer, clusterer):
        """Fit ``reducer`` (if any) and ``clusterer`` on the codes Z; returns both."""
        clusterer.fit(reducer.fit_transform(Z) if reducer is not None else Z)
        return reducer, clusterer

    def _check_settings(self, X) -> None:
        """Refuse settings that cannot work with ``X`` before anything is compiled or
        trained (subclasses with more settings check them here)."""

    def _build_networks(self, seed: int) -> None:
        self.autoencoder_name_ = self.autoencoder
        self.autoencoder_ = self._build_autoencoder(self.autoencoder, seed)

    def _set_cluster_attributes(self) -> None:
        self.labels_ = np.asarray(self.clusterer_.labels_, dtype=np.int64)
        self.n_clusters_ = int(self.clusterer_.n_clusters_)
        centers = getattr(self.clusterer_, "cluster_centers_", None)
        if centers is not None:
            self.cluster_centers_ = centers

    def predict(self, X) -> np.ndarray:
        """Assign images to the fitted clusters; shape (N,)."""
        check_is_fitted(self)
        Z = self.transform(X)
        if self.reducer_ is not None:
            Z = self.reducer_.transform(Z)
        return np.asarray(self.clusterer_.predict(Z), dtype=np.int64)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X).labels_

    def _extra_state(self):
        arrays = {f"clusterer.{k}": v for k, v in self.clusterer_.state_dict().items()}
        meta = {"clusterer": self.clusterer_.get_config(), "reducer": None}
        if self.reducer_ is not None:
            arrays.update({f"reducer.{k}": v for k, v in self.reducer_.state_dict().items()})
            meta["reducer"] = self.reducer_.get_config()
        meta["timings"] = getattr(self, "timings_", {})
        info = getattr(self, "cluster_info_", {})
        if info.get("processes", 1) > 1:  # one-process files stay as they were
            meta["cluster_info"] = info
        if len(self.labels_) != len(self.clusterer_.labels_):  # clusterer fitted on a sample
            arrays["fit.labels_"] = self.labels_
        return meta, arrays

    def _restore_extra(self, meta, arrays):
        def part(prefix):
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        if meta.get("clusterer") is None:
            raise ConfigError("model.json has no clusterer section")
        self.clusterer_ = clusterer_from_state(meta["clusterer"], part("clusterer."))
        self.reducer_ = None
        if meta.get("reducer") is not None:
            self.reducer_ = reducer_from_state(meta["reducer"], part("reducer."))
        self.timings_ = meta.get("timings", {})
        if "cluster_info" in meta:
            self.cluster_info_ = meta["cluster_info"]
        self._set_cluster_attributes()
        if "fit.labels_" in arrays:
            self._set_all_labels(arrays["fit.labels_"])


def _rows(X, start: int, stop: int):
    """Rows start:stop of X: a view of images that stay on disk, a slice of an array."""
    return X.subset(np.arange(start, stop)) if hasattr(X, "subset") else X[start:stop]


def _one_process_info(n: int, reducer, clusterer) -> dict:
    """``cluster_info_`` of codes clustered by one process."""
    what = clusterer.name if reducer is None else f"{reducer.name} + {clusterer.name}"
    return {"processes": distributed.world_size(), "n_codes": n, "method": "one process",
            "clusterer": clusterer.name, "reducer": None if reducer is None else reducer.name,
            "summary": f"{what} on all {n:,} codes in one process"}  # fmt: skip
