"""The convolutional autoencoder of "Walking the tightrope" (section 2.2), whose bottleneck
shape is the one thing that changes between configurations.

Encoder: ``levels`` (n_l = 5) stages, each a 3x3 convolution of stride 2 followed by
``blocks`` (2) residual blocks of two 3x3 convolutions; instance normalisation and ReLU
after every convolution; channels x4 at every stage, so every feature map up to the
bottleneck holds as many numbers as the (padded) input (eq. 3). Decoder: the mirror image,
each stage a bilinear x2 up-sampling, a padded 3x3 convolution with channels / 4 (eq. 4),
and the same residual blocks.

**Bottleneck size** (eq. 5): ``size`` = i in {1, 2, 3} gives a bottleneck of
``padded / 2^(n_l - i + 1)`` pixels a side (1/32, 1/16, 1/8 of the padded input), made by
turning the strides of the last i - 1 stages to 1 (and dropping the matching up-samplings).
**Compression** (eq. 6): the bottleneck has ``n_c = c * C * H * W / (h * w)`` channels, so
it holds the share c of the (padded) input's numbers; only the last encoder stage and the
first decoder stage change with it.

Choices the paper leaves open, and why:

* **Sizes that are not multiples of 2^n_l** (e.g. 28x28) are padded by replicating the
  border up to the next multiple (28 -> 32) and the reconstruction is cropped back, so the
  loss sees only real pixels. Replication continues the image instead of drawing a frame;
  on black-bordered digits it is the same as zero padding. Compression is counted against
  the padded input (eq. 6 as written), so c = 1 is complete for the padded image and holds
  at least as many numbers as the real pixels (``code_share`` gives the share of them).
* **One-pixel maps**: instance normalisation of a 1x1 map is zero for every input (torch
  refuses it in training), so a stage whose map is 1x1 uses no normalisation, only ReLU.
  Its 3x3 kernels are cut to their one useful tap (:func:`aeclust.nn.blocks.conv`), which
  leaves the function unchanged and saves 8/9 of the work.
* **The output layer** is the last up-sampling's convolution, linear and without residual
  blocks: instance normalisation and ReLU after it would fix every image's mean and
  contrast and forbid negative values.
* Instance normalisation has a learnt scale and shift (``affine=True``), so the ReLU after
  it can learn where to cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import EncoderDecoder, Size, conv

SIZES = (1, 2, 3)  # the paper's i of eq. 5
COMPRESSIONS = (1 / 64, 1 / 16, 1 / 4, 1.0)  # the paper's c_j of eq. 6


@dataclass
class BottleneckCAEConfig:
    input_shape: tuple[int, int, int]  # (C, H, W), any size
    latent_dim: int | None = None  # set by size and compression; a given value must match
    size: int = 1  # i of eq. 5: the bottleneck is 1/2^(levels - i + 1) of the padded side
    compression: float = 1 / 16  # c of eq. 6: share of the padded input's numbers kept
    levels: int = 5  # n_l: strided convolutions in the encoder
    blocks: int = 2  # residual blocks after every (up-)sampling convolution

    def __post_init__(self):
        c, h, w = self.input_shape
        if not (isinstance(self.levels, int) and self.levels >= 1):
            raise ValueError(f"levels must be a whole number >= 1; got {self.levels!r}")
        if not (isinstance(self.size, int) and 1 <= self.size <= self.levels):
            raise ValueError(
                f"size must be a whole number from 1 to levels={self.levels} (eq. 5's i: the "
                f"bottleneck is 1/2^(levels - i + 1) of the side); got {self.size!r}"
            )
        if not (isinstance(self.blocks, int) and self.blocks >= 0):
            raise ValueError(f"blocks must be a whole number >= 0; got {self.blocks!r}")
        if isinstance(self.compression, bool) or not 0 < float(self.compression):
            raise ValueError(f"compression must be a positive number; got {self.compression!r}")
        code = bottleneck_shape(self.input_shape, self.size, self.compression, self.levels)
        n_code = math.prod(code)
        if self.latent_dim is None:
            self.latent_dim = n_code
        elif self.latent_dim != n_code:
            raise ValueError(
                f"the code of this autoencoder is its bottleneck, {code[0]}x{code[1]}x"
                f"{code[2]} = {n_code} numbers for size={self.size}, compression="
                f"{self.compression}; leave latent_dim unset (got {self.latent_dim})"
            )


def padded_size(side: int, levels: int = 5) -> int:
    """``side`` rounded up to a multiple of 2^levels."""
    step = 2**levels
    return -(-side // step) * step


def bottleneck_channels(n_channels: int, size: int, compression: float, levels: int = 5) -> int:
    """Eq. 6: ``c * C * s_input^2 / s_i^2`` = c * C * 4^(levels - size + 1), at least 1
    (rounded to the nearest whole number when c does not divide it)."""
    exact = Fraction(compression).limit_denominator(1 << 20) * n_channels * 4 ** (levels - size + 1)
    return max(1, round(exact))


def bottleneck_shape(
    input_shape: tuple[int, int, int], size: int, compression: float, levels: int = 5
) -> tuple[int, int, int]:
    """(channels, height, width) of the bottleneck for images of ``input_shape``."""
    c, h, w = input_shape
    factor = 2 ** (levels - size + 1)
    hp, wp = padded_size(h, levels), padded_size(w, levels)
    return bottleneck_channels(c, size, compression, levels), hp // factor, wp // factor


def _norm(channels: int, size: Size) -> nn.Module:
    return nn.Identity() if size == (1, 1) else nn.InstanceNorm2d(channels, affine=True)


def conv_unit(c_in: int, c_out: int, size: Size, stride: int = 1) -> tuple[nn.Sequential, Size]:
    """3x3 convolution (padding 1, kernel fitted to the map), instance norm, ReLU."""
    layer, out = conv(c_in, c_out, size, 3, stride, 1)
    return nn.Sequential(layer, _norm(c_out, out), nn.ReLU()), out


class ResidualBlock(nn.Module):
    """``x + f(x)``, f = two conv units (He et al. 2016, with instance norm)."""

    def __init__(self, channels: int, size: Size):
        super().__init__()
        self.f = nn.Sequential(conv_unit(channels, channels, size)[0],
                               conv_unit(channels, channels, size)[0])  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


def stage(c_in: int, c_out: int, size: Size, stride: int, blocks: int, up: bool = False):
    """One encoder stage (a strided conv unit) or decoder stage (up-sampling by ``stride``,
    then a conv unit), each followed by ``blocks`` residual blocks; and its output size."""
    layers: list[nn.Module] = []
    if up and stride > 1:
        layers.append(nn.Upsample(scale_factor=stride, mode="bilinear", align_corners=False))
        size = (size[0] * stride, size[1] * stride)
    unit, size = conv_unit(c_in, c_out, size, 1 if up else stride)
    layers.append(unit)
    layers += [ResidualBlock(c_out, size) for _ in range(blocks)]
    return nn.Sequential(*layers), size


class BottleneckCAE(EncoderDecoder):
    """The paper's CAE (``bottleneck-cae``); ``encode`` gives the bottleneck flattened
    (``latent_dim`` = channels x height x width numbers), ``encode_map`` the tensor.

    For 1x28x28 images (padded to 32) and the defaults, channels run 1 -> 4 -> 16 -> 64 ->
    256 -> n_c; the bottleneck is n_c x 1 x 1 (size 1), x 2 x 2 (size 2) or x 4 x 4 (size 3)
    with n_c = 1024 c, 256 c or 64 c.
    """

    def __init__(self, config: BottleneckCAEConfig):
        super().__init__()
        self.config = config
        c, h, w = config.input_shape
        levels = config.levels
        self.padded = (padded_size(h, levels), padded_size(w, levels))
        self.code_shape = bottleneck_shape(config.input_shape, config.size, config.compression,
                                           levels)  # fmt: skip
        strides = [2] * (levels - config.size + 1) + [1] * (config.size - 1)
        channels = [c * 4**level for level in range(1, levels)] + [self.code_shape[0]]

        encoder, size, c_in = [], self.padded, c
        for c_out, stride in zip(channels, strides, strict=True):
            block, size = stage(c_in, c_out, size, stride, config.blocks)
            encoder.append(block)
            c_in = c_out
        self.encoder = nn.Sequential(*encoder)

        decoder = []
        outs = channels[::-1][1:]  # the decoder restores the encoder's channels backwards
        for c_out, stride in zip(outs, strides[::-1][:-1], strict=True):
            block, size = stage(c_in, c_out, size, stride, config.blocks, up=True)
            decoder.append(block)
            c_in = c_out
        last = strides[0]  # the output stage: up-sampling and a linear convolution
        decoder.append(nn.Upsample(scale_factor=last, mode="bilinear", align_corners=False))
        decoder.append(conv(c_in, c, (size[0] * last, size[1] * last), 3, 1, 1)[0])
        self.decoder = nn.Sequential(*decoder)

    @property
    def code_share(self) -> float:
        """Numbers in the bottleneck as a share of the real (unpadded) input's."""
        return math.prod(self.code_shape) / math.prod(self.config.input_shape)

    def _pad(self, x: Tensor) -> Tensor:
        dh, dw = self.padded[0] - x.shape[2], self.padded[1] - x.shape[3]
        if dh == dw == 0:
            return x
        return F.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2), mode="replicate")

    def encode_map(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, n_c, h, w)
        return self.encoder(self._pad(x))

    def encode(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, latent_dim)
        return self.encode_map(x).flatten(1)

    def decode(self, h: Tensor) -> Tensor:  # (B, latent_dim) -> (B, C, H, W)
        out = self.decoder(h.view(len(h), *self.code_shape))
        _, height, width = self.config.input_shape
        top, left = (self.padded[0] - height) // 2, (self.padded[1] - width) // 2
        return out[:, :, top : top + height, left : left + width]
