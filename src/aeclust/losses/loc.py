"""The LOC objective (one-stage autoencoders, section 2.2, eqs. 20-22).

For each image v (C, H, W) and the observer's view of it v̂ = K(s, G) (eq. 19)::

    ε = (1/k) Σ_i (v_i − v̂_i)² / Var(v)       eq. 20, k = C·H·W pixels of one image
    G_loss = ε if ε > ρ, else 0                eq. 21
    min mean over the batch of G_loss          eq. 22

Eq. 20 as printed has a minus sign in front of the mean, which would make ε ≤ 0 and the
loss of eq. 21 zero for every ρ > 0 (the paper's ρ is 0.5): we read it as the mean squared
error. The paper does not say on what scale ρ = 0.5 is measured; a raw MSE of 0.5 on
[0, 1] images is never reached by anything, so we divide each image's error by that
image's own variance (about its mean colour): ε is the share of the image's variance the
segments leave unexplained, ρ = 0.5 asks them to explain half of it, and the same ρ means
the same on a dark or a bright, a flat or a busy image. Below ρ an image contributes no
gradient: the bound is what stops the segments from multiplying once they explain enough
(the paper's "perturbation lower bound"). v is what :class:`aeclust.nn.loc.LOC`
reconstructs: the pixels, or their local statistics.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-6  # variance floor: a flat image is explained by its mean, not divided by zero


def relative_error(v: Tensor, v_hat: Tensor) -> Tensor:
    """Eq. 20 per image (B,): the mean squared error over its pixels and channels, divided
    by the same mean for the image's per-channel mean colour (its variance), so 1 is what
    one flat colour leaves."""
    err = (v - v_hat).pow(2).flatten(1).mean(1)
    var = (v - v.mean((2, 3), keepdim=True)).pow(2).flatten(1).mean(1)
    return err / var.clamp_min(EPS)


def loc_loss(v: Tensor, v_hat: Tensor, rho: float) -> Tensor:
    """Eqs. 20-22: the batch mean of ε where ε > ``rho``, 0 elsewhere; a scalar."""
    eps = relative_error(v, v_hat)
    return torch.where(eps > rho, eps, torch.zeros_like(eps)).mean()
