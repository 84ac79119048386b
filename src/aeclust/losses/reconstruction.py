"""Reconstruction losses: how far the decoder's output is from the input.

Decoders end in a linear layer. For ``"mse"`` the output is the reconstruction itself;
for ``"bce"`` it is a logit and the reconstruction is ``sigmoid(output)``. Computing BCE
from logits is numerically stable, and a linear last layer trains where a sigmoid + MSE
conv decoder was seen to stall (our runs on mnist5k, see the README's design notes).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import check_choice


def mse(output: Tensor, x: Tensor) -> Tensor:
    """Mean squared error over all pixels of the batch. Shapes (B, C, H, W)."""
    return F.mse_loss(output, x)


def bce(output: Tensor, x: Tensor) -> Tensor:
    """Pixel-wise binary cross-entropy between ``sigmoid(output)`` and ``x`` in [0, 1].

    Averaged over pixels and samples (Alqahtani et al. eq. 3 up to the 1/(N*P) scale).
    """
    return F.binary_cross_entropy_with_logits(output, x)


RECONSTRUCTION_LOSSES = {"mse": mse, "bce": bce}


def per_sample(name: str, output: Tensor, x: Tensor) -> Tensor:
    """The reconstruction loss ``name`` of each image, summed over its pixels: (B,).

    The generative models weigh it against a KL or adversarial term per image (the β-VAE's
    β and the WAE's λ are defined on this scale), and noise attention weighs it per image.
    """
    check_choice("reconstruction loss", name, RECONSTRUCTION_LOSSES)
    if name == "bce":
        loss = F.binary_cross_entropy_with_logits(output, x, reduction="none")
    else:
        loss = F.mse_loss(output, x, reduction="none")
    return loss.flatten(1).sum(1)


def reconstruction_loss(name: str):
    """The loss function registered as ``name``."""
    return RECONSTRUCTION_LOSSES[check_choice("reconstruction loss", name, RECONSTRUCTION_LOSSES)]


def to_image(output: Tensor, loss: str) -> Tensor:
    """Turn a decoder output into a reconstruction on the input's scale."""
    return torch.sigmoid(output) if loss == "bce" else output
