"""Noise attention (Morais' thesis, section 3.3.3, eq. 3.11, Fig. 3.4).

Every ``every`` epochs the top latent group z_0 of all training images is reduced (UMAP)
and clustered with HDBSCAN; the images it calls noise are poorly embedded, and get the loss
weight 1 + β in the following epochs (every other image 1), until the next test. With e =
``every`` and t cycles the run has e·t epochs; the last epoch is not followed by a test.

The thesis writes the loss as L_R + ... + β·L_N with L_N the indicator of noise (eq. 3.11,
Fig. 4.9: "when beta equals 0.15, noisy data points receive an extra 15% attention"), and
in section 3.3.3 calls the same factor κ - 1; we read it as β, the extra weight, and keep
κ for layer matching as eq. 3.9 does. The weights are the step's per-sample weights, so
they are saved with the training state and a resumed run goes on with the same ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import distributed
from .trainer import Callback, Trainer


def noise_weights(noise: np.ndarray, beta: float) -> np.ndarray:
    """(N,) loss weights: 1 + β for the points marked as noise, 1 for the others."""
    return (1.0 + beta * np.asarray(noise, dtype=bool)).astype(np.float32)


class NoiseAttention(Callback):
    """``find_noise() -> (N,) bool`` (noise among all training images, from the current
    network) every ``every`` epochs; sets the step's per-sample weights and logs the
    share of noise as ``"noise"``."""

    def __init__(self, every: int, beta: float, find_noise: Callable[[], np.ndarray]):
        if int(every) != every or every < 1:
            raise ValueError(f"noise attention needs every >= 1 epochs; got {every!r}")
        self.every, self.beta, self.find_noise = int(every), float(beta), find_noise

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if epoch % self.every or epoch >= trainer.config.epochs:
            return
        noise = distributed.on_main(self.find_noise)  # one process clusters, for all
        trainer.step.set_sample_weight(noise_weights(noise, self.beta))
        logs["noise"] = float(np.mean(noise))
