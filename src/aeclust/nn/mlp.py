"""Fully connected autoencoder (DEC / N2D style: d-500-500-2000-10)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from .blocks import EncoderDecoder


@dataclass
class MLPConfig:
    input_shape: tuple[int, int, int]  # (C, H, W) of one image; flattened to C*H*W inputs
    latent_dim: int = 10  # size of the code h
    hidden: tuple[int, ...] = (500, 500, 2000)  # encoder widths; the decoder mirrors them


def _stack(widths: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them and none after the last."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPAutoencoder(EncoderDecoder):
    """Encoder ``D -> hidden... -> latent_dim``, decoder the mirror image.

    The code and the output are linear (no activation): the output is a real value for the
    MSE loss or a logit for the BCE loss, as in DEC's and N2D's autoencoders.
    """

    def __init__(self, config: MLPConfig):
        super().__init__()
        self.config = config
        d = math.prod(config.input_shape)
        widths = [d, *config.hidden, config.latent_dim]
        self.encoder = _stack(widths)
        self.decoder = _stack(widths[::-1])

    def encode(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, latent_dim)
        return self.encoder(x.flatten(1))

    def decode(self, h: Tensor) -> Tensor:  # (B, latent_dim) -> (B, C, H, W)
        return self.decoder(h).view(len(h), *self.config.input_shape)
