"""An image folder decoded lazily: the files a batch needs are decoded when it is read.

:func:`~aeclust.data.load_folder` with ``stream=True`` (CLI: ``--stream`` on a folder)
returns an :class:`~aeclust.data.ImageSet` whose ``X`` is a :class:`LazyFolder`: the file
list, labels and groups are known up front, the pixels are decoded (resized, converted to
gray or RGB, as the eager loader does, with the same code) only for the rows a batch
reads. With ``workers`` > 0 the training loop and batched encoding decode the next batches
in DataLoader worker processes while the model computes. For repeated runs on the same
folder, ``aeclust cache`` decodes every file once into a uint8 memory-mapped ``.npy``
(:mod:`aeclust.data.cache`), which is read far faster than PNGs are decoded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from .folder import _BAD_FILE_ERRORS, _decode
from .mapped import DiskImages


class LazyFolder(DiskImages):
    """The images ``root/files[i]``, decoded to float32 (C, H, W) = (``channels``,
    ``size``) in [0, 1] when read."""

    def __init__(self, root: str | Path, files: list[str], channels: int,
                 size: tuple[int, int], workers: int = 0):  # fmt: skip
        self.root, self.files = Path(root), list(files)
        self.image_shape = (int(channels), int(size[0]), int(size[1]))
        self.workers = workers

    def _count(self) -> int:
        return len(self.files)

    def _read(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index), *self.image_shape), dtype=np.float32)
        for k, i in enumerate(index):
            path = self.root / self.files[i]
            try:
                _decode(path, out[k], self.image_shape[1:])
            except _BAD_FILE_ERRORS as exc:
                raise DataError(
                    f"'{path}' could not be decoded ({type(exc).__name__}: {exc}); remove or "
                    "replace it (`aeclust cache` reads every file once and lists the bad ones)."
                ) from exc
        return out

    # decoded images are finite and in [0, 1]: a float image holding NaN or infinite values
    # is refused as a bad file when it is decoded (and named, as an unreadable file is)
    finite_by_construction = unit_range_by_construction = True

    def identity(self) -> dict:
        """What a checkpoint records of these images: their shape and a hash of the file
        list with each file's size and modification time (hashing the pixels would decode
        the whole folder at every start)."""
        h = hashlib.sha256(str(self.image_shape).encode())
        rows = range(len(self)) if self.rows is None else self.rows
        for i in rows:
            stat = (self.root / self.files[i]).stat()
            h.update(f"{self.files[i]}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        return {"shape": list(self.shape), "dtype": "float32", "files": h.hexdigest()[:32]}
