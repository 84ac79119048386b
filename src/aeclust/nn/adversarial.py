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
  only the discriminators learn from it, and without decoding any image; the generator's
  batch-normalisation statistics are left as they are (momentum 0 for that pass), so that
  m discriminator updates do not weigh each batch m + 1 times in them.

Batch normalisation in the discriminators (thesis, section 3.1.4) needs care twice:

- In the discriminators' updates each scores the prior samples and the codes in one batch
  (concatenated): two separate batches would each be normalised by their own mean and
  scale, and a discriminator could not see that the codes sit elsewhere or spread wider
  than the prior.
- In the generator's updates the discriminators use their running statistics (eval
  mode): with the batch's statistics the encoder could lower the prior samples' scores by
  moving its codes, which shift the shared normalisation; measured on mnist5k, it then
  "won" with codes of mean 2.4 that the discriminator scored as more real than N(0, I).
"""

from __future__ import annotations

from contextlib import contextmanager
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


@contextmanager
def eval_mode(module: nn.Module):
    """``module`` in eval mode inside the block, then back in the mode it was in."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@contextmanager
def frozen_batch_norm(module: nn.Module):
    """Batch-norm layers of ``module`` normalise with the batch's statistics (in training
    mode) but leave their running statistics unchanged."""
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.num_batches_tracked.clone()) for m in layers if m.track_running_stats]
    tracked = [m for m in layers if m.track_running_stats]
    for m in tracked:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, count) in zip(tracked, saved, strict=True):
            m.momentum = momentum
            m.num_batches_tracked.copy_(count)


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
            with eval_mode(self.discriminators):  # running statistics: see the module
                return self._score(out, codes, priors)
        elif part == "discriminator":
            out = None
            with torch.no_grad(), frozen_batch_norm(self.generator):
                codes, priors = self.generator.latents(x)
        else:
            raise ValueError(f"part must be 'generator' or 'discriminator'; got {part!r}")
        return self._score(out, codes, priors)

    def _score(self, out, codes, priors) -> AdversarialPass:
        reals = prior_samples(codes, priors)
        d_real, d_fake = [], []
        for d, real, fake in zip(self.discriminators, reals, codes, strict=True):
            # one batch of both: batch normalisation of separate batches would take each
            # set's own mean and scale away, and with them what tells the two apart
            scores = d(torch.cat([real, fake]))
            d_real.append(scores[: len(real)])
            d_fake.append(scores[len(real) :])
        return AdversarialPass(out, d_real, d_fake)
