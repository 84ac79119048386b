"""Hard k-means steps on latent codes: nearest-centre assignment and centre update.

The DCAE with embedded k-means (Alqahtani et al.) alternates network training with these
two steps once per epoch: eq. 6 assigns each code to its nearest centre, eq. 7 moves each
centre to the mean of its codes.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def assign_nearest(Z: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean) of each code (eq. 6); shape (N,),
    int64. The one nearest-centre rule of the package (k-means predict, DCAE, DEC)."""
    return cdist(Z, centers, "sqeuclidean").argmin(axis=1).astype(np.int64)


def update_centers(
    Z: np.ndarray, assign: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, list[int]]:
    """Each centre becomes the mean of the codes assigned to it (eq. 7).

    A centre left without codes is re-seeded at the code farthest from its own centre (the
    worst-fitted point, as scikit-learn's k-means does), taking that code away from its
    old cluster's future. Returns the new centres (K, d) and the indices of the re-seeded
    ones, so callers can report them.
    """
    K = len(centers)
    counts = np.bincount(assign, minlength=K)
    sums = np.zeros_like(centers, dtype=np.float64)
    np.add.at(sums, assign, Z)
    new = centers.astype(np.float64).copy()
    filled = counts > 0
    new[filled] = sums[filled] / counts[filled, None]
    empty = np.flatnonzero(~filled).tolist()
    if empty:
        dist = ((Z - new[assign]) ** 2).sum(axis=1)
        far = np.argsort(-dist, kind="stable")[: len(empty)]
        new[empty] = Z[far]
    return new.astype(centers.dtype), empty
