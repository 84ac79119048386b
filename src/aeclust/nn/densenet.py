"""DenseNet-BC image classifier, the supervised baseline of Liu & Zhang (sections 3.4, 5.2.1).

Huang, Liu, van der Maaten & Weinberger (2017), "Densely connected convolutional networks":
inside a dense block every layer receives the feature maps of all earlier layers
(concatenated) and adds ``growth_rate`` new ones; transition layers between blocks halve
the channels ("C", compression) and the map size. "B" is the 1x1 bottleneck before each
3x3 convolution. This is a classifier, not an autoencoder, so it is not registered in
:data:`aeclust.nn.AUTOENCODERS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class DenseNetConfig:
    input_shape: tuple[int, int, int]  # (C, H, W) of one image; C = 1 or 3 (any C works)
    n_classes: int  # outputs of the final linear layer (the logits)
    n_blocks: int = 5  # dense blocks; Liu & Zhang use five
    layers_per_block: int = 4  # small for CPUs and 2-class 50x50 patches; Huang et al.: 6-48
    growth_rate: int = 12  # k, channels each layer adds (DenseNet-BC on CIFAR uses 12)
    bottleneck: int = 4  # the 1x1 conv before each 3x3 has bottleneck * k channels; 0 = none
    compression: float = 0.5  # share of the channels a transition keeps
    drop_rate: float = 0.0  # dropout after each 3x3 conv (Huang et al.: 0.2 without augmentation)


def pool_kernel(size: tuple[int, int]) -> tuple[int, int]:
    """Average-pool kernel of a transition: 2 along a side of at least 4 pixels, else 1.

    So pooling never makes a side smaller than 2 (a side of 2 or 3 stays as it is).
    """
    return tuple(2 if s >= 4 else 1 for s in size)


class DenseLayer(nn.Module):
    """BN-ReLU-1x1 conv (bottleneck * k) - BN-ReLU-3x3 conv (k): k new feature maps."""

    def __init__(self, c_in: int, growth_rate: int, bottleneck: int, drop_rate: float):
        super().__init__()
        layers: list[nn.Module] = []
        if bottleneck:
            width = bottleneck * growth_rate
            layers += [nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, width, 1, bias=False)]
            c_in = width
        layers += [
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, growth_rate, 3, padding=1, bias=False),
        ]
        if drop_rate > 0:
            layers.append(nn.Dropout(drop_rate))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:  # (B, c_in, H, W) -> (B, k, H, W)
        return self.layers(x)


class DenseBlock(nn.Module):
    """``n_layers`` dense layers, each fed the concatenation of the input and all before it."""

    def __init__(self, c_in: int, n_layers: int, growth_rate: int, bottleneck: int, drop: float):
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(c_in + i * growth_rate, growth_rate, bottleneck, drop)
            for i in range(n_layers)
        )
        self.out_channels = c_in + n_layers * growth_rate

    def forward(self, x: Tensor) -> Tensor:  # (B, c_in, H, W) -> (B, c_in + L * k, H, W)
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


class DenseNet(nn.Module):
    """Stem conv -> dense blocks with transitions between them -> BN-ReLU -> pool -> linear.

    The stem is a 3x3 convolution to ``2 * growth_rate`` channels (DenseNet-BC for small
    images: no stride, no max-pool). A transition is BN-ReLU-1x1 conv to
    ``compression`` x the channels, then a 2x2 average pool.

    Any input size and channel count works: a transition pools a side only while it has
    at least 4 pixels (a side of 2 or 3 is left as it is; a 2x1 or 1x2 pool is used when
    only one side is large enough), so pooling never takes a side below 2. The 3x3
    convolutions then always see neighbours, not only padding, and batch norm in training
    gets more than one value per channel even from a last mini-batch of a single image
    (a 1x1 map would make that batch fail). Map sizes of the five blocks (``map_sizes``):

    - 50x50: 50 -> 25 -> 12 -> 6 -> 3
    - 28x28: 28 -> 14 -> 7 -> 3 -> 3 (the last transition does not pool)
    - 8x8: 8 -> 4 -> 2 -> 2 -> 2
    - flat vectors as 1xD images: the height stays 1, the width halves while >= 4

    With the defaults (5 blocks of 4 layers, k = 12) the channels are 24 after the stem and
    72 -> 36, 84 -> 42, 90 -> 45, 93 -> 46, 94 after the blocks and transitions: 94 features.
    """

    def __init__(self, config: DenseNetConfig):
        super().__init__()
        self.config = config
        for name in ("n_classes", "n_blocks", "layers_per_block", "growth_rate"):
            value = getattr(config, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if not 0 < config.compression <= 1 or not 0 <= config.drop_rate < 1:
            raise ValueError("need 0 < compression <= 1 and 0 <= drop_rate < 1")
        c, h, w = config.input_shape
        k = config.growth_rate
        self.stem = nn.Conv2d(c, 2 * k, 3, padding=1, bias=False)
        channels, size = 2 * k, (h, w)
        self.map_sizes: list[tuple[int, int]] = []  # (H, W) inside each dense block
        stages: list[nn.Module] = []
        for i in range(config.n_blocks):
            block = DenseBlock(
                channels, config.layers_per_block, k, config.bottleneck, config.drop_rate
            )
            stages.append(block)
            channels = block.out_channels
            self.map_sizes.append(size)
            if i < config.n_blocks - 1:  # a transition between two blocks
                c_out = max(1, int(channels * config.compression))
                kernel = pool_kernel(size)
                stages += [
                    nn.BatchNorm2d(channels),
                    nn.ReLU(),
                    nn.Conv2d(channels, c_out, 1, bias=False),
                ]
                if kernel != (1, 1):
                    stages.append(nn.AvgPool2d(kernel))
                channels, size = c_out, (size[0] // kernel[0], size[1] // kernel[1])
        self.stages = nn.Sequential(*stages, nn.BatchNorm2d(channels), nn.ReLU())
        self.n_features = channels  # F, the width of features(x)
        self.classifier = nn.Linear(channels, config.n_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def features(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, F)
        """The globally average-pooled feature maps after the last block."""
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, n_classes) logits
        return self.classifier(self.features(x))
