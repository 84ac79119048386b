"""The KL term of a (β-)VAE against the standard normal prior, in closed form.

    KL(N(mu, diag(exp(logvar))) || N(0, I)) = -1/2 Σ_j (1 + logvar_j - mu_j² - exp(logvar_j))

summed over the d latent dimensions and averaged over the batch, the convention of
Kingma & Welling (2013) and of the β-VAE (Higgins et al. 2017), whose β multiplies it
against a reconstruction loss summed over the pixels of each image.
"""

from __future__ import annotations

from torch import Tensor


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """Mean over the batch of the KL divergence of N(mu, exp(logvar)) from N(0, I);
    ``mu``, ``logvar`` (B, d)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)).mean()
