"""Liu & Zhang's residual CNN autoencoder (section 3.2.1, appendix 8.1 "Residual CNN Autoencoder").

The encoder has two residual blocks: a conv path and a strided-conv identity path, summed
(eq. 7). The decoder has no residual connections (section 3.2.1; the appendix's listing shows
identity paths in the decoder too, we follow the text).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import Tensor, nn

from .blocks import EncoderDecoder, Size, check_width, conv, pool, scale, up


@dataclass
class ResNetConfig:
    input_shape: tuple[int, int, int]  # (C, H, W); the paper used 3x256x256 (text: 250x250)
    latent_dim: int = 256  # the encoder's last Linear: the code
    width: float = 1.0  # multiplies the conv channels (64 160 256 384 512); 1.0 = the paper
    dropout: float = 0.5  # every Dropout, as in the paper


# Decoder as (out_channels, kernel, stride, padding, what follows): "drop" = ReLU + Dropout,
# "bn" = BatchNorm + ReLU (inside the paper's reversed blocks). The first takes 256 channels
# (the last Linear's output); the last makes the image's C channels and is linear.
DECODER = [(512, 4, 2, 1, "drop"), (512, 4, 2, 1, "drop")]
DECODER += [(384, 7, 1, 3, "bn"), (256, 7, 1, 3, "bn"), (256, 4, 2, 1, "drop")]  # block 2
DECODER += [(256, 4, 2, 1, "drop")]
DECODER += [(160, 5, 1, 2, "bn"), (64, 5, 1, 2, "bn"), (64, 4, 2, 1, "drop")]  # block 1
DECODER += [(None, 6, 2, 2, None)]


class ResBlock(nn.Module):
    """``conv_path(x) + identity_path(x)``; both end in a 4x4 stride-2 conv, so shapes match.

    conv_path: conv k (c_in -> mid), BN, ReLU, conv k (mid -> c_out), BN, ReLU, conv 4x4 s2 p1.
    """

    def __init__(self, c_in: int, mid: int, c_out: int, k: int, size: Size):
        super().__init__()
        a, _ = conv(c_in, mid, size, k, 1, k // 2)  # "same" convs
        b, _ = conv(mid, c_out, size, k, 1, k // 2)
        down, self.size = conv(c_out, c_out, size, 4, 2, 1)
        self.conv_path = nn.Sequential(
            a, nn.BatchNorm2d(mid), nn.ReLU(), b, nn.BatchNorm2d(c_out), nn.ReLU(), down
        )
        self.identity_path, _ = conv(c_in, c_out, size, 4, 2, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_path(x) + self.identity_path(x)


class ResNetAutoencoder(EncoderDecoder):
    """Liu & Zhang's ResNet autoencoder (``resnet``; F1 0.515 with k-means in the paper).

    Encoder; shapes for 3x256x256 (the paper's listing), 3x50x50 and 1x28x28, width 1::

        conv 6x6 s2 p2 64 (no bias), BN, ReLU       256 -> 128    50 -> 25    28 -> 14
        maxpool 4 s2 p1                             128 -> 64     25 -> 12    14 -> 7
        ResBlock 5x5 64 -> 160 -> 256, 4x4 s2 p1     64 -> 32     12 -> 6      7 -> 3
        BN, ReLU, maxpool 4 s2 p1                    32 -> 16      6 -> 3      3 -> 1
        ResBlock 7x7 256 -> 384 -> 512, 4x4 s2 p1    16 -> 8       3 -> 1      1 -> 1
        BN, ReLU, maxpool 4 s2 p1                     8 -> 4       1 (identity) 1 (identity)
        conv 4x4 s2 p1 512, BN, ReLU                  4 -> 2       1 -> 1      1 -> 1
        global max pool (the paper's maxpool 2 on 2x2), flatten 512
        Dropout, Linear 512 -> 256, BatchNorm, ReLU, Linear 256 -> 256: the code (B, 256)

    Decoder, without residual connections::

        BatchNorm, ReLU, Linear 256 -> 256, ReLU, Dropout,
        Linear 256 -> start channels x start map (4096 = 256 x 4 x 4 at 256x256), BN, ReLU,
        Dropout; then transposed convs, each + ReLU + Dropout, or + BN + ReLU inside the
        former blocks:
        convT 4x4 s2 p1 512; convT 4x4 s2 p1 512;
        [convT 7x7 p3 384, BN, ReLU, convT 7x7 p3 256, BN, ReLU, convT 4x4 s2 p1 256];
        convT 4x4 s2 p1 256;
        [convT 5x5 p2 160, BN, ReLU, convT 5x5 p2 64, BN, ReLU, convT 4x4 s2 p1 64];
        convT 6x6 s2 p2 C (linear output)
        256: start 256 x 4 x 4, then 8 16 16 16 32 64 64 64 128 256
        50: start 512 x 1 x 1 (the first convT dropped), then 3 3 3 6 12 12 12 25 50
        28: start 256 x 1 x 1 (block 2's 7x7 convs and before dropped), then 3 7 7 7 14 28

    Other sizes adapt as in blocks.py (fitted kernels, so a pooling on a 1-pixel map is
    skipped and 7x7 convs on a 1x1 map become 1x1; trailing decoder layers with exact
    output_padding, the last Linear making the map they start from). Only 1x1 images are
    refused. The paper's final Sigmoid is folded into the loss: the output is linear (BCE
    applies it to the logits).
    """

    def __init__(self, config: ResNetConfig):
        super().__init__()
        check_width(config.width)
        if not 0 <= config.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {config.dropout!r}")
        self.config = config
        c, h, w = config.input_shape
        c1, c2, c3, c4, c5 = (scale(n, config.width) for n in (64, 160, 256, 384, 512))
        latent, p = config.latent_dim, config.dropout

        conv1, size = conv(c, c1, (h, w), 6, 2, 2, bias=False)
        pool1, size = pool(size, 4, 2, 1)
        block1 = ResBlock(c1, c2, c3, 5, size)
        pool2, size = pool(block1.size, 4, 2, 1)
        block2 = ResBlock(c3, c4, c5, 7, size)
        pool3, size = pool(block2.size, 4, 2, 1)
        conv2, size = conv(c5, c5, size, 4, 2, 1)
        self.encoder = nn.Sequential(
            OrderedDict(
                features=nn.Sequential(
                    conv1, nn.BatchNorm2d(c1), nn.ReLU(), pool1,
                    block1, nn.BatchNorm2d(c3), nn.ReLU(), pool2,
                    block2, nn.BatchNorm2d(c5), nn.ReLU(), pool3,
                    conv2, nn.BatchNorm2d(c5), nn.ReLU(),
                    nn.AdaptiveMaxPool2d(1), nn.Flatten(),
                ),
                classifier=nn.Sequential(
                    nn.Dropout(p), nn.Linear(c5, 256), nn.BatchNorm1d(256), nn.ReLU(),
                    nn.Linear(256, latent),
                ),
            )
        )  # fmt: skip

        specs = [(c if o is None else scale(o, config.width), *ksp) for o, *ksp, _ in DECODER]
        ups, self.start = up(c3, specs, (h, w))  # c3 x (4, 4) at 256x256, (1, 1) at 50x50
        c0 = ups[0].in_channels
        features: list[nn.Module] = []
        kinds = [kind for *_, kind in DECODER[len(DECODER) - len(ups) : -1]]
        for layer, kind in zip(ups[:-1], kinds, strict=True):
            features.append(layer)
            if kind == "bn":
                features += [nn.BatchNorm2d(layer.out_channels), nn.ReLU()]
            else:
                features += [nn.ReLU(), nn.Dropout(p)]
        n0 = c0 * self.start[0] * self.start[1]
        self.decoder = nn.Sequential(
            OrderedDict(
                classifier=nn.Sequential(
                    nn.BatchNorm1d(latent), nn.ReLU(), nn.Linear(latent, 256), nn.ReLU(),
                    nn.Dropout(p), nn.Linear(256, n0), nn.BatchNorm1d(n0), nn.ReLU(),
                    nn.Dropout(p),
                ),
                unflatten=nn.Unflatten(1, (c0, *self.start)),
                features=nn.Sequential(*features, ups[-1]),
            )
        )  # fmt: skip
