"""Unsupervised segmentation with LOC, the local observer convolution (one-stage
autoencoders, section 2.2, section 3.2, appendix C): every pixel gets an integer segment,
the network chooses how many segments each image has, and the median rule turns the
segments into a foreground mask.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator

from ..errors import ConfigError, DataError, check_choice, check_number
from ..losses.loc import loc_loss, relative_error
from ..nn.loc import LOC, LOCConfig
from ..segmentation import POLARITIES, consecutive, median_masks, n_segments
from ..training import Callback, LossStep, Trainer, apply_batched, resolve_device
from .base import ImageInputMixin, fit_phase
from .model_file import ModelFileMixin

MONITOR = 256  # training images whose segments are counted after every epoch


class SegmentLog(Callback):
    """After every epoch, on up to 256 fixed training images: ``segments`` (mean number
    per image), ``error`` (mean ε, eq. 20) and ``below_rho`` (share of images at ε ≤ ρ)."""

    def __init__(self, est: LOCSegmenter, X: np.ndarray):
        self.est, self.X = est, X[:MONITOR]

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        segments, error = self.est._segments_and_error(self.X)
        logs["segments"] = float(n_segments(segments).mean())
        logs["error"] = float(error.mean())
        logs["below_rho"] = float((error <= self.est.rho).mean())


class LOCSegmenter(ImageInputMixin, ModelFileMixin, BaseEstimator):
    """LOC segmentation: ``fit(images)``, then ``segment(images)`` (integer segment maps)
    and ``predict(images)`` (foreground masks).

    The network (:class:`aeclust.nn.loc.LOC`) maps an image to a real field s; round(s)
    are the segments, and an observer convolution G must reconstruct the image from them
    (eq. 19) to within the share ``rho`` of its variance (eqs. 20-22,
    :func:`aeclust.losses.loc.loc_loss`). Nothing fixes the number of segments: an image
    gets as many integer levels as it needs to be explained to that bound, so a smaller
    ``rho`` gives more segments, a larger one fewer. (The paper says a large ρ "preserves a
    large partitioning factor"; with the loss it writes, zero below ρ, a looser bound can
    only need fewer segments, and that is what we measure: BENCHMARKS.md.)

    Parameters
    ----------
    rho : float, default=0.5
        The bound of eq. 21: the share of each image's variance its segments may leave
        unexplained before the loss is zero (Table 4's 0.5). In (0, 1).
    epochs : int, default=50
        Passes over the images (Table 4's 50).
    batch_size : int, default=64
        Table 4's 64.
    lr : float, default=1e-3
        Adam's learning rate (Table 4: Adam, 1e-3, β = (0.9, 0.999)).
    optimizer, optimizer_params, precision
        As in :class:`~aeclust.AEClusterer`.
    width : int, default=16
        Filters of the full-resolution blocks (2x and 4x at the coarser scales). Fig. 12's
        filter counts are not in the text; 16 trains 1,000 64x64 images in about 14 s an
        epoch on 2 CPU cores, 32 took about 45 s (in an earlier version of the network;
        its scores at 32 were not measured against 16 on this version).
    observer_size : int, default=3
        Odd kernel size of the observer G.
    target_window : int, default=7
        What the observer reconstructs (:class:`aeclust.nn.loc.LOC`): every pixel's local
        mean and standard deviation over this odd window, or with 0 the pixels.
    polarity : {"border", "none"}, default="border"
        How :func:`aeclust.segmentation.median_masks` decides which half of the segments
        is the object: "none" is the paper's rule (the upper half), "border" also swaps a
        mask whose foreground is mostly the image's border.
    image_shape, val_fraction, patience, device, random_state, verbose, checkpoint
        As in :class:`~aeclust.AEClusterer`.

    Attributes
    ----------
    network_ : the trained :class:`~aeclust.nn.loc.LOC`.
    history_ : list of dict, one per epoch: loss, segments (mean per monitored image),
        error (mean ε), below_rho (share of images within the bound), seconds.
    image_shape_ : (C, H, W) of the training images.
    """

    def __init__(
        self,
        rho: float = 0.5,
        epochs: int = 50,
        batch_size: int = 64,
        lr: float = 1e-3,
        optimizer: str = "adam",
        optimizer_params: dict | None = None,
        precision: str = "fp32",
        width: int = 16,
        observer_size: int = 3,
        target_window: int = 7,
        polarity: str = "border",
        image_shape: tuple[int, int, int] | None = None,
        val_fraction: float = 0.0,
        patience: int | None = None,
        device: str = "auto",
        random_state=None,
        verbose: bool = False,
        checkpoint: str | None = None,
    ):
        self.rho = rho
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.optimizer_params = optimizer_params
        self.precision = precision
        self.width = width
        self.observer_size = observer_size
        self.target_window = target_window
        self.polarity = polarity
        self.image_shape = image_shape
        self.val_fraction = val_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint = checkpoint

    def _check_settings(self) -> None:
        check_number("rho", self.rho, low=0, high=1)
        if self.rho == 1:
            raise ConfigError(
                f"rho must be below 1 (it is the share of each image's variance the segments "
                f"may leave unexplained; 1 is what one flat colour leaves); got {self.rho!r}."
            )
        check_number("width", self.width, low=1, integer=True)
        check_number("observer_size", self.observer_size, low=1, integer=True)
        check_number("target_window", self.target_window, low=0, integer=True)
        for name in ("observer_size", "target_window"):
            value = getattr(self, name)
            if value % 2 == 0 and not (name == "target_window" and value == 0):
                raise ConfigError(f"{name} must be odd (a window has a centre); got {value}.")
        check_choice("polarity", self.polarity, POLARITIES)

    def fit(self, X, y=None, resume=None):
        """Train on images X (N, C, H, W) (``y`` is ignored). ``resume``: a ``checkpoint``
        directory to continue from, as in :meth:`AEClusterer.fit
        <aeclust.AEClusterer.fit>`. Returns self."""
        self._check_settings()
        X = self._fit_images(X, "segmentation")
        if X.shape[2] * X.shape[3] < 2:
            raise DataError(
                "Images of one pixel (1 feature(s)) cannot be segmented; give images (N, C, "
                "H, W), or flat vectors with image_shape=(C, H, W)."
            )
        config = self._train_config(self._seed())
        self.device_ = resolve_device(self.device)
        torch.manual_seed(config.seed)
        self.network_ = LOC(
            LOCConfig(self.image_shape_, self.width, self.observer_size, self.target_window)
        )
        rho = float(self.rho)

        def loss_fn(model, batch):
            out = model(batch.x)
            return loc_loss(out.target, out.reconstruction, rho)

        ckpts = self._checkpoints(X, resume, config.seed)
        self.history_ = fit_phase(
            self, self.network_, LossStep(loss_fn), config, X, ckpts, "loc",
            [SegmentLog(self, X)], desc="LOC",
        )  # fmt: skip
        self.network_.eval()
        return self

    def _segments_and_error(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Consecutive segment maps (N, H, W) and ε of each image (N,)."""

        def both(model, x):
            out = model(x)
            err = relative_error(out.target, out.reconstruction)
            return torch.cat([out.segments.flatten(1), err[:, None]], 1)

        rows = apply_batched(both, self.network_, X, 256, self.device_)
        segments = rows[:, :-1].round().astype(np.int64).reshape(len(X), *X.shape[2:])
        return consecutive(segments), rows[:, -1]

    def segment(self, X) -> np.ndarray:
        """The segment of every pixel, (N, H, W) int64, numbered 0..n-1 in each image in the
        order of the network's field (so the median rule can split it)."""
        return self._segments_and_error(self._check_input(X))[0]

    def predict(self, X) -> np.ndarray:
        """Foreground masks (N, H, W) bool, by the median rule of section 3.2."""
        return median_masks(self.segment(X), self.polarity)

    def reconstruct(self, X) -> np.ndarray:
        """The observer's reconstruction of each image's target from its segments: (N, C,
        H, W) with ``target_window=0``, else (N, 2C, H, W), local means then local stds."""
        X = self._check_input(X)
        return apply_batched(lambda m, x: m(x).reconstruction, self.network_, X, 256, self.device_)

    def field(self, X) -> np.ndarray:
        """The real field s before rounding, (N, H, W)."""
        X = self._check_input(X)
        return apply_batched(lambda m, x: m.field(x)[:, 0], self.network_, X, 256, self.device_)

    # ------------------------------------------------------------------ save / load
    def _named_modules(self) -> dict:
        return {"network": self.network_}

    def _restore_modules(self, modules: dict) -> None:
        self.network_ = modules["network"]
