"""Convolutional autoencoder with strided convolutions and no pooling (DCEC style)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from .blocks import EncoderDecoder


@dataclass
class ConvConfig:
    input_shape: tuple[int, int, int]  # (C, H, W) of one image
    latent_dim: int = 10  # size of the code h (a dense layer after the last convolution)
    channels: tuple[int, ...] = (32, 64, 128)  # one stride-2 convolution per entry
    kernels: tuple[int, ...] = (5, 5, 3)  # odd kernel sizes, padding k // 2 ("same")


def conv_out(size: int, kernel: int, stride: int = 2) -> int:
    """Output size of a convolution with padding ``kernel // 2``."""
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


class ConvAutoencoder(EncoderDecoder):
    """Strided convolutions down, a dense code, transposed convolutions back up.

    With the defaults a 1x28x28 image goes 32x14x14 -> 64x7x7 -> 128x4x4 -> 10 (DCEC uses
    the same widths). Every convolution has stride 2 and padding ``k // 2``; each transposed
    convolution uses ``output_padding`` 1 when the size it must restore is even and 0 when
    odd, so the output has exactly the input's size for any H, W and channel count. The
    output is linear: a value for MSE or a logit for BCE.
    """

    def __init__(self, config: ConvConfig):
        super().__init__()
        if len(config.channels) != len(config.kernels):
            raise ValueError("channels and kernels must have the same length")
        self.config = config
        c, h, w = config.input_shape
        sizes = [(h, w)]
        for k in config.kernels:
            sizes.append((conv_out(sizes[-1][0], k), conv_out(sizes[-1][1], k)))
        self.bottleneck = (config.channels[-1], *sizes[-1])  # (C', H', W')

        down: list[nn.Module] = []
        for c_in, c_out, k in zip(
            (c, *config.channels[:-1]), config.channels, config.kernels, strict=True
        ):
            down += [nn.Conv2d(c_in, c_out, k, stride=2, padding=k // 2), nn.ReLU()]
        self.encoder = nn.Sequential(
            *down, nn.Flatten(), nn.Linear(math.prod(self.bottleneck), config.latent_dim)
        )

        self.expand = nn.Sequential(
            nn.Linear(config.latent_dim, math.prod(self.bottleneck)), nn.ReLU()
        )
        up: list[nn.Module] = []
        outs = (*config.channels[::-1][1:], c)
        for i, (c_in, c_out, k) in enumerate(
            zip(config.channels[::-1], outs, config.kernels[::-1], strict=True)
        ):
            th, tw = sizes[-2 - i]  # the size this layer must restore
            up.append(
                nn.ConvTranspose2d(
                    c_in,
                    c_out,
                    k,
                    stride=2,
                    padding=k // 2,
                    output_padding=(1 - th % 2, 1 - tw % 2),
                )
            )
            if i < len(outs) - 1:
                up.append(nn.ReLU())
        self.decoder = nn.Sequential(*up)

    def encode(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, latent_dim)
        return self.encoder(x)

    def decode(self, h: Tensor) -> Tensor:  # (B, latent_dim) -> (B, C, H, W)
        return self.decoder(self.expand(h).view(len(h), *self.bottleneck))
