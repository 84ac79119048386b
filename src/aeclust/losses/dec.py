"""The clustering loss of DEC (Xie et al. 2016), shared by IDEC and DCEC (Guo et al. 2017).

Soft assignment with a Student's t kernel (α degrees of freedom):

    q_ij = (1 + ‖z_i − μ_j‖² / α)^(−(α+1)/2) / Σ_j' (...)

the sharpened target distribution

    p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'),   f_j = Σ_i q_ij

and the loss KL(P ‖ Q) = Σ_i Σ_j p_ij log(p_ij / q_ij), averaged over the samples.
"""

from __future__ import annotations

import torch
from torch import Tensor


def soft_assignment(z: Tensor, centers: Tensor, alpha: float = 1.0) -> Tensor:
    """Student's t similarity of codes ``z`` (B, d) to ``centers`` (K, d): rows sum to 1, (B, K)."""
    dist2 = torch.cdist(z, centers).pow(2)  # (B, K)
    q = (1.0 + dist2 / alpha).pow(-(alpha + 1.0) / 2.0)
    return q / q.sum(dim=1, keepdim=True)


def target_distribution(q: Tensor) -> Tensor:
    """DEC's target P from Q (N, K): square, divide by cluster frequency, renormalise rows."""
    weight = q.pow(2) / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_clustering_loss(q: Tensor, p: Tensor) -> Tensor:
    """KL(P ‖ Q) summed over clusters and averaged over the B samples; ``p`` is a constant."""
    p = p.detach()
    return (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(dim=1).mean()
