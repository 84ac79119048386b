"""SVCCA, singular vector canonical correlation analysis (Raghu et al. 2017): how similar
two representations of the same images are, up to any invertible linear map.

:func:`svcca` takes two sets of activations, one row per image: each set is centred,
reduced to the singular directions that explain ``keep`` (99%) of its variance, and the
two reduced sets are aligned by CCA; the similarity is the mean canonical correlation
(1 for identical representations, near 0 for independent ones).

:func:`svcca_maps` compares convolutional maps (N, C, H, W) through their 2-D discrete
Fourier transform, Raghu et al.'s method for conv layers: for data whose statistics do not
depend on position, the DFT makes the covariance block diagonal with one block per spatial
frequency, so the CCA of the whole maps is the union of one small CCA per frequency. A map
larger than the other is down-sampled in Fourier space: only the frequencies the smaller
map has are kept. The singular directions are chosen once over all frequencies (the
covariance's spectrum is the union of the blocks' spectra), the same cut as on the whole
maps.

CCA overfits when the reduced dimension is not small against the number of images (with
as many directions as images every correlation is 1): give many more images than kept
directions, and read similarities on few images with care.
"""

from __future__ import annotations

import numpy as np


def _directions(A: np.ndarray, keep: float) -> np.ndarray:
    """Centred A projected on its top singular directions explaining ``keep`` of its
    variance: (N, k), columns orthonormal up to their singular values."""
    A = A - A.mean(axis=0, keepdims=True)
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    k = _n_kept(s, keep)
    return U[:, :k] * s[:k]


def _n_kept(s: np.ndarray, keep: float) -> int:
    energy = s**2
    total = energy.sum()
    if total <= 0:
        return 0
    return int(min(len(s), np.searchsorted(np.cumsum(energy) / total, keep - 1e-12) + 1))


def canonical_correlations(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The canonical correlations of the columns of A (N, p) and B (N, q), real or complex,
    as centred data: the singular values of Qa^H Qb for orthonormal bases Qa, Qb of their
    column spaces; min(rank A, rank B) values in [0, 1], largest first."""
    qa, qb = _basis(A), _basis(B)
    if qa.shape[1] == 0 or qb.shape[1] == 0:
        return np.zeros(0)
    return np.clip(np.linalg.svd(qa.conj().T @ qb, compute_uv=False), 0.0, 1.0)


def _basis(A: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """An orthonormal basis of A's column space (rank-revealing, via SVD)."""
    if A.shape[1] == 0:
        return A
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    return U[:, s > tol * max(s.max(), 1e-300)]


def _check(A, B, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.ndim != ndim or B.ndim != ndim:
        raise ValueError(f"need two arrays of {ndim} dimensions; got {A.shape} and {B.shape}")
    if len(A) != len(B):
        raise ValueError(
            f"the two representations must be of the same images (rows); got {len(A)} and "
            f"{len(B)} rows"
        )
    if len(A) < 2:
        raise ValueError("SVCCA needs at least 2 images")
    return A, B


def _check_keep(keep: float) -> None:
    if not 0 < keep <= 1:
        raise ValueError(f"keep must be in (0, 1] (the share of variance kept); got {keep!r}")


def svcca(A, B, keep: float = 0.99) -> float:
    """SVCCA similarity of two representations of the same N images: A (N, p), B (N, q)
    (maps are flattened first). The mean canonical correlation of their top singular
    directions that explain ``keep`` of each one's variance; in [0, 1]."""
    _check_keep(keep)
    A, B = (np.asarray(x, dtype=np.float64) for x in (A, B))
    A, B = _check(A.reshape(len(A), -1), B.reshape(len(B), -1), 2)
    rho = canonical_correlations(_directions(A, keep), _directions(B, keep))
    return float(rho.mean()) if len(rho) else 0.0


def fourier_down(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The 2-D DFT of ``maps`` (N, C, H, W) over (H, W), keeping only the spatial frequencies
    of a ``size`` map (in cycles per image): (N, C, h, w) complex."""
    h, w = size
    F = np.fft.fft2(maps, axes=(2, 3))
    rows = np.fft.fftfreq(h, 1 / h).astype(int) % maps.shape[2]
    cols = np.fft.fftfreq(w, 1 / w).astype(int) % maps.shape[3]
    return F[:, :, rows][:, :, :, cols]


def _frequency_directions(F: np.ndarray, keep: float) -> list[np.ndarray]:
    """Per spatial frequency, the centred coefficients (N, C) projected on their singular
    directions, keeping those above one cut chosen over all frequencies together."""
    n, c, h, w = F.shape
    blocks = [F[:, :, i, j] - F[:, :, i, j].mean(0) for i in range(h) for j in range(w)]
    svds = [np.linalg.svd(b, full_matrices=False) for b in blocks]
    energy = np.sort(np.concatenate([s**2 for _, s, _ in svds]))[::-1]
    total = energy.sum()
    if total <= 0:
        return [b[:, :0] for b in blocks]
    k = int(min(len(energy), np.searchsorted(np.cumsum(energy) / total, keep - 1e-12) + 1))
    cut = energy[k - 1]
    return [U[:, s**2 >= cut] * s[s**2 >= cut] for U, s, _ in svds]


def svcca_maps(A, B, keep: float = 0.99) -> float:
    """SVCCA of two convolutional representations A (N, C1, H1, W1) and B (N, C2, H2, W2)
    of the same images, by the DFT method (module docstring): the larger map is
    down-sampled to the smaller one's frequencies in Fourier space; the similarity is the
    mean of the canonical correlations of all frequencies. Equal to :func:`svcca` on the
    flattened maps for translation-invariant data and ``keep=1``."""
    _check_keep(keep)
    A, B = _check(A, B, 4)
    size = (min(A.shape[2], B.shape[2]), min(A.shape[3], B.shape[3]))
    fa = _frequency_directions(fourier_down(A, size), keep)
    fb = _frequency_directions(fourier_down(B, size), keep)
    rho = np.concatenate([canonical_correlations(a, b) for a, b in zip(fa, fb, strict=True)])
    return float(rho.mean()) if len(rho) else 0.0


def similarity_matrix(reps: dict[str, np.ndarray], keep: float = 0.99) -> np.ndarray:
    """Pairwise :func:`svcca_maps` of named maps (N, C, H, W) of the same images:
    (len(reps), len(reps)) symmetric, in the order of ``reps``."""
    names = list(reps)
    S = np.eye(len(names))
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            S[i, j] = S[j, i] = svcca_maps(reps[names[i]], reps[names[j]], keep)
    return S
