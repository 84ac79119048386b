"""LOC, the local observer convolution (one-stage autoencoders, section 2.2, appendix C):
a fully convolutional network that gives every pixel one real number, the segment field s,
whose integer part is the pixel's segment; an observer kernel G reconstructs the image from
the integer segments, v̂ = s * G (eq. 19), and the error of that reconstruction trains both.

What we reconstructed where the paper is silent (its Fig. 12 is not in the text we have;
appendix C says only "convolution blocks of a 2-D convolution, batch normalisation and
ReLU" with kernel sizes, strides and filter counts given in the figure):

- The backbone is a small U-Net of such blocks: ``width`` filters at full resolution, two
  stride-2 blocks down (2·width, 4·width), bilinear up-sampling back with the
  full-resolution features of the same scale concatenated (so segment borders stay on the
  image's edges rather than blurring over 4x4 cells), and a 1x1 convolution to s. Any
  image size and channel count works: up-sampling goes to the size of the skip.
- "Clipped to integers": the segments are round(s). In training the observer sees
  round(s) too, through a straight-through estimator (the forward pass rounds, the
  backward pass is the identity), so what the loss judges is the segmentation that is
  predicted, not a continuous field that only looks like one; this is what gives the
  integers their meaning and makes the network choose how many of them an image needs.
- What the observer reconstructs, v in eq. 20: section 2.2 builds G from "spectral gram
  matrices" of local features, so with ``target_window`` = w > 0 (default 7) v is each
  pixel's local statistics, the mean and the standard deviation of every channel over the
  w x w window around it (the diagonal of a local Gram matrix): a region of one texture
  is then one thing to explain, where raw pixels would make a texture's bright and dark
  grains separate segments. ``target_window=0`` reconstructs the pixels themselves.
  Probes on textured-shapes (1,000 training images, ρ 0.5, width 16, test IoU with the
  median + border rule; details in BENCHMARKS.md): pixels 0.20-0.25, local statistics
  0.28 after 12 epochs.
- The observer G is an ``observer_size`` x ``observer_size`` convolution from the one
  segment channel to the target's channels. A segment map says where the regions are,
  not what colour they have, so each image's reconstruction is its mean target plus G *
  (segments − their mean), scaled per image and channel by the least-squares factor (a
  closed form, differentiated through): the segments must explain the image's structure,
  not the contrast of one image against another. Without the factor one G had to serve
  dark and bright, flat and busy images alike, and ε was still 0.92 on the test images
  after 8 epochs; with it, 0.34 after 4.

``forward(x) -> LOCOutput(field, segments, reconstruction)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LOCOutput(NamedTuple):
    field: Tensor  # (B, 1, H, W) s, real
    segments: Tensor  # (B, 1, H, W) round(s) (straight-through: its gradient is s's)
    target: Tensor  # (B, T, H, W) what is reconstructed: the pixels, or their local statistics
    reconstruction: Tensor  # (B, T, H, W) the observer's v̂ from round(s) and G


@dataclass
class LOCConfig:
    input_shape: tuple[int, int, int]  # (C, H, W) of one image; any size
    width: int = 32  # filters at full resolution; 2x and 4x at the two coarser scales
    observer_size: int = 3  # odd kernel size of the observer G
    target_window: int = 7  # odd; local mean and std over this window, 0 = the pixels


def block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution → batch normalisation → ReLU (appendix C's block)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


def round_ste(s: Tensor) -> Tensor:
    """round(s) in the forward pass, the identity in the backward pass."""
    return s + (torch.round(s) - s).detach()


class LOC(nn.Module):
    def __init__(self, config: LOCConfig):
        super().__init__()
        c, w, k = config.input_shape[0], config.width, config.observer_size
        t = config.target_window
        if w < 1 or k < 1 or k % 2 == 0 or t < 0 or (t and t % 2 == 0):
            raise ValueError(
                f"width must be >= 1, observer_size odd and target_window 0 or odd; got "
                f"{w}, {k}, {t}"
            )
        self.config = config
        self.scale1 = nn.Sequential(block(c, w), block(w, w))
        self.scale2 = nn.Sequential(block(w, 2 * w, stride=2), block(2 * w, 2 * w))
        self.scale4 = nn.Sequential(block(2 * w, 4 * w, stride=2), block(4 * w, 4 * w))
        self.up_half = block(4 * w + 2 * w, 2 * w)
        self.up_full = block(2 * w + w, w)
        self.to_field = nn.Conv2d(w, 1, 1)
        targets = 2 * c if t else c
        self.observer = nn.Conv2d(1, targets, k, padding=k // 2, bias=False)  # G of eq. 19

    def field(self, x: Tensor) -> Tensor:
        """The segment field s (B, 1, H, W)."""
        f1 = self.scale1(x)
        f2 = self.scale2(f1)
        f4 = self.scale4(f2)
        u2 = self.up_half(torch.cat([_up(f4, f2), f2], 1))
        u1 = self.up_full(torch.cat([_up(u2, f1), f1], 1))
        return self.to_field(u1)

    def forward(self, x: Tensor) -> LOCOutput:
        s = self.field(x)
        segments = round_ste(s)
        g = self.observer(segments - segments.mean((2, 3), keepdim=True))
        target = self.target(x)
        mean = target.mean((2, 3), keepdim=True)
        scale = ((target - mean) * g).sum((2, 3), keepdim=True)
        scale = scale / g.pow(2).sum((2, 3), keepdim=True).clamp_min(1e-6)  # least squares
        return LOCOutput(s, segments, target, mean + scale * g)

    def target(self, x: Tensor) -> Tensor:
        """What the observer reconstructs: x, or the local mean and standard deviation of
        every channel over ``target_window`` (B, 2C, H, W)."""
        w = self.config.target_window
        if not w:
            return x
        mean = F.avg_pool2d(x, w, 1, w // 2, count_include_pad=False)
        second = F.avg_pool2d(x * x, w, 1, w // 2, count_include_pad=False)
        return torch.cat([mean, (second - mean * mean).clamp_min(0).sqrt()], 1)


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)
