"""The embedded k-means loss of the DCAE (Alqahtani et al., eq. 4).

    E2 = λ / (2N) Σ_n ‖h(x_n) − c*_n‖²

where h(x_n) is the latent code of sample n and c*_n the centre it is assigned to (the
nearest one, eq. 6, fixed during an epoch). On a mini-batch the sum over N becomes the
mean over the batch, so E2 keeps its scale whatever the batch size.
"""

from __future__ import annotations

from torch import Tensor


def embedded_kmeans_loss(h: Tensor, centers: Tensor, assign: Tensor, lam: float = 0.2) -> Tensor:
    """λ/2 × mean over the batch of the squared distance of each code to its centre.

    Parameters
    ----------
    h : Tensor (B, d)
        Latent codes.
    centers : Tensor (K, d)
        Cluster centres (treated as constants: no gradient flows into them).
    assign : Tensor (B,) of int64
        Index of the centre of each code.
    lam : float
        λ, the weight of E2 against the reconstruction loss (0.2 in the paper).
    """
    diff = h - centers.detach()[assign]  # (B, d)
    return lam / 2 * diff.pow(2).sum(dim=1).mean()
