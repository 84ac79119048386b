"""The clustering loss of DEC (Xie et al. 2016), shared by IDEC and DCEC (Guo et al. 2017).

Given the soft assignment Q of the clustering layer (Student's t kernel, α degrees of
freedom; :func:`aeclust.nn.clustering_layer.soft_assignment`, re-exported here), the
sharpened target distribution

    p_ij = (q_ij² / f_j) / Σ_j' (q_ij'² / f_j'),   f_j = Σ_i q_ij

and the loss KL(P ‖ Q) = Σ_i Σ_j p_ij log(p_ij / q_ij), averaged over the samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..nn.clustering_layer import soft_assignment  # noqa: F401 (re-exported)


def target_distribution(q: Tensor) -> Tensor:
    """DEC's target P from Q (N, K): square, divide by cluster frequency, renormalise rows."""
    weight = q.pow(2) / q.sum(dim=0)
    return weight / weight.sum(dim=1, keepdim=True)


def kl_clustering_loss(q: Tensor, p: Tensor) -> Tensor:
    """KL(P ‖ Q) summed over clusters and averaged over the B samples; ``p`` is a constant."""
    p = p.detach()
    return (p * (torch.log(p.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(dim=1).mean()
