"""A folder of images decoded once into a uint8 memory-mapped ``.npy`` (``aeclust cache``).

Decoding PNGs is the slow part of streaming an image folder: a 50×50 tile resized to
250×250 costs more to decode than a small network spends on it. :func:`cache_folder`
decodes every file once (in ``workers`` processes), writes the pixels as uint8
(N, C, H, W) into ``OUT.npy`` and the file names, labels, groups and class names into
``OUT.json`` beside it. ``load_dataset("OUT.npy", stream=True)`` (CLI: ``--data OUT.npy
--stream``) then memory-maps the pixels and reads the labels back, so later runs read
bytes instead of decoding images.

8-bit images are stored exactly (the cache reads back as the same float32 values as the
folder, bit for bit); 16-bit and float images are rounded to 8 bits. Both files are
written under temporary names and renamed when complete, so an interrupted cache leaves
no file that a run could mistake for a whole one.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..errors import ConfigError, DataError
from ..progress import progress
from .dataset import ImageSet
from .folder import _BAD_FILE_ERRORS, _decode, load_folder
from .mapped import one_thread
from .memory import write_npy_header

log = logging.getLogger(__name__)

FORMAT = "aeclust-cache"
VERSION = 1
BATCH = 256  # images decoded per worker task


def sidecar(path: str | os.PathLike) -> Path:
    """The JSON file that holds the names and labels of the cache ``path`` (``.npy``)."""
    return Path(path).with_suffix(".json")


def cache_folder(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    image_size=None,
    color: str = "auto",
    skip_bad: bool = False,
    workers: int = 2,
    overwrite: bool = False,
    show_progress: bool = True,
) -> ImageSet:
    """Decode every image under ``folder`` into ``out`` (a ``.npy``) and its sidecar JSON;
    returns the cache as an :class:`ImageSet` whose ``X`` is memory-mapped.

    ``image_size``, ``color`` and ``skip_bad`` are those of :func:`load_folder`; a file
    that cannot be decoded is named (or, with ``skip_bad``, left out with a warning).
    """
    out = Path(out)
    if out.suffix.lower() != ".npy":
        raise ConfigError(f"The cache is a .npy file; give --out a name ending in .npy, "
                          f"not '{out.name}'.")  # fmt: skip
    meta_path = sidecar(out)
    if not overwrite and (out.exists() or meta_path.exists()):
        raise ConfigError(f"'{out}' already exists; pass --overwrite to write it again.")
    if not out.parent.is_dir():
        raise ConfigError(f"The folder of '{out}' does not exist; create it first.")
    images = load_folder(folder, image_size=image_size, color=color, skip_bad=skip_bad,
                         stream=True)  # fmt: skip
    lazy = images.X
    shape = (len(lazy), *lazy.image_shape)
    _check_disk(out.parent, int(np.prod(shape)))
    tmp_npy, tmp_meta = out.with_name(f".{out.name}.partial"), meta_path.with_name(
        f".{meta_path.name}.partial")  # fmt: skip
    try:
        with open(tmp_npy, "wb") as f:  # written in order, not memory-mapped: bounded RSS
            write_npy_header(f, shape, np.uint8)
            bad = _decode_all(lazy, f, workers, show_progress)
        keep = np.ones(len(lazy), dtype=bool)
        if bad:
            listed = "; ".join(f"'{lazy.files[i]}' ({why})" for i, why in sorted(bad.items())[:5])
            if not skip_bad:
                raise DataError(
                    f"{len(bad)} file(s) could not be decoded: {listed}. Remove or replace "
                    "them, or pass --skip-bad to leave them out of the cache."
                )
            if len(bad) == len(lazy):
                raise DataError(f"None of the {len(bad)} files could be decoded ({listed}).")
            log.warning("left out %d file(s) that could not be decoded: %s", len(bad), listed)
            keep[list(bad)] = False
            _compact(tmp_npy, keep)
        meta = _metadata(images, keep, Path(folder), image_size, color)
        tmp_meta.write_text(json.dumps(meta))
        out.unlink(missing_ok=True)  # --overwrite: never new labels beside old pixels
        os.replace(tmp_meta, meta_path)  # the labels first: a .npy alone is never a cache
        os.replace(tmp_npy, out)
    finally:
        for tmp in (tmp_npy, tmp_meta):
            tmp.unlink(missing_ok=True)
    log.info("cached %d images of %s into %s", int(keep.sum()), "x".join(map(str, shape[1:])),
             out)  # fmt: skip
    return read_cache_labels(ImageSet(X=np.load(out, mmap_mode="r"), name=out.name), out)


def read_cache_labels(images: ImageSet, path: str | os.PathLike) -> ImageSet:
    """``images`` (the pixels of the ``.npy`` at ``path``) with the names, labels, groups
    and class names of its sidecar JSON, when ``path`` is an ``aeclust cache``."""
    meta_path = sidecar(path)
    if not meta_path.is_file():
        return images
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"'{meta_path}' is not a readable cache description ({exc}); "
                        "write the cache again with `aeclust cache`.") from exc  # fmt: skip
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        return images  # some other JSON that happens to share the name
    if meta.get("count") != len(images):
        raise DataError(
            f"'{meta_path}' describes {meta.get('count')} images but '{Path(path).name}' holds "
            f"{len(images)}; the two files do not belong together. Write the cache again."
        )
    images.names = meta["names"]
    if meta.get("y") is not None:
        images.y = np.asarray(meta["y"], dtype=np.int64)
        images.class_names = meta.get("class_names")
    if meta.get("groups") is not None:
        images.groups = np.asarray(meta["groups"])
    images.name = meta.get("name", images.name)
    return images


class _Decoded(Dataset):
    """Item b: (start, uint8 pixels of rows start..start+BATCH, {row: reason} of the bad)."""

    def __init__(self, lazy):
        self.lazy = lazy

    def __len__(self) -> int:
        return -(-len(self.lazy) // BATCH)

    def __getitem__(self, b: int):
        start = b * BATCH
        rows = range(start, min(start + BATCH, len(self.lazy)))
        out = np.zeros((len(rows), *self.lazy.image_shape), dtype=np.float32)
        bad = {}
        for k, i in enumerate(rows):
            try:
                _decode(self.lazy.root / self.lazy.files[i], out[k], self.lazy.image_shape[1:])
            except _BAD_FILE_ERRORS as exc:
                bad[i] = f"{type(exc).__name__}: {exc}"
        pixels = np.rint(out * 255.0).astype(np.uint8)  # exact for 8-bit images
        return start, torch.from_numpy(pixels), bad


def _decode_all(lazy, f, workers: int, show_progress: bool) -> dict:
    """Write the decoded images of ``lazy`` to ``f``, in order; {row: reason} of bad files
    (their rows are zeros)."""
    loader = DataLoader(_Decoded(lazy), batch_size=None, num_workers=max(0, int(workers)),
                        worker_init_fn=one_thread)  # fmt: skip
    bad = {}
    with progress(total=len(lazy), desc="caching", unit="img", disable=not show_progress) as bar:
        for _, rows, batch_bad in loader:  # in order: the loader keeps the task order
            f.write(rows.numpy().tobytes())
            bad.update(batch_bad)
            bar.update(len(rows))
    return bad


def _compact(path: Path, keep: np.ndarray) -> None:
    """Rewrite the cache at ``path`` with only the rows of ``keep`` (a batch at a time)."""
    from .mapped import MappedImages

    source = MappedImages(path)
    other = path.with_name(path.name + ".compact")
    rows = np.flatnonzero(keep)
    try:
        with open(other, "wb") as f:
            write_npy_header(f, (len(rows), *source.image_shape), np.uint8)
            for start in range(0, len(rows), BATCH):
                part = rows[start : start + BATCH]
                f.write(np.rint(source[part] * 255.0).astype(np.uint8).tobytes())
        os.replace(other, path)
    finally:
        other.unlink(missing_ok=True)


def _metadata(images: ImageSet, keep: np.ndarray, folder: Path, image_size, color) -> dict:
    rows = np.flatnonzero(keep)
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": str(folder.resolve()),
        "name": images.name,
        "image_size": None if image_size is None else [int(s) for s in np.resize(image_size, 2)],
        "color": color,
        "count": len(rows),
        "names": [images.names[i] for i in rows],
        "y": None if images.y is None else images.y[rows].tolist(),
        "class_names": images.class_names,
        "groups": None if images.groups is None else images.groups[rows].tolist(),
    }


def _check_disk(folder: Path, nbytes: int) -> None:
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    if nbytes > free:
        raise DataError(
            f"The cache needs {nbytes / 1e9:.1f} GB but '{folder}' has {free / 1e9:.1f} GB free; "
            "write it elsewhere (--out on a larger disk) or pick a smaller --image-size."
        )
