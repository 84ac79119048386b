"""The generator of HRWAE-GAN (Morais' thesis, sections 3.1.2-3.1.4, Fig. 3.2): a
convolutional autoencoder with L latent groups z_0 .. z_{L-1}. With L = 1 it is the
plain WAE-GAN's autoencoder (Tolstikhin et al. 2017); with ``variational=True`` (L = 1)
the top group is Gaussian, which makes it the β-VAE of section 4.2 with the same layers.

Shapes, for a 1x28x28 image, 32 channels, d = 23, L = 2::

    encoder cells  x (1,28,28) -> f1 (32,14,14) -> f2 (64,7,7) -> f3 (128,4,4) -> f4 (256,2,2)
    z_0 = Linear(f4)                                          (23,)   prior N(0, I)
    decoder        u4 = Linear(z_0) (256,2,2) -> u3 (128,4,4)
    group 1        prior cell(u3) -> (mu_1, log sigma_1): p(z_1 | z_0)
                   encoder combiner(f3, u3) -> z_1 (23,):     q(z_1 | x, z_0)
                   decoder combiner(u3, z_1) -> u3'
                   layer matching pairs (f3, u3)              (eq. 3.10)
    decoder        u3' -> u2 (64,7,7) -> u1 (32,14,14) -> output (1,28,28)

Group l sits at the level N - l of the hierarchy (the map after l decoder cells), so the
lower groups see finer maps; L <= N.

The encoder is deterministic, as Tolstikhin et al.'s WAE-GAN may be: a Wasserstein
autoencoder needs no noise in q(z|x). The thesis' "optimised using the reparameterization
trick" (section 3.3) is where the priors of the lower groups are sampled: z_l = mu_l +
sigma_l * eps (:func:`aeclust.nn.adversarial.prior_samples`), so the prior cells learn
through the generator's adversarial loss. Only the β-VAE (``variational``) samples its
code, z_0 = mu + exp(logvar / 2) * eps, in training.

**Depth** (eq. 3.7): N = log2(d) - 1 cells with d = sqrt(H * W), so that the last map is
2x2. When d is not a power of two (28: 3.81) N is rounded *up*: every cell is a stride-2
convolution with kernel 3 and padding 1, which takes a size n to ceil(n / 2), so
28 -> 14 -> 7 -> 4 -> 2 still ends at 2x2 after four cells, and no pixel is cropped or
padded away. Each transposed convolution lands exactly on the size its encoder cell
started from. Channels double per cell from ``channels`` up to ``max_channels``.

As the thesis does after Radford et al. (2015): strided convolutions instead of pooling,
batch normalisation in every cell (section 3.1.4); each cell may add non-reducing 3x3
layers (``encoder_layers``, ``decoder_layers``, the thesis' n and m, default 0 as it
ended with). The output is linear (a logit for BCE), as in every aeclust decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

Size = tuple[int, int]

# The prior cells' log sigma is bounded softly to (-3, 3), sigma in (0.05, 20): unbounded,
# one large activation gives exp(log sigma) prior samples of any size. That is the likely
# cause of the discriminators' losses that jumped by five orders of magnitude (and were
# rolled back) in 2- and 3-group runs on mnist5k. tanh keeps a gradient everywhere,
# which a hard clamp would not.
LOG_SIGMA_BOUND = 3.0


def soft_clamp(x: Tensor, bound: float) -> Tensor:
    """bound * tanh(x / bound): the identity near 0, never beyond +-bound."""
    return bound * torch.tanh(x / bound)


@dataclass
class HRWAEConfig:
    input_shape: tuple[int, int, int]  # (C, H, W) of one image
    latent_dim: int = 23  # size of every latent group's code (thesis, section 4.2)
    latent_groups: int = 1  # L; 1 is the plain WAE-GAN
    channels: int = 32  # filters of the first cell, doubled per cell
    max_channels: int = 256
    encoder_layers: int = 0  # non-reducing layers per encoder cell (the thesis' n)
    decoder_layers: int = 0  # non-reducing layers per decoder cell (the thesis' m)
    variational: bool = False  # β-VAE: z_0 ~ N(mu, exp(logvar)) (needs L = 1)


class HRWAEOutput(NamedTuple):
    code: Tensor  # (B, d): z_0, the mean for a β-VAE
    output: Tensor  # (B, C, H, W): the reconstruction's logits (or values for MSE)
    codes: list[Tensor]  # L x (B, d): z_0 (as decoded) .. z_{L-1}
    priors: list[tuple[Tensor, Tensor]]  # (L-1) x (mu, log sigma) of p(z_l | z_<l)
    matches: list[tuple[Tensor, Tensor]]  # (L-1) x (encoder map, decoder map), eq. 3.10
    logvar: Tensor | None  # (B, d) for a β-VAE, else None


def depth(height: int, width: int) -> int:
    """Eq. 3.7, rounded up (see the module's docstring); at least one cell."""
    return max(1, math.ceil(math.log2(math.sqrt(height * width))) - 1)


def _block(c_in: int, c_out: int, stride: int = 1, act: nn.Module | None = None) -> list:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out),
            act or nn.LeakyReLU(0.2)]  # fmt: skip


class Combiner(nn.Module):
    """The decoder combiner: a code z (B, d) put back into the decoder's map (B, c, h, w)."""

    def __init__(self, latent_dim: int, channels: int, size: Size):
        super().__init__()
        self.shape = (channels, *size)
        self.expand = nn.Linear(latent_dim, math.prod(self.shape))
        self.mix = nn.Sequential(*_block(2 * channels, channels, act=nn.ReLU()))

    def forward(self, u: Tensor, z: Tensor) -> Tensor:
        return self.mix(torch.cat([u, self.expand(z).view(len(z), *self.shape)], 1))


def _to_code(channels_in: int, channels: int, size: Size, out: int) -> nn.Sequential:
    """A 3x3 cell then a linear map of the flattened (channels, size) map to ``out``."""
    return nn.Sequential(
        *_block(channels_in, channels), nn.Flatten(), nn.Linear(channels * math.prod(size), out)
    )


class HRWAE(nn.Module):
    """``forward(x) -> HRWAEOutput``, ``encode(x)`` (z_0), ``encode_groups(x)`` (every
    group), ``decode(z_0, lower=None)`` and ``generate(n)`` from the priors."""

    def __init__(self, config: HRWAEConfig):
        super().__init__()
        c, h, w = config.input_shape
        n_cells = depth(h, w)
        L, d = config.latent_groups, config.latent_dim
        if d < 1 or L < 1:
            raise ValueError(f"latent_dim and latent_groups must be >= 1; got {config}")
        if L > n_cells:
            raise ValueError(
                f"latent_groups={L} needs at least {L} cells, and {h}x{w} images give "
                f"{n_cells} (eq. 3.7); use latent_groups <= {n_cells} or larger images"
            )
        if config.variational and L > 1:
            raise ValueError("variational=True (the β-VAE) has one latent group; set L = 1")
        self.config = config
        chans = [c] + [min(config.channels * 2**i, config.max_channels) for i in range(n_cells)]
        sizes = [(h, w)]
        for _ in range(n_cells):
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
        self.chans, self.sizes, self.n_cells = chans, sizes, n_cells

        self.down = nn.ModuleList()
        for i in range(1, n_cells + 1):
            layers = _block(chans[i - 1], chans[i], stride=2)
            for _ in range(config.encoder_layers):
                layers += _block(chans[i], chans[i])
            self.down.append(nn.Sequential(*layers))
        top = chans[-1] * math.prod(sizes[-1])
        self.to_z0 = nn.Linear(top, 2 * d if config.variational else d)
        self.expand = nn.Sequential(nn.Linear(d, top), nn.BatchNorm1d(top), nn.ReLU())

        self.up = nn.ModuleList()
        for i in range(n_cells, 0, -1):  # level i -> i - 1
            th, tw = sizes[i - 1]
            layers = []
            for _ in range(config.decoder_layers):
                layers += _block(chans[i], chans[i], act=nn.ReLU())
            layers.append(nn.ConvTranspose2d(chans[i], chans[i - 1], 3, 2, 1,
                                             output_padding=(1 - th % 2, 1 - tw % 2)))  # fmt: skip
            if i > 1:  # the last one is the linear output
                layers += [nn.BatchNorm2d(chans[i - 1]), nn.ReLU()]
            self.up.append(nn.Sequential(*layers))

        # group l (1 .. L-1) at level k = N - l: its prior cell, encoder and decoder combiners
        levels = [n_cells - g for g in range(1, L)]
        self.prior = nn.ModuleList(_to_code(chans[k], chans[k], sizes[k], 2 * d) for k in levels)
        self.posterior = nn.ModuleList(
            _to_code(2 * chans[k], chans[k], sizes[k], d) for k in levels
        )
        self.combine = nn.ModuleList(Combiner(d, chans[k], sizes[k]) for k in levels)

    # ------------------------------------------------------------------ encoder
    def _encoder_maps(self, x: Tensor) -> list[Tensor]:
        maps = []
        for cell in self.down:
            x = cell(x)
            maps.append(x)
        return maps  # f_1 .. f_N

    def _top(self, maps: list[Tensor]) -> tuple[Tensor, Tensor | None]:
        out = self.to_z0(maps[-1].flatten(1))
        if self.config.variational:
            mu, logvar = out.chunk(2, dim=1)
            return mu, logvar
        return out, None

    # ------------------------------------------------------------------ decoder
    def _decode(self, z0: Tensor, maps=None, lower=None, generator=None, latents_only=False):
        """Walk the decoder from z_0. Group l's code comes from the encoder combiner
        (``maps`` given), from ``lower[l - 1]``, or from its prior: a sample (with
        ``generator``) or the mean. Returns (output, codes, priors, matches); with
        ``latents_only`` the walk stops after the last group (output None)."""
        codes, priors, matches = [z0], [], []
        if latents_only and self.config.latent_groups == 1:
            return None, codes, priors, matches
        u = self.expand(z0).view(len(z0), self.chans[-1], *self.sizes[-1])
        for j, cell in enumerate(self.up):
            if latents_only and j == self.config.latent_groups:
                return None, codes, priors, matches
            if 1 <= j < self.config.latent_groups:  # group l = j at level N - j
                k, g = self.n_cells - j, j - 1
                mu, log_sigma = self.prior[g](u).chunk(2, dim=1)
                log_sigma = soft_clamp(log_sigma, LOG_SIGMA_BOUND)
                if maps is not None:
                    f = maps[k - 1]
                    z = self.posterior[g](torch.cat([f, u], 1))
                    matches.append((f, u))
                elif lower is not None:
                    z = lower[g]
                elif generator is not None:
                    noise = torch.randn(mu.shape, generator=generator, device="cpu")
                    z = mu + log_sigma.exp() * noise.to(mu.device)
                else:
                    z = mu
                priors.append((mu, log_sigma))
                codes.append(z)
                u = self.combine[g](u, z)
            u = cell(u)
        return u, codes, priors, matches

    def forward(self, x: Tensor) -> HRWAEOutput:
        maps = self._encoder_maps(x)
        mu, logvar = self._top(maps)
        z0 = mu
        if logvar is not None and self.training:  # the reparameterisation trick
            z0 = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        output, codes, priors, matches = self._decode(z0, maps=maps)
        return HRWAEOutput(mu, output, codes, priors, matches, logvar)

    def latents(self, x: Tensor) -> tuple[list[Tensor], list[tuple[Tensor, Tensor]]]:
        """(codes, priors) as in ``forward``, without decoding further than the last group
        needs (a discriminator's update needs no image)."""
        maps = self._encoder_maps(x)
        z0 = self._top(maps)[0]
        _, codes, priors, _ = self._decode(z0, maps=maps, latents_only=True)
        return codes, priors

    def encode(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, d): z_0 (its mean)
        return self._top(self._encoder_maps(x))[0]

    def encode_groups(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (L, B, d)
        """Every group's code: z_0 (its mean) then z_1 .. z_{L-1} (as the encoder's
        combiner cells compute them from x and the groups above)."""
        return torch.stack(self.forward(x).codes if self.config.latent_groups > 1
                           else [self.encode(x)])  # fmt: skip

    def decode(self, z0: Tensor, lower: list[Tensor] | None = None) -> Tensor:
        """Output (B, C, H, W) from z_0; the lower groups are ``lower`` or their prior
        means given the groups above."""
        return self._decode(z0, lower=lower)[0]

    @torch.no_grad()
    def generate(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Decoder outputs (n, C, H, W) from samples of the priors: z_0 ~ N(0, I), then
        z_l ~ p(z_l | z_<l) from the prior cells. Draws from ``generator`` (CPU)."""
        generator = generator or torch.Generator().manual_seed(0)
        device = next(self.parameters()).device
        z0 = torch.randn(n, self.config.latent_dim, generator=generator).to(device)
        return self._decode(z0, generator=generator)[0]
