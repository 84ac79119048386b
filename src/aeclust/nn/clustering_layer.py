"""DEC's clustering layer: trainable cluster centres in the latent space, and the Student's t
soft assignment it computes (Xie et al. 2016, eq. 1)::

    q_ij = (1 + ‖z_i − μ_j‖² / α)^(−(α+1)/2) / Σ_j' (...)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def soft_assignment(z: Tensor, centers: Tensor, alpha: float = 1.0) -> Tensor:
    """Student's t similarity of codes ``z`` (B, d) to ``centers`` (K, d): rows sum to 1, (B, K)."""
    dist2 = torch.cdist(z, centers).pow(2)  # (B, K)
    q = (1.0 + dist2 / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


class ClusteringLayer(nn.Module):
    """Holds K trainable centres (K, d); ``forward(z)`` is the Student's t soft assignment
    q (B, K) of codes ``z`` (B, d) with ``alpha`` degrees of freedom (DEC, eq. 1)."""

    def __init__(self, centers: Tensor, alpha: float = 1.0):
        super().__init__()
        self.centers = nn.Parameter(torch.as_tensor(centers, dtype=torch.float32).clone())
        self.alpha = alpha

    def forward(self, z: Tensor) -> Tensor:
        return soft_assignment(z, self.centers, self.alpha)
