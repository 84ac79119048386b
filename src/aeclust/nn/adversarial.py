"""A generator and one latent discriminator per latent group, held as one module so that
the trainer keeps one state (and DistributedDataParallel one gradient sync) for both.

The generator is an :class:`~aeclust.nn.HRWAE` (any module with ``forward(x)`` returning
``.codes`` and ``.priors``, and ``latents(x) -> (codes, priors)``). Group 0's prior is
N(0, I); group l's is the Gaussian p(z_l | z_<l) whose parameters the generator's prior
cells compute. ``forward(x, part)`` returns the generator's output (None for the
discriminator's part) and each group's discriminator scores of prior samples ("real") and
of the encoder's codes ("fake"):

- ``part="generator"``: everything with gradients, for the autoencoder's update;
- ``part="discriminator"``: the codes and prior samples computed without gradients, so that
  only the discriminators learn from it, and without decoding any image.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn


class AdversarialPass(NamedTuple):
    generated: object  # the generator's output (HRWAEOutput), None for part="discriminator"
    d_real: list[Tensor]  # L x (B,) scores of prior samples
    d_fake: list[Tensor]  # L x (B,) scores of the encoder's codes


def prior_samples(codes: list[Tensor], priors: list[tuple[Tensor, Tensor]]) -> list[Tensor]:
    """One prior sample per code: z_0 ~ N(0, I), z_l ~ N(mu_l, sigma_l²) (torch's RNG)."""
    reals = [torch.randn_like(codes[0])]
    for mu, log_sigma in priors:
        reals.append(mu + log_sigma.exp() * torch.randn_like(mu))
    return reals


class AdversarialAE(nn.Module):
    unused_parameters = True  # each part uses only some parameters (for DDP)

    def __init__(self, generator: nn.Module, discriminators: list[nn.Module]):
        super().__init__()
        self.generator = generator
        self.discriminators = nn.ModuleList(discriminators)

    def forward(self, x: Tensor, part: str = "generator") -> AdversarialPass:
        if part == "generator":
            out = self.generator(x)
            codes, priors = out.codes, out.priors
        elif part == "discriminator":
            out = None
            with torch.no_grad():
                codes, priors = self.generator.latents(x)
        else:
            raise ValueError(f"part must be 'generator' or 'discriminator'; got {part!r}")
        reals = prior_samples(codes, priors)
        d_real = [d(r) for d, r in zip(self.discriminators, reals, strict=True)]
        d_fake = [d(z) for d, z in zip(self.discriminators, codes, strict=True)]
        return AdversarialPass(out, d_real, d_fake)
