"""Autoclave restricted Boltzmann machines (ACRBM): a softmax clustering layer whose
weights are shared between its hidden state and its reconstruction (one-stage
autoencoders, section 2.1 and appendix B).

- :class:`ACRBMLayer`: h = softmax(v·w + b_h) (eq. 8), v̂ = σ(h·wᵀ) (eq. 9), tied w and
  no visible bias. ``forward`` gives h; ``reconstruct_logits`` gives h·wᵀ (σ of it is v̂).
- :class:`ShallowACRBM`: the layer on the flattened image (Table 1's "shallow ACRBM").
- :class:`AEACRBM`: Fig. 11, a two-layer convolutional encoder, a linear code h_AE, an
  ACRBM layer on h_AE, and a decoder fed with both codes side by side. ``head="relu"`` puts
  a ReLU dense layer of the same width in the ACRBM's place: the paper's "AE + k-means"
  network, whose k-means runs on that layer's output.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import NamedTuple

import torch
from torch import Tensor, nn

from .conv import ConvAutoencoder, ConvConfig


class ACRBMLayer(nn.Module):
    """h = softmax(v·w + b_h) with w (D, K) and b_h (K,); the reconstruction uses wᵀ.

    Initialisation: w Glorot-uniform, b_h zero (the Keras defaults; the paper does not say,
    and its Adam β settings suggest Keras).
    """

    def __init__(self, in_features: int, n_clusters: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, n_clusters))  # (D, K)
        self.bias = nn.Parameter(torch.zeros(n_clusters))  # (K,)
        nn.init.xavier_uniform_(self.weight)

    def forward(self, v: Tensor) -> Tensor:  # (B, D) -> (B, K), rows sum to 1
        return torch.softmax(v @ self.weight + self.bias, dim=1)

    @torch.no_grad()
    def init_from_centres(self, centres: Tensor, variance: float) -> None:
        """Start as the posterior of a mixture of spherical Gaussians with these means
        (K, D) and this per-dimension ``variance``: softmax(v·c_k/σ² − |c_k|²/(2σ²)) is
        softmax(−|v − c_k|²/(2σ²)), k-means' soft assignment."""
        centres = torch.as_tensor(centres, dtype=self.weight.dtype)
        self.weight.copy_(centres.T / variance)
        self.bias.copy_(-(centres**2).sum(1) / (2 * variance))

    def reconstruct_logits(self, h: Tensor) -> Tensor:  # (B, K) -> (B, D); v̂ = σ(this)
        return h @ self.weight.T


class ACRBMOutput(NamedTuple):
    h: Tensor  # (B, K) the ACRBM's hidden state (soft assignment), or the ReLU head's code
    output: Tensor  # (B, C, H, W) logits of the reconstruction (v̂ = sigmoid of them)
    code: Tensor | None = None  # (B, latent_dim) h_AE of AE + ACRBM; None for the shallow one


@dataclass
class ShallowACRBMConfig:
    input_shape: tuple[int, int, int]  # (C, H, W) of one image
    n_clusters: int = 10  # the layer's width: the number of clusters


class ShallowACRBM(nn.Module):
    """The ACRBM layer on the flattened image, v = x − ``mean``:
    ``forward(x) -> ACRBMOutput(h, output)``, ``output`` the logits of the reconstruction
    in the image's shape, h·wᵀ + σ⁻¹(``mean``).

    ``mean`` (C, H, W) is a buffer, zero unless the estimator centres the images (set with
    :meth:`set_mean`); at zero this is eq. 9 exactly. With it, v̂ = σ(h·wᵀ + σ⁻¹(mean))
    reconstructs the image rather than its deviation from the mean (a fixed visible bias,
    which eq. 9 does not have; the objective does not see it).
    """

    def __init__(self, config: ShallowACRBMConfig):
        super().__init__()
        self.config = config
        self.layer = ACRBMLayer(prod(config.input_shape), config.n_clusters)
        self.register_buffer("mean", torch.zeros(config.input_shape))

    def set_mean(self, mean: Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))

    def forward(self, x: Tensor) -> ACRBMOutput:
        h = self.layer((x - self.mean).flatten(1))
        visible_bias = torch.logit(self.mean.clamp(1e-4, 1 - 1e-4)) if self.mean.any() else 0
        return ACRBMOutput(h, self.layer.reconstruct_logits(h).view_as(x) + visible_bias)


@dataclass
class AEACRBMConfig:
    input_shape: tuple[int, int, int]  # (C, H, W) of one image
    latent_dim: int = 90  # h_AE (Table 3: 90 with 10 clusters, 300 with 30)
    n_clusters: int = 10  # width of h_ACRBM (or of the ReLU head)
    channels: int = 100  # filters of each of the two encoder and decoder convolutions
    kernel: int = 3  # odd; stride 2, padding kernel // 2 (28x28 -> 14x14 -> 7x7)
    head: str = "acrbm"  # acrbm | relu (the AE + k-means reference network)
    encoder_grad: float = 1.0  # share of the head's gradient that reaches the encoder


class AEACRBM(nn.Module):
    """Appendix B's network: conv → ReLU → conv → ReLU → linear h_AE; h = head(h_AE); the
    decoder maps [h_AE, h] through a dense ReLU layer back to the last feature map and two
    transposed convolutions to the image (logits). Widths and kernel are config; the
    paper gives the widths (Table 3) but not the kernels or strides, so we use the strided
    3x3 convolutions of :class:`~aeclust.nn.ConvAutoencoder`, which builds the layers.
    ``forward(x) -> ACRBMOutput(h, output, code)``."""

    def __init__(self, config: AEACRBMConfig):
        super().__init__()
        if config.head not in ("acrbm", "relu"):
            raise ValueError(f"head must be 'acrbm' or 'relu'; got {config.head!r}")
        self.config = config
        k = config.kernel
        ae = ConvAutoencoder(
            ConvConfig(config.input_shape, config.latent_dim, (config.channels,) * 2, (k, k))
        )
        width = config.latent_dim + config.n_clusters  # the decoder reads both codes
        ae.expand = nn.Sequential(nn.Linear(width, prod(ae.bottleneck)), nn.ReLU())
        self.ae = ae
        if config.head == "acrbm":
            self.head = ACRBMLayer(config.latent_dim, config.n_clusters)
        else:
            self.head = nn.Sequential(nn.Linear(config.latent_dim, config.n_clusters), nn.ReLU())

    def forward(self, x: Tensor) -> ACRBMOutput:
        code = self.ae.encode(x)  # (B, latent_dim), linear
        g = self.config.encoder_grad
        h = self.head(code if g == 1 else g * code + (1 - g) * code.detach())  # (B, K)
        return ACRBMOutput(h, self.ae.decode(torch.cat([code, h], dim=1)), code)
