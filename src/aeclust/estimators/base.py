"""What every aeclust estimator shares: input checks, seeding, the autoencoder, save/load.

An estimator is a thin scikit-learn adapter (``__init__`` stores keyword arguments,
``fit`` validates them and returns ``self``, fitted state ends in ``_``) around pure torch
modules from :mod:`aeclust.nn`, losses from :mod:`aeclust.losses` and the one training
loop of :mod:`aeclust.training`.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data.mapped import DiskImages, value_range
from ..data.validate import to_images
from ..errors import DataError
from ..losses import reconstruction_loss, to_image
from ..nn import build_autoencoder, module_spec
from ..training import (
    EarlyStopping,
    EvalError,
    LossStep,
    ProgressBar,
    TrainConfig,
    Trainer,
    apply_batched,
    build_augment,
    data_identity,
    distributed,
    resolve_device,
)
from ..training.checkpoint import CheckpointDir
from .model_file import ModelFileMixin, jsonable


class ImageInputMixin:
    """Input checks and seeding for estimators that take images.

    X is (N, C, H, W) images, (N, H, W) grey images, or (N, D) vectors reshaped to the
    estimator's ``image_shape`` parameter; ``random_state`` seeds everything. Shared by
    :class:`DeepClusterer` and the supervised
    :class:`~aeclust.estimators.densenet.DenseNetClassifier`.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags

    def _fit_images(self, X, task: str) -> np.ndarray:
        """Images (N, C, H, W) float32 from X; sets ``n_features_in_`` and ``image_shape_``.

        ``task`` names what needs the two samples in the error message.
        """
        X = self._as_images(X, reset=True)
        if len(X) < 2:
            raise DataError(f"Got {len(X)} sample(s); {task} needs at least 2 samples.")
        self.image_shape_ = tuple(int(s) for s in X.shape[1:])
        self.n_features_in_ = math.prod(self.image_shape_)
        return X

    def _check_input(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = self._as_images(X, reset=False)
        if tuple(X.shape[1:]) != self.image_shape_:
            raise DataError(
                f"Images of shape {tuple(X.shape[1:])} do not match the shape the model was "
                f"trained on, {self.image_shape_}; resize them to (H, W) = "
                f"{self.image_shape_[1:]} first, e.g. load_dataset(path, image_size="
                f"{self.image_shape_[1:]}) (aeclust predict does this itself)."
            )
        return X

    def _as_images(self, X, reset: bool) -> np.ndarray:
        """(N, C, H, W) images pass through; (N, D) vectors go through sklearn's checks."""
        if isinstance(X, DiskImages):  # stays on disk; checked in one streaming pass
            X.check_finite()
            return X
        ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
        if ndim >= 3:  # images, or a 5-D mistake that to_images names
            return to_images(np.asarray(X))
        X = validate_data(self, X, reset=reset, dtype=np.float32)
        fitted_shape = None if reset else getattr(self, "image_shape_", None)
        return to_images(X, fitted_shape or self.image_shape)

    def _seed(self) -> int:
        """An int seed from ``random_state`` (drawn at random when it is None)."""
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _train_config(self, seed: int, epochs: int | None = None) -> TrainConfig:
        """The training settings of this estimator (its ``epochs`` unless ``epochs`` says
        otherwise); an estimator without ``lr_schedule`` or ``augment`` trains without."""
        return TrainConfig(
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            optimizer_params=self.optimizer_params,
            precision=self.precision,
            lr_schedule=getattr(self, "lr_schedule", "constant"),
            val_fraction=self.val_fraction,
            patience=self.patience,
            seed=seed,
            device=self.device,
            augment=build_augment(getattr(self, "augment", None), self.image_shape_),
        )

    def _eval_sets(self, eval_sets) -> dict:
        """``eval_sets`` ({name: images}) as images of the training images' shape."""
        sets = {}
        for name, images in (eval_sets or {}).items():
            images = self._as_images(images, reset=False)
            if tuple(images.shape[1:]) != self.image_shape_:
                raise DataError(
                    f"eval_sets[{name!r}] holds images of shape {tuple(images.shape[1:])}; "
                    f"the training images are {self.image_shape_}."
                )
            sets[str(name)] = images
        return sets

    def _checkpoints(self, X, resume, seed: int, y=None, eval_sets=None) -> CheckpointDir:
        """Where this fit's phases write (``checkpoint``, else ``resume``) and resume from,
        tagged with what shapes the result: the settings, the seed drawn from
        ``random_state``, a hash of ``X`` (and of ``y`` and of the ``eval_sets``), the
        device type and the number of processes."""
        write_to = getattr(self, "checkpoint", None) or resume
        identity = {}
        if write_to or resume:
            params = self.get_params()
            for k in ("verbose", "checkpoint", "device"):  # these leave the result as it is
                params.pop(k, None)
            identity = {
                "estimator": type(self).__name__,
                "params": jsonable(params),
                "seed": seed,
                "data": data_identity(X),
                "device": resolve_device(self.device).type,  # cpu and cuda differ in bits
                "processes": distributed.world_size(),
            }
            if y is not None:
                labels = np.ascontiguousarray(np.asarray(y))
                identity["labels"] = hashlib.sha256(labels.tobytes()).hexdigest()[:32]
            if eval_sets:
                identity["eval_sets"] = {k: data_identity(v) for k, v in eval_sets.items()}
        return CheckpointDir(write_to, resume, identity)


def check_loss_range(X, loss: str) -> None:
    """Refuse BCE for pixel values outside [0, 1], naming the range and the fix."""
    if loss == "bce":
        lo, hi = X.value_bounds() if isinstance(X, DiskImages) else value_range(X)
        if lo < 0 or hi > 1:
            raise DataError(
                f"loss='bce' needs pixel values in [0, 1]; these range from {lo:.3g} to "
                f"{hi:.3g}. Scale the images (e.g. X / 255) or use loss='mse'."
            )


def fit_phase(
    est, model, step, config, X, ckpts: CheckpointDir, phase: str, callbacks=(), desc=None
):
    """Train one phase of ``est``'s fit: ``Trainer(model, step, config)`` with
    ``callbacks``, then the progress bar (when ``est.verbose``; ``desc`` names it, default
    the phase), early stopping (when
    ``est.patience`` is set) and the phase's checkpoint; resumed from ``ckpts`` when it
    holds this phase. Returns the history."""
    callbacks = list(callbacks)
    if est.verbose and distributed.is_main():
        callbacks.append(ProgressBar(desc or phase))
    if est.patience is not None:
        callbacks.append(EarlyStopping(est.patience))
    callbacks += ckpts.callbacks(phase)
    return Trainer(model, step, config, callbacks).fit(X, ckpts.state(phase))


class DeepClusterer(ImageInputMixin, ModelFileMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """Base of the autoencoder-based clustering estimators (not used directly).

    Subclasses implement ``fit`` and ``predict`` and, for save/load (:class:`ModelFileMixin`),
    ``_extra_state()`` and ``_restore_extra(meta, arrays)``.
    """

    def _check_fit_input(self, X, y=None) -> np.ndarray:
        """Images (N, C, H, W) float32 from X (``y`` is ignored); sets the input attributes."""
        return self._fit_images(X, "clustering")

    # ------------------------------------------------------------------ the autoencoder
    def _build_autoencoder(self, name: str, seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        module = build_autoencoder(
            name, self.image_shape_, self.latent_dim, **(self.autoencoder_params or {})
        )
        if getattr(self, "encoder_weights", None):
            from ..weights import load_encoder_weights

            load_encoder_weights(module, self.encoder_weights)
        return module

    def _train_autoencoder(
        self, X: np.ndarray, seed: int, ckpts: CheckpointDir, epochs: int | None = None,
        eval_sets: dict | None = None,
    ) -> list[dict]:  # fmt: skip
        """Train ``self.autoencoder_`` on reconstruction alone (the phase "autoencoder");
        returns the history, with ``<name>_mse`` per epoch for every set of ``eval_sets``."""
        loss = reconstruction_loss(self.loss)
        check_loss_range(X, self.loss)

        def loss_fn(model, batch):
            return loss(model(batch.x).output, batch.x)

        def mse(model, x):  # per image, on the images' scale
            return (to_image(model(x).output, self.loss) - x).pow(2).flatten(1).mean(1)

        callbacks = [EvalError(eval_sets, mse)] if eval_sets else []
        cfg = self._train_config(seed, epochs)
        return fit_phase(self, self.autoencoder_, LossStep(loss_fn), cfg, X, ckpts,
                         "autoencoder", callbacks)  # fmt: skip

    def _encode(self, X: np.ndarray) -> np.ndarray:
        return apply_batched(
            lambda m, x: m.encode(x), self.autoencoder_, X, self._infer_batch(), self.device_
        ).astype(np.float32)

    def _infer_batch(self) -> int:
        return max(self.batch_size, 1024)

    def transform(self, X) -> np.ndarray:
        """Latent codes of X, shape (N, latent_dim)."""
        return self._encode(self._check_input(X))

    def reconstruct(self, X) -> np.ndarray:
        """The autoencoder's reconstructions of X, shape (N, C, H, W), on the input's scale."""
        X = self._check_input(X)
        return apply_batched(
            lambda m, x: to_image(m(x).output, self.loss), self.autoencoder_, X, 256, self.device_
        )

    def network_label(self) -> str:
        """The network's name in reports, e.g. "conv"."""
        return self.autoencoder

    # ------------------------------------------------------------------ save / load
    def _named_modules(self) -> dict:
        return {"autoencoder": self.autoencoder_}

    def _restore_modules(self, modules: dict) -> None:
        self.autoencoder_ = modules["autoencoder"]
        self.autoencoder_name_ = module_spec(self.autoencoder_)["registry"]
