"""Images that stay on disk: a memory-mapped ``.npy`` read batch by batch.

:class:`MappedImages` is what the estimators, the trainer and batched encoding take in
place of an in-memory array when the images do not fit in memory (or need not be loaded).
Indexing it (``images[idx]``, ``images[a:b]``) reads those rows only and returns them as
float32 (N', C, H, W), scaled as :func:`~aeclust.data.load_array` scales the same file in
memory (uint8 / 255, uint16 / 65535, floats as stored), so a fit on the memory map and a
fit on ``load_array(path).X`` with the same seed give the same bits.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError

SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
CHUNK_BYTES = 64 << 20  # rows read at once by the streaming passes


class MappedImages:
    """The (N, C, H, W) or (N, H, W) images of a ``.npy`` file (or an ``np.memmap``),
    memory-mapped read-only."""

    def __init__(self, source: str | os.PathLike | np.ndarray):
        if isinstance(source, np.ndarray):
            array, self.path = source, getattr(source, "filename", None)
        else:
            self.path = Path(source)
            try:
                array = np.load(self.path, mmap_mode="r")
            except (OSError, ValueError) as exc:
                raise DataError(f"Cannot memory-map '{self.path}' as a .npy file: {exc}") from exc
        if array.ndim == 3:
            array = array[:, None]
        if array.ndim != 4 or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise DataError(
                f"A memory-mapped image file must hold numeric (N, C, H, W) or (N, H, W) "
                f"images; '{self.path}' holds {array.dtype} of shape {array.shape}."
            )
        if len(array) == 0:
            raise DataError(f"'{self.path}' holds no images.")
        self.array = array
        self.scale = SCALES.get(array.dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def ndim(self) -> int:
        return 4

    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, index) -> np.ndarray:
        if hasattr(index, "numpy"):  # a torch index tensor
            index = index.numpy()
        rows = np.array(self.array[index], dtype=np.float32)
        if self.scale:
            rows /= self.scale
        return rows

    def chunks(self):
        """(start, rows) over all images, ``CHUNK_BYTES`` at a time (a streaming pass)."""
        return chunks(self)

    def check_finite(self) -> None:
        """Raise DataError if any value is NaN or infinite (one streaming pass)."""
        if np.issubdtype(self.array.dtype, np.integer):
            return
        for start, rows in self.chunks():
            bad = np.flatnonzero(~np.isfinite(rows.reshape(len(rows), -1)).all(axis=1))
            if len(bad):
                raise DataError(
                    f"The data contains NaN or infinite values (first at index "
                    f"{start + bad[0]}). Remove or impute them first."
                )


def chunks(X):
    """(start, rows) over an array or :class:`MappedImages`, about ``CHUNK_BYTES`` at a
    time, so that a pass over data on disk never holds all of it."""
    step = max(1, CHUNK_BYTES // max(X[:1].nbytes, 1))
    for start in range(0, len(X), step):
        yield start, X[start : start + step]


def value_range(X) -> tuple[float, float]:
    """(min, max) of an array or :class:`MappedImages`, in one streaming pass for the latter."""
    if isinstance(X, MappedImages):
        lo, hi = np.inf, -np.inf
        for _, rows in X.chunks():
            lo, hi = min(lo, float(rows.min())), max(hi, float(rows.max()))
        return lo, hi
    return float(X.min()), float(X.max())
