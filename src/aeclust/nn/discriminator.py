"""A discriminator of latent codes, for Wasserstein autoencoders (WAE-GAN, Tolstikhin et
al. 2017; the HRWAE-GAN of Morais' thesis, one per latent group).

It scores a code (B, d) with one real number per sample (B,): how realistic it looks as a
sample of the prior. The hidden layers may use batch normalisation, as the thesis does
(section 3.1.4, after Radford et al. 2015); the estimators leave it off by default, because
an encoder can game a batch-normalised judge of codes through the batch statistics (see
:mod:`aeclust.nn.adversarial`). LeakyReLU keeps gradients flowing to the encoder where
ReLU would cut them. The score is linear: the relativistic losses
(:mod:`aeclust.losses.relativistic`) take differences of scores and apply the sigmoid.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn


@dataclass
class LatentDiscriminatorConfig:
    latent_dim: int  # d, the size of the codes it judges
    hidden: tuple[int, ...] = (512, 512)  # widths of the hidden layers
    batch_norm: bool = True  # after each hidden linear layer (thesis, section 3.1.4)
    negative_slope: float = 0.2  # of the LeakyReLU


class LatentDiscriminator(nn.Module):
    """``forward(z) -> scores``: codes (B, d) to one score per code (B,)."""

    def __init__(self, config: LatentDiscriminatorConfig):
        super().__init__()
        if config.latent_dim < 1 or any(w < 1 for w in config.hidden):
            raise ValueError(f"latent_dim and hidden widths must be >= 1; got {config}")
        self.config = config
        layers: list[nn.Module] = []
        width = config.latent_dim
        for out in config.hidden:
            layers.append(nn.Linear(width, out))
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(out))
            layers.append(nn.LeakyReLU(config.negative_slope))
            width = out
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:  # (B, d) -> (B,)
        return self.net(z).squeeze(1)
