"""Load a folder of image files (PNG, JPEG, TIFF, BMP, GIF) into an :class:`ImageSet`.

Three layouts are understood (see :func:`detect_layout`)::

    flat             root/a.png, root/b.png                  no labels
    classes          root/cat/a.png, root/dog/b.png          label = "cat", "dog"
    groups/classes   root/patient7/0/a.png, root/patient7/1/b.png
                                                             label = "0", "1"; group = "patient7"

The last one is the public breast-histopathology (IDC) layout: one folder per patient,
inside it one folder per class.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ConfigError, DataError
from ..progress import progress
from .dataset import ImageSet
from .memory import check_fits, images_bytes

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
LAYOUTS = ("auto", "flat", "classes", "groups/classes")
COLORS = ("auto", "gray", "rgb")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
HIGH_DEPTH_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}  # read as numbers, not 8-bit
_SKIPPED_DIRS = {"__MACOSX"}
_PROGRESS_MIN = 2000  # show a progress bar above this many files
_MAX_LISTED = 10
_BAD_FILE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def check_image_size(image_size) -> tuple[int, int] | None:
    """Return ``image_size`` (an int or (H, W)) as a (H, W) tuple, or None."""
    if image_size is None:
        return None
    size = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    if len(size) != 2 or not all(_is_positive_int(s) for s in size):
        raise ConfigError(
            f"image_size={image_size!r} is not valid; give a positive int (square images) "
            "or a pair (height, width) of positive ints."
        )
    return int(size[0]), int(size[1])


def _is_positive_int(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value > 0


def check_color(color: str) -> str:
    """Return ``color`` if it is one of :data:`COLORS`, or raise."""
    if color not in COLORS:
        raise ConfigError(f"color={color!r} is not valid; use one of {', '.join(COLORS)}.")
    return color


def detect_layout(files: list[str]) -> str:
    """Guess the layout of a folder from the relative paths of its image files.

    - any image directly in the root: ``"flat"``;
    - every image exactly two folders deep and more first-level folders than distinct
      second-level names (many patients, few classes, as in IDC): ``"groups/classes"``;
    - otherwise: ``"classes"``, labelled by the first-level folder.

    Parameters
    ----------
    files : list of str
        Paths relative to the root, with "/" separators.
    """
    parts = [f.split("/") for f in files]
    if any(len(p) == 1 for p in parts):
        return "flat"
    if all(len(p) == 3 for p in parts):
        n_first = len({p[0] for p in parts})
        n_second = len({p[1] for p in parts})
        if n_second < n_first:
            return "groups/classes"
    return "classes"


def load_folder(
    path: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    color: str = "auto",
    skip_bad: bool = False,
    recursive: bool = True,
    layout: str = "auto",
    stream: bool = False,
) -> ImageSet:
    """Load every image file under ``path``.

    Parameters
    ----------
    path : str or path-like
        The root folder.
    image_size : int or (H, W), optional
        Resize every image to this size (Pillow, bilinear with antialiasing when shrinking).
        Required when the images do not all have the same size.
    color : {"auto", "gray", "rgb"}
        "auto" gives 1 channel when every file has a grayscale mode (1, L, LA, I, I;16, F)
        and 3 channels otherwise; palette images (P) count as color. Alpha is dropped,
        not composited.
    skip_bad : bool
        Skip files that are not images or are corrupt, with a warning, instead of raising.
    recursive : bool
        Also read images in folders below the layout's own folders (e.g. ``cat/indoor/a.png``
        for "classes"). With False only ``root/*``, ``root/<class>/*`` or
        ``root/<group>/<class>/*`` are read.
    layout : {"auto", "flat", "classes", "groups/classes"}
        How labels and groups are read from the folder names; "auto" uses
        :func:`detect_layout`.
    stream : bool
        Decode nothing now: ``X`` is a :class:`~aeclust.data.lazy.LazyFolder` that decodes
        the images a batch needs when it is read (in DataLoader worker processes when its
        ``workers`` > 0), so the folder may be far larger than memory. The file list,
        labels and groups are known up front; files whose header cannot be read are found
        now, a file that fails only when decoded fails when it is first read (`aeclust
        cache` reads every file once and keeps the pixels in a memory-mapped .npy).

    Returns
    -------
    ImageSet
        ``X`` float32 (N, C, H, W) in [0, 1]: 8-bit images are divided by 255, 16-bit ones
        by 65535 (mode I is assumed to hold 16-bit data), float images are clipped.
        ``names`` are the sorted paths relative to ``path``; ``y`` (int64) and
        ``class_names`` come from the class folders, ``groups`` (str) from the group folders.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"The folder '{root}' does not exist; check the path.")
    if not root.is_dir():
        raise DataError(
            f"'{root}' is a file, not a folder; give a folder of images, or a .npy/.npz/IDX file "
            "to the array loaders."
        )
    size = check_image_size(image_size)
    check_color(color)
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r} is not valid; use one of {', '.join(LAYOUTS)}.")

    files, dirs = _scan(root)
    if not files:
        raise DataError(
            f"No image files found in '{root}'. Accepted extensions: "
            f"{', '.join(IMAGE_EXTENSIONS)} (any case); hidden files are ignored."
        )
    if layout == "auto":
        layout = detect_layout(files)
        logger.info("Reading '%s' with layout %r.", root, layout)
        _warn_mixed_depths(files, layout)
    files, label_depth = _select(files, layout, recursive, root)

    # Two passes: headers first (modes and sizes fix the array shape), then pixels. Files
    # that fail either pass are reported together, so one run lists every bad file.
    modes, sizes, bad = _read_headers(root, files)
    readable = [f for f in files if f not in bad]
    if not readable:
        _drop_bad(files, bad, skip_bad, root)  # raises: nothing could be read
    channels, size = _image_shape(readable, modes, sizes, size, color)
    if stream:
        from .lazy import LazyFolder

        files = _drop_bad(files, dict(sorted(bad.items())), skip_bad, root)
        X = LazyFolder(root, files, channels, size)
    else:
        X, decode_bad = _read_pixels(root, readable, channels, size)
        bad.update(decode_bad)
        files = _drop_bad(files, dict(sorted(bad.items())), skip_bad, root)
        if len(X) != len(files):  # rows of files that failed to decode are at the end
            X.resize((len(files), *X.shape[1:]), refcheck=False)
    _warn_empty_dirs(dirs, files, label_depth, recursive)

    images = ImageSet(X=X, names=files, name=root.name or str(root))
    if layout != "flat":
        parts = [f.split("/") for f in files]
        classes = [p[label_depth - 1] for p in parts]
        images.class_names = sorted(set(classes))
        index = {c: k for k, c in enumerate(images.class_names)}
        images.y = np.array([index[c] for c in classes], dtype=np.int64)
        if layout == "groups/classes":
            images.groups = np.array([p[0] for p in parts])
    return images


def _scan(root: Path) -> tuple[list[str], list[str]]:
    """Sorted relative paths of the image files and of the folders under ``root``."""
    files, dirs, others = [], [], []
    for here, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and d not in _SKIPPED_DIRS]
        rel = Path(here).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs += [prefix + d for d in subdirs]
        for name in names:
            if name.startswith("."):
                continue
            if name.lower().endswith(IMAGE_EXTENSIONS):
                files.append(prefix + name)
            else:
                others.append(prefix + name)
    if others:
        shown = ", ".join(others[:_MAX_LISTED]) + (" ..." if len(others) > _MAX_LISTED else "")
        logger.warning(
            "Ignored %d file(s) without an image extension in '%s': %s", len(others), root, shown
        )
    return sorted(files), sorted(dirs)


def _select(files: list[str], layout: str, recursive: bool, root: Path) -> tuple[list[str], int]:
    """Keep the files the layout reads; return them and the depth of the label folder."""
    label_depth = {"flat": 0, "classes": 1, "groups/classes": 2}[layout]
    depths = [f.count("/") for f in files]
    too_shallow = [f for f, d in zip(files, depths, strict=True) if d < label_depth]
    if too_shallow:
        where = {1: "inside a class folder", 2: "inside <group>/<class>/ folders"}[label_depth]
        raise DataError(
            f"layout={layout!r} expects every image {where}, but {len(too_shallow)} are not "
            f"(e.g. '{too_shallow[0]}'). Move them, or choose another layout "
            f"({', '.join(LAYOUTS)})."
        )
    if not recursive:
        files = [f for f, d in zip(files, depths, strict=True) if d == label_depth]
        if not files:
            raise DataError(
                f"No images directly in the {layout!r} folders of '{root}' (all are deeper); "
                "pass recursive=True to read sub-folders too."
            )
    return files, label_depth


def _read_headers(root: Path, files: list[str]):
    """Open every file lazily (no decoding): its mode and (H, W), and the unreadable ones."""
    modes, sizes, bad = {}, {}, {}
    few = len(files) <= _PROGRESS_MIN
    for f in progress(files, desc="Checking images", unit="img", disable=few):
        try:
            with Image.open(root / f) as im:
                modes[f], sizes[f] = im.mode, (im.height, im.width)
        except _BAD_FILE_ERRORS as exc:
            bad[f] = exc
    return modes, sizes, bad


def _drop_bad(files: list[str], bad: dict, skip_bad: bool, root: Path) -> list[str]:
    """Raise listing the bad files, or warn and return the good ones when ``skip_bad``."""
    if not bad:
        return files
    listed = "; ".join(f"'{f}' ({_reason(exc)})" for f, exc in list(bad.items())[:_MAX_LISTED])
    more = f" and {len(bad) - _MAX_LISTED} more" if len(bad) > _MAX_LISTED else ""
    if not skip_bad:
        raise DataError(
            f"{len(bad)} file(s) in '{root}' are not images or are corrupt: {listed}{more}. "
            "Remove or replace them, or pass skip_bad=True (CLI: --skip-bad) to skip them "
            "with a warning."
        )
    warnings.warn(f"Skipped {len(bad)} unreadable file(s): {listed}{more}.", stacklevel=3)
    good = [f for f in files if f not in bad]
    if not good:
        raise DataError(f"None of the image files in '{root}' could be read.")
    return good


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file"
    return f"{type(exc).__name__}: {exc}"


def _image_shape(files, modes, sizes, size, color) -> tuple[int, tuple[int, int]]:
    """(channels, (H, W)) of the images read from ``files`` with ``size`` and ``color``;
    raise when they differ in size and no ``size`` is given."""
    if color == "auto":
        channels = 1 if all(modes[f] in GRAY_MODES for f in files) else 3
    else:
        channels = 1 if color == "gray" else 3
    if size is None:
        size = sizes[files[0]]
        other = next((f for f in files if sizes[f] != size), None)
        if other is not None:
            n_sizes = len(Counter(sizes[f] for f in files))
            raise DataError(
                f"The images have {n_sizes} different sizes, e.g. '{files[0]}' is "
                f"{size[0]}x{size[1]} and '{other}' is {sizes[other][0]}x{sizes[other][1]} "
                "(height x width). Pass image_size (CLI: --image-size) to resize them all."
            )
    return channels, size


def _read_pixels(root: Path, files, channels: int, size) -> tuple[np.ndarray, dict]:
    """Decode every file into one preallocated (N, C, H, W) float32 array.

    Files that fail to decode are reported in the returned dict; the array rows of the
    good files come first, in order, so the caller can cut the array to the good count.
    """
    what = f"{len(files)} images of {channels}x{size[0]}x{size[1]} from '{root}'"
    check_fits(images_bytes(len(files), channels, *size), what)
    X = np.empty((len(files), channels, *size), dtype=np.float32)  # (N, C, H, W)
    bad, k = {}, 0
    few = len(files) <= _PROGRESS_MIN
    for f in progress(files, desc="Reading images", unit="img", disable=few):
        try:
            _decode(root / f, X[k], size)
            k += 1
        except _BAD_FILE_ERRORS as exc:
            bad[f] = exc
    return X, bad


def _decode(path: Path, out: np.ndarray, size: tuple[int, int]) -> None:
    """Decode one image (first frame) into ``out`` of shape (C, H, W), values in [0, 1]."""
    channels, (height, width) = out.shape[0], size
    with Image.open(path) as im:
        if im.mode in HIGH_DEPTH_MODES:  # 16-bit, 32-bit int or float grayscale
            plane = np.asarray(im, dtype=np.float32)
            if not np.isfinite(plane).all():  # a float image; named as a bad file
                raise ValueError("the image holds NaN or infinite values")
            if im.mode != "F":
                plane = plane / 65535.0
            if plane.shape != size:
                resized = Image.fromarray(plane).resize((width, height), Image.Resampling.BILINEAR)
                plane = np.asarray(resized)
            out[:] = np.clip(plane, 0.0, 1.0)  # broadcast to 1 or 3 channels
            return
        im = im.convert("L" if channels == 1 else "RGB")  # drops alpha; palette -> colors
        if im.size != (width, height):
            im = im.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(im)  # uint8, (H, W) or (H, W, 3)
    out[:] = pixels if channels == 1 else pixels.transpose(2, 0, 1)
    out /= 255.0


def _warn_mixed_depths(files: list[str], layout: str) -> None:
    """Warn when a few top-level images made a folder of class folders read as unlabelled."""
    top = [f for f in files if "/" not in f]
    if layout == "flat" and len(top) < len(files):
        listed = ", ".join(f"'{f}'" for f in top[:_MAX_LISTED])
        more = f" and {len(top) - _MAX_LISTED} more" if len(top) > _MAX_LISTED else ""
        warnings.warn(
            f"{len(top)} image(s) lie directly in the folder ({listed}{more}) beside "
            f"{len(files) - len(top)} in sub-folders, so all are read as one unlabelled set "
            "and the sub-folder names are not used as labels. To label the images by "
            "sub-folder, move those top-level images into one or delete them.",
            stacklevel=3,
        )


def _warn_empty_dirs(dirs: list[str], files: list[str], depth: int, recursive: bool) -> None:
    """Warn about class folders without a (readable) image: they do not become classes."""
    if depth == 0:
        return
    if recursive:
        used = {"/".join(f.split("/")[:depth]) for f in files}
    else:
        used = {f.rsplit("/", 1)[0] for f in files}
    empty = [d for d in dirs if d.count("/") == depth - 1 and d not in used]
    if empty:
        listed = ", ".join(f"'{d}'" for d in empty[:_MAX_LISTED])
        more = f" and {len(empty) - _MAX_LISTED} more" if len(empty) > _MAX_LISTED else ""
        warnings.warn(
            f"Skipped {len(empty)} class folder(s) without images: {listed}{more}.",
            stacklevel=3,
        )
