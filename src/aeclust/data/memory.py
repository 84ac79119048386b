"""The memory guard: estimate what loading would take before anything is loaded.

A loader that would need more memory than the process can get is refused with a
:class:`~aeclust.errors.DataError` that names the size and the streaming option, instead of
being killed by the kernel (or ending in numpy's ``Unable to allocate 68.2 TiB``).

What the process can get is the smallest of: the memory the kernel reports as available
(``MemAvailable`` of ``/proc/meminfo``), the cgroup's limit (containers), and the process's
own limits on its data segment and address space (``ulimit -d`` / ``-v``) minus what it
already uses. Loading may take :data:`MARGIN` of that: training, the codes and the figures
need the rest.
"""

from __future__ import annotations

import math
import os
import resource
from pathlib import Path

import numpy as np

from ..errors import DataError

MARGIN = 0.8  # share of the available memory a loader may take
STREAM_HINT = (
    "Stream the images from disk instead: `--stream` on the command line, or "
    "`load_dataset(path, stream=True)` / `MappedImages(path)` in Python (a folder is best "
    "converted once with `aeclust cache --data DIR --out images.npy`)."
)


def available_bytes() -> int:
    """Bytes this process can still allocate (see the module docstring)."""
    limits = [_meminfo_available(), _cgroup_free()]
    status = _status()
    for which, used in ((resource.RLIMIT_DATA, "VmData"), (resource.RLIMIT_AS, "VmSize")):
        soft, _ = resource.getrlimit(which)
        if soft != resource.RLIM_INFINITY:
            limits.append(max(0, soft - status.get(used, 0)))
    known = [x for x in limits if x is not None]
    return min(known) if known else 1 << 62


def check_fits(nbytes: int, what: str, hint: str = STREAM_HINT) -> None:
    """Raise DataError when ``nbytes`` exceed :data:`MARGIN` of :func:`available_bytes`;
    ``what`` names the data in the message."""
    free = available_bytes()
    if nbytes > MARGIN * free:
        raise DataError(
            f"Loading {what} into memory would need {_size(nbytes)}, more than this process "
            f"can take ({_size(free)} available, of which {MARGIN:.0%} may go to the data). "
            f"{hint}"
        )


def images_bytes(n: int, channels: int, height: int, width: int) -> int:
    """Bytes of (n, C, H, W) float32 images, the in-memory form of every loader."""
    return n * channels * height * width * 4


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, int, bool]:
    """(shape, dtype, offset of the data, Fortran order) of a ``.npy`` file, read from its
    header alone; a file shorter than its header promises is refused as truncated."""
    with open(path, "rb") as f:
        try:
            shape, dtype, fortran = read_header(f)
        except ValueError as exc:
            raise DataError(f"'{path.name}' is not a valid NumPy file ({exc}).") from exc
        offset = f.tell()
    if dtype.hasobject:
        raise DataError(
            f"'{path.name}' holds Python objects (pickled), which are not loaded for safety; "
            "save plain numeric arrays, e.g. np.save(path, X.astype(np.float32))."
        )
    expected = math.prod(shape) * dtype.itemsize
    found = path.stat().st_size - offset
    if found < expected:
        raise DataError(
            f"'{path.name}' is truncated: its header announces {dtype} of shape {shape} "
            f"({_size(expected)} of data) but only {found} bytes follow. Write it again "
            "(an interrupted copy or numpy.save?)."
        )
    return tuple(int(s) for s in shape), dtype, offset, fortran


def read_header(f) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, Fortran order) from the header of the ``.npy`` data at ``f``'s
    position (a file or a member of a ``.npz``); ValueError if it is not one. ``f`` is left
    at the first byte of the data."""
    major, _ = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if major == 1 else (
        np.lib.format.read_array_header_2_0)  # fmt: skip
    shape, fortran, dtype = read(f, max_header_size=1 << 20)
    return shape, dtype, bool(fortran)


def write_npy_header(f, shape, dtype) -> None:
    """Write the header of a C-ordered ``.npy`` of ``shape`` and ``dtype`` at ``f``'s
    position; the rows are then written (or filled in place) after it."""
    np.lib.format.write_array_header_1_0(
        f, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
            "shape": tuple(int(s) for s in shape)})  # fmt: skip


def _size(nbytes: float) -> str:
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(nbytes) < 1000 or unit == "TB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} PB"


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:  # other Unix systems: all physical memory
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_free() -> int | None:
    """The cgroup (v2) memory limit minus its use, when there is a limit."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit == "max":
            return None
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        return max(0, int(limit) - used)
    except (OSError, ValueError):
        return None


def _status() -> dict[str, int]:
    """VmData, VmSize, ... of this process, in bytes (empty where /proc is missing)."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.startswith("Vm") and value.strip().endswith("kB"):
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    return out
