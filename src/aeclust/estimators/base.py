"""What every aeclust estimator shares: input checks, seeding, the autoencoder, save/load.

An estimator is a thin scikit-learn adapter (``__init__`` stores keyword arguments,
``fit`` validates them and returns ``self``, fitted state ends in ``_``) around pure torch
modules from :mod:`aeclust.nn`, losses from :mod:`aeclust.losses` and the one training
loop of :mod:`aeclust.training`.
"""

from __future__ import annotations

import json
import math
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data.validate import to_images
from ..errors import ConfigError, DataError, ModelFileError
from ..losses import reconstruction_loss, to_image
from ..nn import autoencoder_config, build_autoencoder
from ..training import (
    EarlyStopping,
    LossStep,
    ProgressBar,
    TrainConfig,
    Trainer,
    apply_batched,
    build_augment,
    data_identity,
    resolve_device,
)
from ..training.checkpoint import CheckpointDir
from ..weights import write_safetensors

FORMAT = "aeclust-model"
FORMAT_VERSION = 1
WEIGHTS_FILE, META_FILE = "model.safetensors", "model.json"
ESTIMATORS: dict[str, type] = {}  # class name -> class, for load()


def aeclust_version() -> str:
    try:
        return version("aeclust")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


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
        ndim = X.ndim if hasattr(X, "ndim") else np.asarray(X).ndim
        if ndim >= 3:  # images, or a 5-D mistake that to_images names
            return to_images(np.asarray(X))
        X = validate_data(self, X, reset=reset, dtype=np.float32)
        fitted_shape = None if reset else getattr(self, "image_shape_", None)
        return to_images(X, fitted_shape or self.image_shape)

    def _seed(self) -> int:
        """An int seed from ``random_state`` (drawn at random when it is None)."""
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _checkpoints(self, X: np.ndarray, resume) -> CheckpointDir:
        """Where this fit's phases write (``checkpoint``, else ``resume``) and resume from,
        tagged with the settings that shape the result and a hash of ``X``."""
        write_to = getattr(self, "checkpoint", None) or resume
        identity = {}
        if write_to or resume:
            params = self.get_params()
            for k in ("verbose", "checkpoint", "device"):  # these leave the result as it is
                params.pop(k, None)
            identity = {
                "estimator": type(self).__name__,
                "params": _jsonable(params),
                "data": data_identity(X),
            }
        return CheckpointDir(write_to, resume, identity)


def fit_phase(
    est, model, step, config, X, ckpts: CheckpointDir, phase: str, callbacks=(), desc=None
):
    """Train one phase of ``est``'s fit: ``Trainer(model, step, config)`` with
    ``callbacks``, then the progress bar (when ``est.verbose``; ``desc`` names it, default
    the phase), early stopping (when
    ``est.patience`` is set) and the phase's checkpoint; resumed from ``ckpts`` when it
    holds this phase. Returns the history."""
    callbacks = list(callbacks)
    if est.verbose:
        callbacks.append(ProgressBar(desc or phase))
    if est.patience is not None:
        callbacks.append(EarlyStopping(est.patience))
    callbacks += ckpts.callbacks(phase)
    return Trainer(model, step, config, callbacks).fit(X, ckpts.state(phase))


class DeepClusterer(ImageInputMixin, ClusterMixin, TransformerMixin, BaseEstimator):
    """Base of the autoencoder-based clustering estimators (not used directly).

    Subclasses implement ``fit`` and ``predict`` and, for save/load, ``_extra_state()`` and
    ``_restore_extra(meta, tensors)``.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ESTIMATORS[cls.__name__] = cls

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

    def _train_config(self, seed: int, epochs: int | None = None) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs if epochs is None else epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            lr_schedule=self.lr_schedule,
            val_fraction=self.val_fraction,
            patience=self.patience,
            seed=seed,
            device=self.device,
            augment=build_augment(getattr(self, "augment", None), self.image_shape_),
        )

    def _train_autoencoder(
        self, X: np.ndarray, seed: int, ckpts: CheckpointDir, epochs: int | None = None
    ) -> list[dict]:
        """Train ``self.autoencoder_`` on reconstruction alone (the phase "autoencoder");
        returns the history."""
        loss = reconstruction_loss(self.loss)
        if self.loss == "bce" and (X.min() < 0 or X.max() > 1):
            raise DataError(
                f"loss='bce' needs pixel values in [0, 1]; these range from {X.min():.3g} to "
                f"{X.max():.3g}. Scale the images (e.g. X / 255) or use loss='mse'."
            )

        def loss_fn(model, batch):
            return loss(model(batch.x), batch.x)

        cfg = self._train_config(seed, epochs)
        return fit_phase(self, self.autoencoder_, LossStep(loss_fn), cfg, X, ckpts, "autoencoder")

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
            lambda m, x: to_image(m(x), self.loss), self.autoencoder_, X, 256, self.device_
        )

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` (all arrays) and ``model.json`` (the rest) into ``path``.

        ``path`` is a directory, created if needed. Loading runs no pickled code.
        """
        check_is_fitted(self)
        tensors = {
            f"autoencoder.{k}": v.detach().cpu().contiguous()
            for k, v in self.autoencoder_.state_dict().items()
        }
        extra_meta, extra_arrays = self._extra_state()
        for k, v in extra_arrays.items():
            tensors[k] = torch.from_numpy(np.ascontiguousarray(v))
        meta = {
            "estimator": type(self).__name__,
            "params": _jsonable(self.get_params()),
            "image_shape": list(self.image_shape_),
            "autoencoder": {
                "name": self.autoencoder_name_,
                "config": autoencoder_config(self.autoencoder_),
            },
            "history": _jsonable(self.history_),
            **extra_meta,
        }
        return write_model_files(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto") -> DeepClusterer:
        """Load an estimator written by :meth:`save`; it predicts and transforms identically."""
        meta, tensors = read_model_files(path)
        name = meta.get("estimator")
        est_cls = ESTIMATORS.get(name)
        if est_cls is None or not issubclass(est_cls, cls):
            raise ModelFileError(f"'{path}' holds a {name} model, not a {cls.__name__}.")
        params = meta["params"]
        params["device"] = device
        est = est_cls(**{k: v for k, v in params.items() if k in est_cls().get_params()})
        try:
            est.image_shape_ = tuple(meta["image_shape"])
            est.n_features_in_ = math.prod(est.image_shape_)
            ae = meta["autoencoder"]
            cfg = {k: v for k, v in ae["config"].items() if k != "input_shape"}
            est.autoencoder_name_ = ae["name"]
            est.autoencoder_ = build_autoencoder(ae["name"], est.image_shape_, **cfg)
            state = {k[12:]: v for k, v in tensors.items() if k.startswith("autoencoder.")}
            est.autoencoder_.load_state_dict(state)
            est.device_ = resolve_device(device)
            est.autoencoder_.to(est.device_).eval()
            est.history_ = meta.get("history", [])
            est._restore_extra(meta, {k: v.numpy() for k, v in tensors.items()})
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise inconsistent_model_files(path, exc) from exc
        return est

    def _extra_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {}, {}

    def _restore_extra(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        pass


def write_model_files(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict
) -> Path:
    """Write ``tensors`` to ``model.safetensors`` and ``meta`` to ``model.json`` in ``path``.

    ``path`` is a directory, created if needed; ``meta`` gets the format header first. Each
    file is written to a temporary name and renamed, so neither is ever half-written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"'{path}' is a file; save() needs a directory path.")
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aeclust_version": aeclust_version(),
        **meta,
    }
    tmp_m = path / (META_FILE + ".tmp")
    tmp_m.write_text(json.dumps(meta, indent=1))
    write_safetensors(tensors, path / WEIGHTS_FILE, metadata={"format": FORMAT})
    os.replace(tmp_m, path / META_FILE)
    return path


def inconsistent_model_files(path: str | os.PathLike, exc: Exception) -> ModelFileError:
    """The error for model files that read well but do not fit together (``exc`` says how)."""
    return ModelFileError(
        f"The model files in '{path}' are inconsistent ({exc}); they were not written "
        "by this version of aeclust or were modified. Re-run the training."
    )


def read_model_files(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and check ``model.json`` and ``model.safetensors`` in directory ``path``."""
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS_FILE, META_FILE):
        path = path.parent
    weights, meta_file = path / WEIGHTS_FILE, path / META_FILE
    for f in (weights, meta_file):
        if not f.is_file():
            raise ModelFileError(
                f"No {f.name} in '{path}'. Give the directory that save() or `aeclust run` wrote."
            )
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"'{meta_file}' is not valid JSON ({exc}); the file is truncated or not ours."
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"'{meta_file}' was not written by aeclust (no '{FORMAT}' marker).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"'{meta_file}' has format version {meta['format_version']}, newer than this "
            f"aeclust understands ({FORMAT_VERSION}); upgrade aeclust."
        )
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(
            f"'{weights}' cannot be read ({exc}); the file is truncated or not a safetensors "
            "file written by aeclust. Re-run the training or restore the file."
        ) from exc
    return meta, tensors


def _jsonable(obj):
    """Convert numpy scalars/arrays and tuples so json.dumps accepts them."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
