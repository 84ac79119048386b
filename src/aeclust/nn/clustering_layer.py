"""DEC's clustering layer: trainable cluster centres in the latent space, and the Student's t
soft assignment it computes (Xie et al. 2016, eq. 1)::

    q_ij = (1 + ‖z_i − μ_j‖² / α)^(−(α+1)/2) / Σ_j' (...)
"""

from __future__ import annotations

from typing import NamedTuple

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


class ClusteringOutput(NamedTuple):
    code: Tensor  # (B, d)
    q: Tensor  # (B, K) soft assignment
    output: Tensor | None  # (B, C, H, W) reconstruction, when the decoder is kept


class ClusteringModel(nn.Module):
    """An autoencoder with a clustering layer on its code, trained as one module (DEC,
    IDEC, DCEC): ``forward(x) -> ClusteringOutput(code, q, output)``; ``output`` is None
    when ``decode`` is False (DEC drops the decoder), and then the decoder's parameters
    are unused, which ``unused_parameters`` tells DistributedDataParallel."""

    def __init__(self, autoencoder: nn.Module, head: ClusteringLayer, decode: bool = True):
        super().__init__()
        self.autoencoder, self.head, self.decode = autoencoder, head, decode
        self.unused_parameters = not decode

    def forward(self, x: Tensor) -> ClusteringOutput:
        code = self.autoencoder.encode(x)
        output = self.autoencoder.decode(code) if self.decode else None
        return ClusteringOutput(code, self.head(code), output)
