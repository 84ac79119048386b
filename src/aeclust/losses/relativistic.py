"""The relativistic adversarial losses of a latent discriminator (Morais, HRWAE-GAN thesis,
section 3.1.1, after Jolicoeur-Martineau 2018), for Wasserstein autoencoders whose
discriminator judges codes: ``z`` drawn from the prior p_z (real) against the encoder's
codes ``ẑ`` ~ q_x(z) (fake).

    L_D = E_(z, ẑ) [ −log f(D(z) − D(ẑ)) ]      (eq. 3.3)
    L_G = E_(z, ẑ) [ −log f(D(ẑ) − D(z)) ]      (eq. 3.4)

with f the sigmoid. The discriminator learns how much more realistic a prior sample is
than a code; the encoder (the generator) learns the opposite. With L latent groups, each
with its own discriminator, both are sums weighted by decreasing α_l (eqs. 3.5, 3.6).

Pairs are formed sample by sample: the i-th prior sample with the i-th code of the batch.
``−log sigmoid(t)`` is computed as ``softplus(−t)``, which is exact and cannot overflow.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor


def relativistic_d_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Eq. 3.3: the discriminator's loss from its scores (B,) or (B, 1) of prior samples
    (``d_real``) and of codes (``d_fake``); a mean over the B pairs."""
    return F.softplus(-(d_real - d_fake)).mean()


def relativistic_g_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """Eq. 3.4: the encoder's (generator's) loss from the same scores."""
    return F.softplus(-(d_fake - d_real)).mean()


def hierarchical_losses(
    d_reals: Sequence[Tensor], d_fakes: Sequence[Tensor], alphas: Sequence[float]
) -> tuple[Tensor, Tensor]:
    """Eqs. 3.5 and 3.6: (L_D, L_G) summed over the latent groups l, weighted by α_l;
    ``d_reals[l]`` and ``d_fakes[l]`` are the scores of group l's discriminator."""
    if not len(d_reals) == len(d_fakes) == len(alphas) > 0:
        raise ValueError("one (real, fake, alpha) triple per latent group is needed")
    pairs = list(zip(d_reals, d_fakes, alphas, strict=True))
    d_loss = sum(a * relativistic_d_loss(r, f) for r, f, a in pairs)
    g_loss = sum(a * relativistic_g_loss(r, f) for r, f, a in pairs)
    return d_loss, g_loss
