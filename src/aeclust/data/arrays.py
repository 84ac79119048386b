"""Load images stored as arrays: NumPy ``.npy`` / ``.npz`` files and IDX files (MNIST format).

Array shapes accepted by both loaders (see :func:`as_images`):

- (N, C, H, W) channels-first images;
- (N, H, W, C) channels-last images, recognised when C is 1, 3 or 4 and the second axis
  is not (a channels-first array always wins, e.g. shape (N, 3, 32, 3) stays as is);
- (N, H, W) single-channel images;
- (N, D) flat vectors: reshaped to ``image_shape`` when given, else to 1 x s x s when
  D = s * s is a perfect square.

Values are kept as given, except uint8 and uint16 data, which are divided by 255 and
65535 (as the folder loader does); other values outside [0, 1] are kept with a warning.
"""

from __future__ import annotations

import gzip
import math
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import ImageSet
from .memory import check_fits, npy_header, read_header
from .validate import check_labels, to_images

X_KEYS = ("X", "x", "images")  # keys tried in order for the images of a .npz file
Y_KEYS = ("y", "labels")  # optional labels
OPTIONAL_KEYS = ("groups", "class_names")  # optional, kept when present

# IDX type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/)
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def as_images(X: np.ndarray, image_shape=None, source: str = "the array") -> np.ndarray:
    """Return ``X`` as float32 (N, C, H, W), applying the shape rules of this module.

    Parameters
    ----------
    X : ndarray of shape (N, C, H, W), (N, H, W, C), (N, H, W) or (N, D)
    image_shape : (C, H, W) or (H, W), optional
        Needed for flat vectors whose length is not a perfect square.
    source : str
        Named in error messages.
    """
    X = np.asarray(X)
    if X.dtype == object:
        raise DataError(f"{source} holds Python objects; save a numeric array instead.")
    if X.ndim == 2 and image_shape is None:
        side = math.isqrt(X.shape[1])
        if side * side != X.shape[1]:
            raise DataError(
                f"{source} holds flat vectors of length {X.shape[1]}, which is not a square "
                "number; pass image_shape=(C, H, W) with C*H*W equal to that length."
            )
        image_shape = (1, side, side)
    if X.ndim == 4 and X.shape[1] not in (1, 3, 4) and X.shape[3] in (1, 3, 4):
        X = X.transpose(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(X.dtype)
    images = to_images(X, image_shape=image_shape if X.ndim == 2 else None)
    if image_shape is not None and X.ndim > 2:
        expected = tuple(int(s) for s in image_shape)
        if expected[-2:] != images.shape[2:] or (
            len(expected) == 3 and expected != images.shape[1:]
        ):
            raise DataError(
                f"{source} holds images of shape {images.shape[1:]} (C, H, W), not the "
                f"image_shape={tuple(image_shape)} given; drop image_shape or fix it."
            )
    images = np.ascontiguousarray(images)
    if scale:
        images /= scale
    elif images.size and (images.min() < 0 or images.max() > 1):
        warnings.warn(
            f"{source} holds values from {images.min():.4g} to {images.max():.4g}, not pixel "
            "intensities in [0, 1]; they are used as given. The BCE loss needs [0, 1], and "
            "the pictures of the report assume it: divide by the maximum (e.g. X / 255) if "
            "these are 8-bit pixels.",
            stacklevel=2,
        )
    return images


def load_array(path: str | os.PathLike, *, image_shape=None) -> ImageSet:
    """Load images (and labels) from a ``.npy`` or ``.npz`` file.

    A ``.npy`` file holds the images only. A ``.npz`` file holds the images under the key
    ``X`` (or ``x``, ``images``) and optionally the labels under ``y`` (or ``labels``),
    ``groups`` (one per image) and ``class_names``. Pickled (object) arrays are refused.

    Parameters
    ----------
    path : str or path-like
    image_shape : (C, H, W) or (H, W), optional
        Shape of one image, for flat (N, D) arrays whose D is not a perfect square.

    Returns
    -------
    ImageSet
        ``X`` float32 (N, C, H, W), values as stored (uint8 divided by 255, uint16 by
        65535); ``y`` int64 (string labels are encoded in sorted order and kept as
        ``class_names``).
    """
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz"):
        raise DataError(f"'{path}' is not a .npy or .npz file; save the images with numpy.save.")
    _check_memory(path, suffix)
    arrays = _read_numpy(path)
    if suffix == ".npy":
        return ImageSet(X=as_images(arrays, image_shape, f"'{path.name}'"), name=path.name)
    x_key = next((k for k in X_KEYS if k in arrays), None)
    if x_key is None:
        raise DataError(
            f"'{path.name}' has no image array: expected one of the keys {', '.join(X_KEYS)}, "
            f"found {', '.join(arrays) or 'none'}. Save it with np.savez(path, X=images, y=labels)."
        )
    X = as_images(arrays[x_key], image_shape, f"'{path.name}'")
    y_key = next((k for k in Y_KEYS if k in arrays), None)
    y = None if y_key is None else arrays[y_key]
    images = ImageSet(X=X, y=check_labels(y, len(X)), name=path.name)
    if y is not None and y.dtype.kind in "USO":
        images.class_names = sorted(set(y.astype(str).tolist()))
    if "class_names" in arrays and images.class_names is None:
        images.class_names = [str(c) for c in arrays["class_names"]]
    if "groups" in arrays:
        groups = np.asarray(arrays["groups"])
        if groups.shape != (len(X),):
            raise DataError(
                f"'{path.name}' has groups of shape {groups.shape} for {len(X)} images; "
                "give one group per image."
            )
        images.groups = groups
    return images


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (plain or gzip-compressed) into an array in native byte order.

    The format: two zero bytes, a type code (0x08 ubyte, 0x09 byte, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a
    big-endian uint32, then the data, big-endian, row-major.
    """
    path = _existing_file(path)
    _check_idx_memory(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
        if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the suffix
            data = gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise DataError(
            f"'{path.name}' could not be decompressed ({exc}); it is probably truncated. "
            "Download it again."
        ) from exc
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in IDX_DTYPES or data[3] == 0:
        raise DataError(
            f"'{path.name}' is not an IDX file (bad magic number {data[:4].hex() or 'none'}; "
            "expected 0000 followed by a type code such as 08 and the number of dimensions). "
            "Give an MNIST-style *-idx3-ubyte[.gz] file."
        )
    ndim, dtype = data[3], np.dtype(IDX_DTYPES[data[2]])
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"'{path.name}' is truncated inside its header; download it again.")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = math.prod(shape) * dtype.itemsize
    found = len(data) - header
    if found < expected:
        raise DataError(
            f"'{path.name}' is truncated: its header announces shape {shape} "
            f"({expected} bytes of data) but only {found} bytes follow. Download it again."
        )
    if found > expected:
        warnings.warn(f"'{path.name}' has {found - expected} extra bytes; ignored.", stacklevel=2)
    array = np.frombuffer(data, dtype, count=math.prod(shape), offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="))


def idx_labels_path(images_path: str | os.PathLike) -> Path | None:
    """The label file that goes with an IDX image file, if it exists next to it.

    ``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``;
    ``train-images.idx`` -> ``train-labels.idx``.
    """
    path = Path(images_path)
    name = path.name
    if "images-idx3" in name:
        name = name.replace("images-idx3", "labels-idx1")
    elif "images" in name:
        name = name.replace("images", "labels")
    else:
        return None
    candidate = path.with_name(name)
    return candidate if candidate.is_file() else None


def load_idx(
    images_path: str | os.PathLike, labels_path: str | os.PathLike | None = None
) -> ImageSet:
    """Load images (and labels) from IDX files such as MNIST's ``*-images-idx3-ubyte.gz``.

    Parameters
    ----------
    images_path : str or path-like
        IDX file of shape (N, H, W) (or any shape accepted by :func:`as_images`).
    labels_path : str or path-like, optional
        IDX file of shape (N,).

    Returns
    -------
    ImageSet
        ``X`` float32 (N, C, H, W), ubyte data divided by 255; ``y`` int64 or None.
    """
    name = Path(images_path).name
    raw = read_idx(images_path)
    if raw.ndim == 1:
        raise DataError(
            f"'{name}' holds a 1-D array (labels?); give the images file, e.g. "
            "train-images-idx3-ubyte.gz, and the labels as labels_path."
        )
    X = as_images(raw, source=f"'{name}'")
    y = None
    if labels_path is not None:
        y = read_idx(labels_path)
        if y.ndim != 1:
            raise DataError(
                f"'{Path(labels_path).name}' has shape {y.shape}; a label file holds a 1-D array."
            )
        y = check_labels(y, len(X))
    return ImageSet(X=X, y=y, name=name)


def _existing_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"The file '{path}' does not exist; check the path.")
    if not path.is_file():
        raise DataError(f"'{path}' is not a file; give a .npy, .npz or IDX file.")
    return path


def _read_numpy(path: Path):
    """The array of a .npy file, or a dict of the arrays of a .npz file (no pickles)."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":  # .npy header or zip (.npz)
        raise DataError(
            f"'{path.name}' is not a NumPy file (it starts with {magic!r}); "
            "save the images with numpy.save or numpy.savez."
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {key: loaded[key] for key in loaded.files}
        return loaded
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"'{path.name}' holds Python objects (pickled), which are not loaded for safety; "
                "save plain numeric arrays, e.g. np.save(path, X.astype(np.float32))."
            ) from exc
        raise DataError(f"'{path.name}' is not a valid NumPy file ({exc}).") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"'{path.name}' could not be read as a NumPy file ({exc}).") from exc


def loaded_bytes(shape, dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` read and then turned into float32
    images (both exist for a moment)."""
    n = math.prod(shape)
    return n * 4 + (0 if np.dtype(dtype) == np.float32 else n * np.dtype(dtype).itemsize)


def _check_memory(path: Path, suffix: str) -> None:
    """The memory guard (:mod:`aeclust.data.memory`) for a .npy or .npz file, from the
    array headers alone; a truncated .npy is refused here too."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if suffix == ".npy" and magic == b"\x93NUMPY":
        shape, dtype, _, _ = npy_header(path)
        check_fits(loaded_bytes(shape, dtype), f"'{path.name}' ({dtype}, shape {shape})")
        return
    if magic[:4] != b"PK\x03\x04":
        return  # _read_numpy names the problem
    total = 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as member:
                    try:
                        shape, dtype, _ = read_header(member)
                    except (ValueError, TypeError):
                        continue  # not an array; _read_numpy names it
                total += loaded_bytes(shape, dtype)
    except (OSError, zipfile.BadZipFile):
        return  # _read_numpy names the problem
    check_fits(total, f"the arrays of '{path.name}'")


def _check_idx_memory(path: Path) -> None:
    """The memory guard for an IDX file, from its header (decompressing only that)."""
    with open(path, "rb") as f:
        opener = gzip.open if f.read(2) == b"\x1f\x8b" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] not in IDX_DTYPES:
                return  # read_idx names the problem
            dims = f.read(4 * head[3])
    except (OSError, EOFError):
        return
    if len(dims) < 4 * head[3]:
        return
    shape = tuple(int(d) for d in np.frombuffer(dims, ">u4"))
    dtype = np.dtype(IDX_DTYPES[head[2]])
    check_fits(loaded_bytes(shape, dtype) + path.stat().st_size, f"'{path.name}' (shape {shape})")
