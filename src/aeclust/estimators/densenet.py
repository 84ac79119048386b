"""The supervised gold standard of Liu & Zhang (sections 3.4, 5.2.1): a DenseNet classifier.

Not a clustering method: it is trained on the labels, and so shows how well the classes
can be told apart when they are known, the ceiling the autoencoder clusterings are compared
with. The paper trains five dense blocks with the softmax (cross-entropy) loss and Adam,
lr 1e-4, for 30 epochs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..data.validate import check_labels
from ..errors import ConfigError, DataError
from ..nn.densenet import DenseNet, DenseNetConfig
from ..training import LossStep, apply_batched, resolve_device
from .base import (
    ImageInputMixin,
    fit_phase,
)
from .model_file import ModelFileMixin

NO_LABELS = (
    "DenseNetClassifier requires y to be passed, but the target y is None: the supervised "
    "DenseNet baseline needs labels (e.g. a folder with one sub-folder per class, or 'y' in "
    "the .npz file). To group unlabelled images use the clustering models (AEClusterer, "
    "DCAEKMeans, DEC, IDEC, DCEC)."
)


class DenseNetClassifier(ImageInputMixin, ModelFileMixin, ClassifierMixin, BaseEstimator):
    """DenseNet-BC (:class:`aeclust.nn.densenet.DenseNet`) trained with cross-entropy and Adam.

    Parameters
    ----------
    epochs : int, default=30
        Passes over the training data (the paper's 30).
    batch_size : int, default=64
        Mini-batch size. The paper uses 1,000 (on a GPU), but with the default network a
        training step holds about 16 MB of activations per 3x50x50 image (measured: about
        1 GB at 64, 3.7 GB at 256), so 1,000 would need about 16 GB; 64 fits a CPU machine
        and gives more Adam steps per epoch.
    lr : float, default=1e-4
        Adam learning rate (the paper's 1e-4).
    optimizer, optimizer_params, precision
        As in :class:`~aeclust.AEClusterer`.
    n_blocks : int, default=5
        Dense blocks (the paper's five).
    layers_per_block : int, default=4
        Bottleneck layers in each dense block.
    growth_rate : int, default=12
        Feature maps each layer adds (k).
    image_shape : (C, H, W) or None
        Shape of one image when X is given as flat (N, D) vectors; None treats each vector
        as a 1xD image.
    val_fraction : float, default=0.0
        Share of the data held out for the validation loss.
    patience : int or None, default=None
        Early stopping on the validation loss (needs ``val_fraction`` > 0); the best
        weights are kept.
    device : str, default="auto"
        "auto" (CUDA when present, else CPU), "cpu" or "cuda".
    random_state : int, RandomState or None
        Seed of the weights, the shuffling and the held-out split; on the CPU the same seed
        gives the same predictions.
    verbose : bool, default=False
        Show a progress bar while training.
    checkpoint : str or None
        A directory for the training state (``classifier.safetensors``, after every epoch),
        from which ``fit(X, y, resume=checkpoint)`` continues a killed fit.

    Attributes
    ----------
    classes_ : ndarray (n_classes,), the sorted labels seen in ``fit`` (any dtype).
    network_ : the trained :class:`~aeclust.nn.densenet.DenseNet`.
    history_ : list of dict, one per epoch (loss, acc on the training batches, val_loss,
        lr, seconds).
    image_shape_ : (C, H, W) of the training images; n_features_in_ = C * H * W.
    """

    def __init__(
        self,
        epochs: int = 30,
        batch_size: int = 64,
        lr: float = 1e-4,
        optimizer: str = "adam",
        optimizer_params: dict | None = None,
        precision: str = "fp32",
        n_blocks: int = 5,
        layers_per_block: int = 4,
        growth_rate: int = 12,
        image_shape: tuple[int, int, int] | None = None,
        val_fraction: float = 0.0,
        patience: int | None = None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
        checkpoint: str | None = None,
    ):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.precision = precision
        self.n_blocks = n_blocks
        self.layers_per_block = layers_per_block
        self.growth_rate = growth_rate
        self.image_shape = image_shape
        self.val_fraction = val_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint

    def fit(self, X, y=None, resume=None):
        """Train on images X (N, C, H, W) or vectors (N, D) with labels y (N,). ``resume``:
        a ``checkpoint`` directory to continue from, as in :meth:`AEClusterer.fit
        <aeclust.AEClusterer.fit>`. Returns self."""
        if y is None:
            raise DataError(NO_LABELS)
        X = self._fit_images(X, "training a classifier")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)  # "Unknown label type" for continuous targets
        check_labels(y, len(X))  # one label per image
        self.classes_, targets = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError(
                f"y has 1 class ({self.classes_[0]!r}); a classifier needs at least 2 classes."
            )
        config = self._train_config(self._seed())
        self.device_ = resolve_device(self.device)
        torch.manual_seed(config.seed)
        self.network_ = _build_densenet(
            self.image_shape_,
            len(self.classes_),
            n_blocks=self.n_blocks,
            layers_per_block=self.layers_per_block,
            growth_rate=self.growth_rate,
        )
        targets = torch.as_tensor(targets, dtype=torch.long)

        def loss_fn(model, batch):
            logits = model(batch.x)  # (B, n_classes)
            target = targets[batch.index].to(logits.device)  # (B,)
            correct = (logits.argmax(1) == target).float().mean()
            return {"loss": F.cross_entropy(logits, target), "acc": correct}

        ckpts = self._checkpoints(X, resume, config.seed, targets)
        self.history_ = fit_phase(
            self, self.network_, LossStep(loss_fn), config, X, ckpts, "classifier", desc="densenet"
        )
        self.network_.eval()
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (N, n_classes), columns in the order of ``classes_``."""
        X = self._check_input(X)
        logits = apply_batched(lambda m, x: m(x), self.network_, X, 256, self.device_)
        return softmax(logits.astype(np.float64), axis=1)

    def features(self, X) -> np.ndarray:
        """The network's features before its classifier (N, F), e.g. for a Fréchet distance
        between generated and real images (:func:`aeclust.metrics.frechet_distance`)."""
        X = self._check_input(X)
        return apply_batched(lambda m, x: m.features(x), self.network_, X, 256, self.device_)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each image, shape (N,), values from ``classes_``."""
        proba = self.predict_proba(X)  # checks that the model is fitted
        return self.classes_[proba.argmax(axis=1)]

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` (weights) and ``model.json`` (the rest) into ``path``.

        The labels are stored in JSON, so they must be numbers, strings or booleans.
        """
        check_is_fitted(self)
        if not all(isinstance(c, str | int | float | bool | np.generic) for c in self.classes_):
            raise DataError("Only labels that are numbers, strings or booleans can be saved.")
        return super().save(path)

    def _named_modules(self) -> dict:
        return {"network": self.network_}

    def _restore_modules(self, modules: dict) -> None:
        self.network_ = modules["network"]

    def _extra_state(self):
        meta = {"classes": self.classes_.tolist(), "classes_dtype": self.classes_.dtype.str}
        return meta, {}

    def _restore_extra(self, meta: dict, arrays: dict) -> None:
        self.classes_ = np.asarray(meta["classes"], dtype=np.dtype(meta["classes_dtype"]))


def _build_densenet(image_shape, n_classes: int, **params) -> DenseNet:
    """A :class:`DenseNet` for images of ``image_shape``; a bad setting is a ConfigError."""
    try:
        return DenseNet(DenseNetConfig(tuple(image_shape), n_classes, **params))
    except ValueError as exc:
        raise ConfigError(f"Cannot build the DenseNet: {exc}.") from exc
