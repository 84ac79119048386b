"""Training objectives, one per file, as pure functions of tensors."""

from .acrbm import acrbm_loss
from .dec import kl_clustering_loss, soft_assignment, target_distribution
from .embedded_kmeans import embedded_kmeans_loss
from .kl import gaussian_kl
from .layer_matching import cosine_dissimilarity, layer_matching_loss
from .reconstruction import (
    RECONSTRUCTION_LOSSES,
    bce,
    mse,
    per_sample,
    reconstruction_loss,
    to_image,
)
from .relativistic import hierarchical_losses, relativistic_d_loss, relativistic_g_loss

__all__ = [
    "RECONSTRUCTION_LOSSES",
    "acrbm_loss",
    "bce",
    "cosine_dissimilarity",
    "embedded_kmeans_loss",
    "gaussian_kl",
    "layer_matching_loss",
    "per_sample",
    "kl_clustering_loss",
    "mse",
    "reconstruction_loss",
    "relativistic_d_loss",
    "relativistic_g_loss",
    "hierarchical_losses",
    "soft_assignment",
    "target_distribution",
    "to_image",
]
