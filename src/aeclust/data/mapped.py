"""Images that stay on disk: a ``.npy`` file read batch by batch (and the base class of
images on disk, :class:`DiskImages`).

:class:`MappedImages` is what the estimators, the trainer and batched encoding take in
place of an in-memory array when the images do not fit in memory (or need not be loaded).
Indexing it (``images[idx]``, ``images[a:b]``) reads those rows only and returns them as
float32 (N', C, H, W), scaled as :func:`~aeclust.data.load_array` scales the same file in
memory (uint8 / 255, uint16 / 65535, floats as stored), so a fit on the memory map and a
fit on ``load_array(path).X`` with the same seed give the same bits.
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .memory import npy_header

SCALES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
CHUNK_BYTES = 64 << 20  # rows read at once by the streaming passes


class DiskImages:
    """Images that stay on disk and are read a batch at a time (the base of
    :class:`MappedImages` and :class:`~aeclust.data.lazy.LazyFolder`).

    ``images[index]`` (an int array, a torch index tensor or a slice) returns those rows as
    float32 (N', C, H, W). ``subset(index)`` is a view of some rows (nothing is read).
    ``workers``: DataLoader worker processes that read the batches of training and encoding
    ahead of the model (0: read in the training process itself).
    """

    image_shape: tuple[int, int, int]  # (C, H, W) of one image
    rows: np.ndarray | None = None  # the rows of the source this view holds (None: all)
    workers: int = 0

    def _count(self) -> int:  # rows of the whole source
        raise NotImplementedError

    def _read(self, index: np.ndarray) -> np.ndarray:  # rows of the source, float32
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.image_shape)

    ndim = 4
    dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self._count() if self.rows is None else len(self.rows)

    def __getitem__(self, index) -> np.ndarray:
        one = np.ndim(index) == 0 and not isinstance(index, slice)  # images[i]: (C, H, W)
        index = self._positions(index)
        if self.rows is not None:
            index = self.rows[index]
        rows = self._read(index)
        return rows[0] if one else rows

    def subset(self, index) -> DiskImages:
        """The images at ``index`` (ints or a boolean mask), as a view that stays on disk."""
        index = self._positions(index)
        view = copy.copy(self)
        view.rows = index if self.rows is None else self.rows[index]
        view._stats = None  # its own values: see _scan
        return view

    def _positions(self, index) -> np.ndarray:
        """``index`` (an int, ints, a slice, a boolean mask or a torch tensor of these) as
        int64 positions in 0..len-1, negatives counted from the end, as numpy does."""
        if hasattr(index, "numpy"):  # a torch index tensor
            index = index.numpy()
        if isinstance(index, tuple):
            raise IndexError("images on disk are indexed by image only (one index)")
        if isinstance(index, slice):
            return np.arange(len(self))[index]
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise IndexError(f"a boolean mask of {index.shape} for {len(self)} images")
            return np.flatnonzero(index)
        index = index.astype(np.int64).reshape(-1)
        index = np.where(index < 0, index + len(self), index)
        if len(index) and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"index out of range for {len(self)} images")
        return index

    def chunks(self):
        """(start, rows) over all images, ``CHUNK_BYTES`` at a time (a streaming pass)."""
        return chunks(self)

    def check_finite(self) -> None:
        """Raise DataError if any value is NaN or infinite (a streaming pass, unless the
        source is finite by construction)."""
        bad = None if self.finite_by_construction else self._scan()[0]
        if bad is not None:
            raise DataError(
                f"The data contains NaN or infinite values (first at index {bad}). Remove or "
                "impute them first."
            )

    def value_bounds(self) -> tuple[float, float]:
        """(low, high) bounds of the values: [0, 1] for sources that lie in it by
        construction (decoded image files, uint8 and uint16 files), else the min and max."""
        return (0.0, 1.0) if self.unit_range_by_construction else self._scan()[1:]

    finite_by_construction = False  # integer files; decoded images (their reader checks)
    unit_range_by_construction = False  # decoded images; uint8 and uint16 files
    _stats: tuple | None = None  # (index of the first non-finite row or None, min, max)

    def _scan(self) -> tuple:
        """(first non-finite index or None, min, max; nan when not finite) of these rows,
        in one streaming pass made once (a view has its own)."""
        if self._stats is None:
            bad, lo, hi = None, np.inf, -np.inf
            for start, rows in self.chunks():
                rows = rows.reshape(len(rows), -1)
                wrong = np.flatnonzero(~np.isfinite(rows).all(axis=1))
                if len(wrong):
                    bad, lo, hi = int(start + wrong[0]), np.nan, np.nan
                    break
                lo, hi = min(lo, float(rows.min())), max(hi, float(rows.max()))
            self._stats = (bad, lo, hi)
        return self._stats


class MappedImages(DiskImages):
    """The (N, C, H, W) or (N, H, W) images of a ``.npy`` file (or an ``np.memmap``), read
    a batch at a time.

    A file is read with positioned reads (``os.pread``) of the rows a batch needs, not
    memory-mapped: pages of a memory map that training touched count in the process's
    resident memory until the kernel reclaims them, so an epoch over a 10 GB file would
    show 10 GB of RSS, and mapping the whole file needs address space of its size. Read
    rows go through the page cache, which the kernel shares and frees as it needs.
    """

    def __init__(self, source: str | os.PathLike | np.ndarray, workers: int = 0):
        self.array, self.path, self._file = None, None, None
        if isinstance(source, np.ndarray):
            self.array, self.path = source, getattr(source, "filename", None)
            shape, dtype = source.shape, source.dtype
        else:
            self.path = Path(source)
            if not self.path.is_file():
                raise DataError(f"'{self.path}' does not exist or is not a file.")
            shape, dtype, offset, fortran = npy_header(self.path)  # truncated: refused
            if fortran:
                raise DataError(
                    f"'{self.path.name}' is stored in Fortran order; save it in C order "
                    "(numpy.save(path, np.ascontiguousarray(X))) to read it batch by batch."
                )
        if len(shape) == 3:
            shape = (shape[0], 1, *shape[1:])
        # (N, H, W, C) is read as the file loader reads it: channels moved first per batch
        self.channels_last = len(shape) == 4 and shape[1] not in (1, 3, 4) and shape[3] in (1, 3, 4)
        self.stored_shape = tuple(int(s) for s in shape[1:])  # one image as stored
        if self.channels_last:
            shape = (shape[0], shape[3], shape[1], shape[2])
        if len(shape) != 4 or not (np.issubdtype(dtype, np.number) or dtype == np.bool_):
            raise DataError(
                f"A streamed image file must hold numeric (N, C, H, W) or (N, H, W) images; "
                f"'{self.path}' holds {dtype} of shape {tuple(shape)}."
            )
        if shape[0] == 0:
            raise DataError(f"'{self.path}' holds no images.")
        self.n, self.file_dtype = int(shape[0]), np.dtype(dtype)
        self.image_shape = tuple(int(s) for s in shape[1:])
        self.row_bytes = int(np.prod(self.image_shape)) * self.file_dtype.itemsize
        self.scale = SCALES.get(self.file_dtype)
        self.workers = workers
        if self.array is None:
            self._file = _RowFile(self.path, offset, self.row_bytes)

    def _count(self) -> int:
        return self.n

    def identity(self) -> dict:
        """What a checkpoint records of these images: their shape and a SHA-256 of the rows
        as stored (uint8 bytes of a cache, not their float32 form: a quarter of the bytes
        to hash, and no conversion), read in chunks."""
        h = hashlib.sha256(f"{self.file_dtype.str}{self.image_shape}".encode())
        rows = np.arange(len(self)) if self.rows is None else self.rows
        step = max(1, CHUNK_BYTES // self.row_bytes)
        for start in range(0, len(rows), step):
            h.update(self._stored(rows[start : start + step]).tobytes())
        return {"shape": list(self.shape), "dtype": str(self.file_dtype),
                "sha256": h.hexdigest()[:32]}  # fmt: skip

    def _read(self, index: np.ndarray) -> np.ndarray:
        rows = self._raw(index).astype(np.float32)
        if self.scale:
            rows /= self.scale
        return rows

    def _raw(self, index: np.ndarray) -> np.ndarray:
        """The rows at ``index`` in the file's dtype, (N', C, H, W)."""
        if self.channels_last:
            return np.ascontiguousarray(self._stored(index).transpose(0, 3, 1, 2))
        return self._stored(index)

    def _stored(self, index: np.ndarray) -> np.ndarray:
        """The rows at ``index`` as stored (the file's dtype and layout)."""
        if len(index) == 0:
            return np.empty((0, *self.stored_shape), dtype=self.file_dtype)
        if self.array is not None:
            raw = np.asarray(self.array[index]).reshape(len(index), *self.stored_shape)
        else:
            raw = np.empty((len(index), *self.stored_shape), dtype=self.file_dtype)
            flat = raw.reshape(len(index), -1).view(np.uint8)  # (N', row_bytes)
            # runs of consecutive rows are read at once (encoding reads slices)
            breaks = np.flatnonzero(np.diff(index) != 1) + 1
            for run in np.split(np.arange(len(index)), breaks):
                if len(run):
                    self._file.read(flat[run[0] : run[-1] + 1], int(index[run[0]]))
        return raw

    @property
    def finite_by_construction(self) -> bool:
        return not np.issubdtype(self.file_dtype, np.floating)

    @property
    def unit_range_by_construction(self) -> bool:
        return self.scale is not None  # uint8 / 255, uint16 / 65535


class _RowFile:
    """Rows of bytes at ``offset + row * row_bytes`` of a file, read with ``os.preadv``.
    Views of one :class:`MappedImages` share it; each process opens the file itself (a
    DataLoader worker gets a copy without the descriptor), and refuses a file that is no
    longer the one whose header was read (replaced, rewritten or cut since)."""

    def __init__(self, path: Path, offset: int, row_bytes: int):
        self.path, self.offset, self.row_bytes = path, offset, row_bytes
        self.fd, self.pid = os.open(path, os.O_RDONLY), os.getpid()
        self.stamp = _stamp(os.fstat(self.fd))  # what the other processes must find

    def read(self, out: np.ndarray, row: int) -> None:
        """Fill ``out`` (C-contiguous bytes of whole rows) with the rows from ``row`` on."""
        if self.fd is None or self.pid != os.getpid():
            fd = os.open(self.path, os.O_RDONLY)
            if _stamp(os.fstat(fd)) != self.stamp:
                os.close(fd)
                raise DataError(f"'{self.path}' was replaced or changed while in use; start "
                                "again on the new file.")  # fmt: skip
            self.fd, self.pid = fd, os.getpid()
        view, done = memoryview(out).cast("B"), 0
        start = self.offset + row * self.row_bytes
        while done < len(view):
            got = os.preadv(self.fd, [view[done:]], start + done)
            if got <= 0:
                raise DataError(f"'{self.path}' ended early while reading row {row}; was it "
                                "changed or cut while in use?")  # fmt: skip
            done += got

    def __getstate__(self):
        return {**self.__dict__, "fd": None, "pid": None}

    def __del__(self):
        if getattr(self, "fd", None) is not None and self.pid == os.getpid():
            os.close(self.fd)


def one_thread(_worker: int) -> None:
    """A DataLoader worker's init: it reads or decodes; the cores compute in the main
    process."""
    import torch

    torch.set_num_threads(1)


def _stamp(stat: os.stat_result) -> tuple:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def chunks(X):
    """(start, rows) over an array or :class:`MappedImages`, about ``CHUNK_BYTES`` at a
    time, so that a pass over data on disk never holds all of it."""
    step = max(1, CHUNK_BYTES // max(X[:1].nbytes, 1))
    for start in range(0, len(X), step):
        yield start, X[start : start + step]


def value_range(X) -> tuple[float, float]:
    """(min, max) of an array or of images on disk (one streaming pass, made once)."""
    if isinstance(X, DiskImages):
        return X._scan()[1:]
    return float(X.min()), float(X.max())
