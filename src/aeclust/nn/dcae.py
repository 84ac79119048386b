"""The convolutional autoencoder of the DCAE with embedded k-means (Alqahtani et al. 2018).

For 1x28x28 MNIST, section 3 of the paper gives::

    encoder: conv 9x9, 8 kernels -> conv 9x9, 4 kernels -> FC 250 -> FC 10 (the code h)
    decoder: FC 250 -> deconv 4 kernels 12x12 -> deconv 17x17 -> 28x28, sigmoid

Sizes, with stride 1 and no padding everywhere: 28 -9+1-> 20 -9+1-> 12, so the encoder's
feature maps are 4x12x12 = 576 values before FC 250. The decoder reads its 250 values as
250 channels of 1x1; a transposed convolution with a 12x12 kernel makes 4x12x12 (the
"4 kernels 12x12"), and one with a 17x17 kernel makes 12+17-1 = 28, the input size, with C
output channels (the paper's "4 kernels" there cannot give a 1-channel image; we read it
as the kernel size only).

Other sizes: both encoder kernels become round(9 * S / 28) (at least 1) for each side S,
so the 28 -> 12 shrinkage scales with the image; the decoder's kernels are then the
feature-map size (12 for 28) and S - that + 1 (17 for 28), which always restores S.

Choices where the paper is silent: ReLU after every hidden layer, a linear code, and a
linear last layer whose output is a logit (the sigmoid is applied inside the BCE loss,
which is the numerically stable form of the same thing). Weights use Xavier (Glorot)
uniform initialisation and biases 0, as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor, nn

from .blocks import EncoderDecoder


@dataclass
class DCAEConfig:
    input_shape: tuple[int, int, int]  # (C, H, W)
    latent_dim: int = 10  # the code h
    channels: tuple[int, int] = (8, 4)  # kernels of the two encoder convolutions
    hidden: int = 250  # the fully connected layer on both sides of the code
    kernel: int | None = None  # encoder kernel size; None = round(9 * size / 28)


def _kernel(size: int, kernel: int | None) -> int:
    k = kernel if kernel is not None else max(1, round(9 * size / 28))
    if 2 * (k - 1) >= size:
        raise ValueError(f"images of side {size} are too small for two {k}x{k} convolutions")
    return k


class DCAE(EncoderDecoder):
    """Alqahtani et al.'s DCAE; see the module docstring for the layer sizes."""

    def __init__(self, config: DCAEConfig):
        super().__init__()
        self.config = config
        c, h, w = config.input_shape
        kh, kw = _kernel(h, config.kernel), _kernel(w, config.kernel)
        c1, c2 = config.channels
        self.feature = (c2, h - 2 * (kh - 1), w - 2 * (kw - 1))  # (4, 12, 12) for 28x28
        self.encoder = nn.Sequential(
            nn.Conv2d(c, c1, (kh, kw)),
            nn.ReLU(),
            nn.Conv2d(c1, c2, (kh, kw)),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(math.prod(self.feature), config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.latent_dim),
        )
        fh, fw = self.feature[1:]
        self.decoder = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden),
            nn.ReLU(),
            nn.Unflatten(1, (config.hidden, 1, 1)),
            nn.ConvTranspose2d(config.hidden, c2, (fh, fw)),  # 1x1 -> 12x12
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c, (h - fh + 1, w - fw + 1)),  # 12x12 -> 28x28
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def encode(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, latent_dim)
        return self.encoder(x)

    def decode(self, h: Tensor) -> Tensor:  # (B, latent_dim) -> (B, C, H, W) logits
        return self.decoder(h)
