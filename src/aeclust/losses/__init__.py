"""Training objectives, one per file, as pure functions of tensors."""

from .reconstruction import RECONSTRUCTION_LOSSES, bce, mse, reconstruction_loss, to_image

__all__ = ["RECONSTRUCTION_LOSSES", "bce", "mse", "reconstruction_loss", "to_image"]
