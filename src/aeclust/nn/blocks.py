"""Layers shared by the autoencoders of Liu & Zhang (fc, conv-pool, conv-nopool, alexnet, resnet).

The paper lists its layers for 3x50x50 (and 250x250) images. To build them for any image
size, every kernel is *fitted* to the map it slides over (:func:`fit`): a kernel wider than
the padded map is cut to it, so every layer gives at least one pixel, and kernel taps that
could only ever meet padding are dropped, which leaves the layer's function unchanged. A max
pooling fitted to one tap is the identity. On the sizes the paper used nothing is cut.

Decoders (:func:`up`) are the paper's transposed convolutions laid out backwards from the
image size: each one is the transpose of its fitted convolution over the map it restores,
with the ``output_padding`` that lands exactly on it (as conv.py does), so the output is
exactly (C, H, W) without any resizing. Leading layers that would start from a 1x1 map are
dropped; the caller makes the first map from the code.
"""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor, nn

Size = tuple[int, int]


def check_width(width: float) -> None:
    if isinstance(width, bool) or not isinstance(width, int | float) or not width > 0:
        raise ValueError(f"width must be a positive number; got {width!r}")


def scale(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1."""
    return max(1, round(channels * width))


def fit(n: int, k: int, s: int = 1, p: int = 0, trim: bool = True) -> tuple[int, int, int]:
    """(kernel, padding, output size) of a k-tap, stride-s, p-padded window over n pixels.

    The kernel is cut to the padded map when wider. With ``trim``, taps that only ever meet
    padding are dropped too (left padding shrinks with them; the output is the same).
    """
    k = min(k, n + 2 * p)
    out = (n + 2 * p - k) // s + 1
    first = max(0, p - (out - 1) * s)  # taps before this only meet the left padding
    last = min(k - 1, p + n - 1)  # taps after this only meet the right padding
    if not trim or first > last:  # (first > last: no tap meets a pixel, padding >= kernel)
        return k, p, out
    return last - first + 1, p - first, out


def conv(
    c_in: int, c_out: int, size: Size, k: int, s: int = 1, p: int = 0, *, trim: bool = True, **kw
) -> tuple[nn.Conv2d, Size]:
    """A Conv2d fitted to a ``size`` map, and the size of its output."""
    (kh, ph, h), (kw_, pw, w) = (fit(n, k, s, p, trim) for n in size)
    return nn.Conv2d(c_in, c_out, (kh, kw_), s, (ph, pw), **kw), (h, w)


def pool(size: Size, k: int, s: int, p: int = 0) -> tuple[nn.Module, Size]:
    """A MaxPool2d fitted to a ``size`` map (Identity when one tap is left), and its output size."""
    (kh, ph, h), (kw, pw, w) = (fit(n, k, s, p) for n in size)
    if (kh, kw) == (1, 1):
        return nn.Identity(), (h, w)
    return nn.MaxPool2d((kh, kw), s, (ph, pw)), (h, w)


def up(
    in_channels: int, specs: list[tuple[int, int, int, int]], size: Size
) -> tuple[list[nn.ConvTranspose2d], Size]:
    """Transposed convolutions ending exactly at ``size``, and the map size they start from.

    ``specs`` are the paper's layers in forward order, ``(out_channels, kernel, stride,
    padding)``, the first taking ``in_channels``. They are laid out from the last: each is
    the transpose of its conv fitted to the map it must restore; once the map to start
    from is 1x1, the layers before are dropped. The caller makes the first kept layer's
    input, ``layers[0].in_channels`` channels of the returned size, from the code.
    """
    if size == (1, 1):
        raise ValueError("1x1 images are too small for a convolutional decoder")
    ins = [in_channels, *(c for c, *_ in specs[:-1])]
    layers = []
    for c_in, (c_out, k, s, p) in zip(ins[::-1], specs[::-1], strict=True):
        if size == (1, 1):
            break
        (kh, ph, h), (kw, pw, w) = (fit(t, k, s, p) for t in size)
        pad_out = (size[0] + 2 * ph - kh - (h - 1) * s, size[1] + 2 * pw - kw - (w - 1) * s)
        layers.append(nn.ConvTranspose2d(c_in, c_out, (kh, kw), s, (ph, pw), pad_out))
        size = (h, w)
    return layers[::-1], size


def up_stack(layers: list[nn.ConvTranspose2d]) -> list[nn.Module]:
    """The layers with BatchNorm + ReLU after each but the last (a linear output)."""
    out: list[nn.Module] = []
    for layer in layers[:-1]:
        out += [layer, nn.BatchNorm2d(layer.out_channels), nn.ReLU()]
    return [*out, layers[-1]]


class AEOutput(NamedTuple):
    """What an autoencoder's ``forward`` returns: both, so that a loss reads them through
    ``forward`` (the one call DistributedDataParallel synchronises gradients for)."""

    code: Tensor  # (B, latent_dim)
    output: Tensor  # (B, C, H, W): the reconstruction, or its logits for a BCE loss


class EncoderDecoder(nn.Module):
    """Base of every autoencoder: ``encode(x) -> code``, ``decode(code) -> output`` and
    ``forward(x) -> AEOutput(code, output)``. By default ``self.encoder`` (images -> codes)
    and ``self.decoder`` (codes -> images), which subclasses build in ``__init__``."""

    def encode(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, latent_dim)
        return self.encoder(x)

    def decode(self, h: Tensor) -> Tensor:  # (B, latent_dim) -> (B, C, H, W)
        return self.decoder(h)

    def forward(self, x: Tensor) -> AEOutput:
        code = self.encode(x)
        return AEOutput(code, self.decode(code))
