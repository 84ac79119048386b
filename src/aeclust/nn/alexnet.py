"""Liu & Zhang's AlexNet autoencoder: an AlexNet encoder and a reversed AlexNet decoder.

The encoder's state-dict keys are torchvision's AlexNet keys (``features.0.weight`` ...
``classifier.6.bias``), so a local torchvision AlexNet weights file loads into
``model.encoder`` with :func:`aeclust.weights.load_encoder_weights` (the paper used a
pretrained AlexNet). Its ``classifier.6`` is ``latent_dim`` x 4096 where torchvision's is
1000 x 4096: load the ``features.*`` keys only, or set ``latent_dim=1000``.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .blocks import EncoderDecoder, check_width, conv, pool, scale, up, up_stack


@dataclass
class AlexNetConfig:
    input_shape: tuple[int, int, int]  # (C, H, W); the paper used 3x250x250
    latent_dim: int = 512  # the encoder's last Linear (torchvision's 1000 classes)
    fc_width: int = 4096  # the two hidden Linear layers on each side; 4096 = AlexNet
    width: float = 1.0  # multiplies the conv channels (64 192 384 256 256); 1.0 = AlexNet
    dropout: float = 0.5  # every Dropout, as in AlexNet and the paper


# Decoder after the Linear layers (256 channels), as (out_channels, kernel, stride, padding),
# each + BatchNorm + ReLU; the last makes the image's C channels and is linear.
DECODER = [(256, 3, 1, 1), (384, 4, 2, 1), (192, 4, 2, 2), (192, 6, 2, 1), (64, 6, 2, 1)]
DECODER += [(None, 4, 2, 2)]


class AlexNetEncoder(nn.Module):
    """torchvision's AlexNet layout (same submodule names), its kernels fitted to the input.

    Kernels are only cut where they are wider than the padded map (never trimmed further),
    so at width 1 every weight has torchvision's shape for any image of at least 7x7.
    """

    def __init__(self, config: AlexNetConfig):
        super().__init__()
        c, h, w = config.input_shape
        c1, c2, c3, c4, c5 = (scale(n, config.width) for n in (64, 192, 384, 256, 256))
        conv1, size = conv(c, c1, (h, w), 11, 4, 2, trim=False)
        pool1, size = pool(size, 3, 2)
        conv2, size = conv(c1, c2, size, 5, 1, 2, trim=False)
        pool2, size = pool(size, 3, 2)
        conv3, size = conv(c2, c3, size, 3, 1, 1, trim=False)
        conv4, size = conv(c3, c4, size, 3, 1, 1, trim=False)
        conv5, size = conv(c4, c5, size, 3, 1, 1, trim=False)
        pool3, self.size = pool(size, 3, 2)  # (6, 6) at 224x224, (1, 1) at 50x50
        relu = nn.ReLU
        self.features = nn.Sequential(
            conv1, relu(), pool1, conv2, relu(), pool2, conv3, relu(), conv4, relu(), conv5,
            relu(), pool3,
        )  # fmt: skip
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        fc, p = config.fc_width, config.dropout
        self.classifier = nn.Sequential(
            nn.Dropout(p), nn.Linear(c5 * 36, fc), nn.ReLU(),
            nn.Dropout(p), nn.Linear(fc, fc), nn.ReLU(),
            nn.Linear(fc, config.latent_dim),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, latent_dim)
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


class AlexNetAutoencoder(EncoderDecoder):
    """Liu & Zhang's AlexNet autoencoder (``alexnet``; F1 0.53 with k-means in the paper).

    Encoder, torchvision's AlexNet with ``latent_dim`` outputs; shapes for 3x50x50 and
    1x28x28 at width 1 (3x224x224: 55, 27, 27, 13, 13, 13, 13, 6)::

        features.0  conv 11x11 s4 p2 64, ReLU      50 -> 11      28 -> 6
        features.2  maxpool 3 s2                   11 -> 5        6 -> 2
        features.3  conv 5x5 p2 192, ReLU           5 -> 5        2 -> 2
        features.5  maxpool 3 s2                    5 -> 2        2 -> 1 (cut to 2)
        features.6/8/10  conv 3x3 p1 384/256/256    2 -> 2        1 -> 1
        features.12 maxpool 3 s2                    2 -> 1 (cut)  1 (identity)
        avgpool to 6x6 (copies of a 1x1 map), flatten 9216
        classifier: Dropout, Linear 9216 -> 4096, ReLU, Dropout, Linear 4096 -> 4096, ReLU,
                    Linear 4096 -> 512: the code (B, 512)

    Decoder, the classifier mirrored then transposed convs with BatchNorm + ReLU and no
    pooling (the paper's "reversed AlexNet")::

        ReLU, Dropout, Linear 512 -> 4096, ReLU, Dropout, Linear 4096 -> 4096, ReLU, Dropout,
        Linear 4096 -> 256 x the start map, BatchNorm, ReLU
        convT 3x3 p1 256       dropped at 50 and 28 (start map 1x1); 7x7 at 224, 8x8 at 250
        convT 4x4 s2 p1 384    50: 1 -> 3    28: 1 -> 2
        convT 4x4 s2 p2 192        3 -> 5        2 -> 2
        convT 6x6 s2 p1 192        5 -> 12       2 -> 6
        convT 6x6 s2 p1 64         12 -> 26      6 -> 15
        convT 4x4 s2 p2 C          26 -> 50      15 -> 28 (linear output)

    The paper starts the decoder from 256 x 6 x 6, which gives 186x186 for its 250x250
    images; here the last Linear makes the map the transposed convs need to land exactly
    on H x W (fitted kernels and output_padding as in blocks.py; layers that would start
    from a 1x1 map are dropped). The encoder adapts by fitting its kernels (a pooling on a
    1-pixel map is the identity); only 1x1 images are refused. The paper's final Sigmoid
    is folded into the loss: the output is linear (BCE applies it to the logits).
    """

    def __init__(self, config: AlexNetConfig):
        super().__init__()
        check_width(config.width)
        if config.fc_width < 1 or not 0 <= config.dropout < 1:
            raise ValueError("fc_width must be at least 1 and dropout in [0, 1)")
        self.config = config
        c, h, w = config.input_shape
        self.encoder = AlexNetEncoder(config)

        specs = [(c if o is None else scale(o, config.width), k, s, p) for o, k, s, p in DECODER]
        ups, self.start = up(scale(256, config.width), specs, (h, w))
        c0 = ups[0].in_channels
        fc, p = config.fc_width, config.dropout
        classifier = nn.Sequential(
            nn.ReLU(), nn.Dropout(p), nn.Linear(config.latent_dim, fc),
            nn.ReLU(), nn.Dropout(p), nn.Linear(fc, fc),
            nn.ReLU(), nn.Dropout(p), nn.Linear(fc, c0 * self.start[0] * self.start[1]),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            OrderedDict(
                classifier=classifier,
                unflatten=nn.Unflatten(1, (c0, *self.start)),
                features=nn.Sequential(nn.BatchNorm2d(c0), nn.ReLU(), *up_stack(ups)),
            )
        )
