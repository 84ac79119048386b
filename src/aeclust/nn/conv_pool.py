"""The two convolutional autoencoders of Liu & Zhang (appendix 8.1), with and without pooling.

"Base CNN Autoencoders" (``conv-pool``) and "Base CNN Autoencoders (maxpool removed)"
(``conv-nopool``) share one decoder: a transposed conv from the 1x1 code, then five
stride-2 transposed convs with BatchNorm + ReLU. Their encoders end in a conv whose kernel
spans the whole remaining map, so the code is a 1x1 map of ``latent_dim`` channels, flattened.
The paper's final Sigmoid is folded into the loss: the output is linear (a logit for BCE,
compared directly by MSE). See blocks.py for how layers adapt to other image sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .blocks import EncoderDecoder, check_width, conv, pool, scale, up, up_stack


@dataclass
class ConvPoolConfig:
    input_shape: tuple[int, int, int]  # (C, H, W); the paper used 3x50x50
    latent_dim: int = 256  # channels of the last conv, which spans its whole map: the code
    width: float = 1.0  # multiplies every conv channel count but the code's; 1.0 = the paper


@dataclass
class ConvNoPoolConfig:
    input_shape: tuple[int, int, int]  # (C, H, W); the paper used 3x50x50
    latent_dim: int = 192  # channels of the last conv, which spans its whole map: the code
    width: float = 1.0  # multiplies every conv channel count but the code's; 1.0 = the paper


# Encoder convs as (out_channels, kernel, stride, padding), each + BatchNorm + ReLU;
# "pool" is MaxPool2d(2). A conv spanning the remaining map + BatchNorm (the code) follows.
POOL_ENCODER = [(128, 3, 1, 0), "pool", (256, 5, 1, 1), "pool", (512, 4, 1, 1), "pool"]
POOL_ENCODER += [(256, 3, 2, 2), "pool"]  # the paper's last conv: 2x2 kernel on a 2x2 map
NOPOOL_ENCODER = [(128, 4, 1, 1), (256, 5, 2, 1), (512, 4, 2, 0), (256, 5, 2, 0)]
# the paper's last conv here: 4x4 kernel, stride 2, on a 4x4 map

# Decoder after the first transposed conv (256 channels made from the code), as
# (out_channels, kernel, stride, padding), each + BatchNorm + ReLU; the last makes C channels.
DECODER = [(512, 3, 2, 1), (256, 4, 2, 1), (256, 4, 2, 1), (128, 5, 2, 1), (None, 4, 2, 1)]


class ConvPoolAutoencoder(EncoderDecoder):
    """Liu & Zhang's "Base CNN Autoencoder" (``conv-pool``; F1 0.623 with k-means in the paper).

    Shapes for 3x50x50 (the paper) and 1x28x28, width 1, latent_dim 256::

        conv 3x3 128, BN, ReLU, maxpool 2     50 -> 48 -> 24     28 -> 26 -> 13
        conv 5x5 p1 256, BN, ReLU, maxpool 2  24 -> 22 -> 11     13 -> 11 -> 5
        conv 4x4 p1 512, BN, ReLU, maxpool 2  11 -> 10 -> 5       5 -> 4 -> 2
        conv 3x3 s2 p2 256, BN, ReLU, maxpool  5 -> 4 -> 2        2 -> 2 -> 1
        conv spanning the map 256, BN          2x2 kernel -> 1    1x1 kernel -> 1
        code (B, 256)
        ReLU, convT from the code, BN, ReLU    1 -> 2: 2x2 kernel  1 -> 1: 1x1 kernel, 512 ch
        convT 3x3 s2 p1 512, BN, ReLU          2 -> 3             dropped (map already 1x1)
        convT 4x4 s2 p1 256, BN, ReLU          3 -> 6             1 -> 3 (fitted: 3x3 p0)
        convT 4x4 s2 p1 256, BN, ReLU          6 -> 12            3 -> 6
        convT 5x5 s2 p1 128, BN, ReLU          12 -> 25           6 -> 14 (output_padding 1)
        convT 4x4 s2 p1 C (linear output)      25 -> 50           14 -> 28

    The paper's first transposed conv is 4x4 with padding 1 on the 1x1 code; the padding
    crops all but its central 2x2, so a 2x2 kernel is the same layer.

    Other sizes: each kernel is fitted to its map (blocks.fit), so a pooling on a 1-pixel
    side is skipped and a kernel wider than its padded map is cut (8x8: 6, 3, 1, 1, 2, 1).
    The last conv's kernel is the whole remaining map (2x2 at 50, 3x3 at 100), so the code
    is always (B, latent_dim). The decoder keeps the trailing transposed convs the image
    size needs, with exact sizes from output_padding (no resizing); the first one grows the
    1x1 code to the map they start from. Only 1x1 images are refused. The paper's final
    Sigmoid is folded into the loss: the output is linear (BCE applies it to the logits).
    """

    encoder_layers: list = POOL_ENCODER

    def __init__(self, config: ConvPoolConfig | ConvNoPoolConfig):
        super().__init__()
        check_width(config.width)
        self.config = config
        c, h, w = config.input_shape
        latent = config.latent_dim
        size, ch, layers = (h, w), c, []
        for spec in self.encoder_layers:
            if spec == "pool":
                layer, size = pool(size, 2, 2)
                layers.append(layer)
                continue
            c_out, k, s, p = spec
            c_out = scale(c_out, config.width)
            layer, size = conv(ch, c_out, size, k, s, p)
            layers += [layer, nn.BatchNorm2d(c_out), nn.ReLU()]
            ch = c_out
        self.code_kernel = size  # the last conv spans this map: (2, 2) for 3x50x50
        layers += [nn.Conv2d(ch, latent, size), nn.BatchNorm2d(latent), nn.Flatten()]
        self.encoder = nn.Sequential(*layers)

        specs = [(c if o is None else scale(o, config.width), k, s, p) for o, k, s, p in DECODER]
        ups, self.start = up(scale(256, config.width), specs, (h, w))
        first = nn.ConvTranspose2d(latent, ups[0].in_channels, self.start)
        self.decoder = nn.Sequential(
            nn.Unflatten(1, (latent, 1, 1)),
            nn.ReLU(),
            *up_stack([first, *ups]),
        )


class ConvNoPoolAutoencoder(ConvPoolAutoencoder):
    """Liu & Zhang's CNN autoencoder with max-pooling removed (``conv-nopool``; their best,
    F1 0.651): strided convs instead, a 192-channel code, the same decoder as ``conv-pool``.

    Shapes for 3x50x50 (the paper) and 1x28x28, width 1, latent_dim 192::

        conv 4x4 p1 128, BN, ReLU        50 -> 49        28 -> 27
        conv 5x5 s2 p1 256, BN, ReLU     49 -> 24        27 -> 13
        conv 4x4 s2 512, BN, ReLU        24 -> 11        13 -> 5
        conv 5x5 s2 256, BN, ReLU        11 -> 4          5 -> 1
        conv spanning the map 192, BN    4x4 kernel -> 1  1x1 kernel -> 1
        code (B, 192); decoder as in ConvPoolAutoencoder (50: 1 2 3 6 12 25 50; 28: 1 3 6 14 28)

    Other sizes adapt as in ConvPoolAutoencoder (fitted kernels, a last conv spanning its
    map, trailing decoder layers with exact output_padding). The paper's final Sigmoid is
    folded into the loss: the output is linear.
    """

    encoder_layers = NOPOOL_ENCODER
