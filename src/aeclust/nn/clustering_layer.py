"""DEC's clustering layer: trainable cluster centres in the latent space."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..losses.dec import soft_assignment


class ClusteringLayer(nn.Module):
    """Holds K trainable centres (K, d); ``forward(z)`` is the Student's t soft assignment
    q (B, K) of codes ``z`` (B, d) with ``alpha`` degrees of freedom (DEC, eq. 1)."""

    def __init__(self, centers: Tensor, alpha: float = 1.0):
        super().__init__()
        self.centers = nn.Parameter(torch.as_tensor(centers, dtype=torch.float32).clone())
        self.alpha = alpha

    def forward(self, z: Tensor) -> Tensor:
        return soft_assignment(z, self.centers, self.alpha)
