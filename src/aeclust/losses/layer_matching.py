"""Layer matching (Morais' thesis, eq. 3.10): the decoder's intermediate maps are pulled
towards the encoder's maps of the same level, so that every latent group is used.

    L_I = Σ_{l=1}^{L-1} D(i_encoder^l, i_decoder^{l-1})

with D the cosine dissimilarity 1 - cos(a, b) of the flattened maps, averaged over the
batch. The pairs are those of :class:`aeclust.nn.HRWAEOutput` ``.matches``: at group l's
level, the encoder's map and the decoder's map before group l's code is added. Both sides
receive gradients. Cosine dissimilarity ignores the scale of the maps, which batch
normalisation sets anyway.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_dissimilarity(a: Tensor, b: Tensor) -> Tensor:
    """Mean over the batch of 1 - cos(a_i, b_i) of the flattened samples; (B, ...) each."""
    return (1 - F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)).mean()


def layer_matching_loss(pairs: Sequence[tuple[Tensor, Tensor]]) -> Tensor:
    """Eq. 3.10 over ``pairs`` of (encoder map, decoder map); zero when there is none."""
    if not pairs:
        return torch.zeros(())
    return sum(cosine_dissimilarity(a, b) for a, b in pairs)
