"""Liu & Zhang's fully connected autoencoder (appendix 8.1 "Fully Connected AutoEncoders")."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from .blocks import EncoderDecoder


@dataclass
class FCConfig:
    input_shape: tuple[int, int, int]  # (C, H, W); flattened to D = C*H*W (7500 for 3x50x50)
    latent_dim: int = 64  # the paper's ablation: fewer hurt, more did not help
    hidden: tuple[int, ...] = (2000, 1000, 500)  # encoder widths; the decoder mirrors them
    code_activation: bool = True  # BatchNorm + ReLU on the code as in the paper; False = linear


def _layers(widths: list[int], last_activation: bool) -> list[nn.Module]:
    """Linear + BatchNorm1d + ReLU per step; the last step without BN + ReLU unless asked."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2 or last_activation:
            layers += [nn.BatchNorm1d(b), nn.ReLU()]
    return layers


class FCAutoencoder(EncoderDecoder):
    """Liu & Zhang's fully connected autoencoder (``fc``; F1 0.605 with k-means in the paper).

    Shapes for 3x50x50 (the paper) and 1x28x28, defaults::

        flatten                              7500            784
        Linear, BatchNorm1d, ReLU            -> 2000         -> 2000
        Linear, BatchNorm1d, ReLU            -> 1000         -> 1000
        Linear, BatchNorm1d, ReLU            -> 500          -> 500
        Linear, BatchNorm1d, ReLU            -> 64: the code (B, 64)
        Linear, BatchNorm1d, ReLU            -> 500, 1000, 2000 (three layers)
        Linear (linear output), unflatten    -> 7500 -> 3x50x50    -> 784 -> 1x28x28

    Any input size works: only D changes. With ``code_activation`` (the paper) the code
    is non-negative, being a ReLU output. BatchNorm needs batches of at least 2 samples in
    training. The paper's final Sigmoid is folded into the loss: the output is linear (BCE
    applies it to the logits).
    """

    def __init__(self, config: FCConfig):
        super().__init__()
        if any(n < 1 for n in config.hidden):
            raise ValueError(f"hidden must be positive layer widths; got {config.hidden!r}")
        self.config = config
        widths = [math.prod(config.input_shape), *config.hidden, config.latent_dim]
        self.encoder = nn.Sequential(nn.Flatten(), *_layers(widths, config.code_activation))
        self.decoder = nn.Sequential(
            *_layers(widths[::-1], last_activation=False),
            nn.Unflatten(1, tuple(config.input_shape)),
        )
