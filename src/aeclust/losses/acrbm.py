"""The ACRBM objective (one-stage autoencoders, section 2.1, eqs. 13-14).

Over a batch of hidden states h (B, K), rows softmax probabilities::

    u = hᵀh                                   (K, K)
    η_k = u_k / Σ_j u_kj                      eq. 13, row k of u normalised
    L = −(1/K) Σ_k log η_kk                   eq. 14

Because every row of h sums to 1, Σ_j u_kj = Σ_i h_ik (the soft size of cluster k), so
η_kk = Σ_i h_ik² / Σ_i h_ik: the share of cluster k's mass that is not shared with any
other cluster. L is 0 exactly when every sample is assigned to one cluster with certainty
(u diagonal, eq. 16's D), and a cluster whose little mass is spread thinly over samples
that belong elsewhere costs −log of that thin probability, so the optimum leaves no
cluster idle.
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12  # keeps the log finite for a cluster with no mass at all in a batch


def acrbm_loss(h: Tensor) -> Tensor:
    """Eq. 14 on hidden states ``h`` (B, K) whose rows sum to 1 (a softmax); a scalar."""
    u = h.T @ h  # (K, K), eq. 13's u
    eta = torch.diagonal(u) / u.sum(dim=1).clamp_min(EPS)  # (K,), diag of eq. 13's η
    return -torch.log(eta.clamp_min(EPS)).mean()
