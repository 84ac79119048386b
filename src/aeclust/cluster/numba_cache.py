"""UMAP's numba code, compiled once per machine rather than once per process.

umap-learn and pynndescent run on about 250 numba functions, most of them declared
without ``cache=True``, so every new process compiled them again before its first UMAP
fit: 35-40 s on a 2-core machine, each run. :func:`import_umap` switches numba's on-disk
cache on for every jitted function of both packages before any is compiled, so that a
process loads what an earlier one compiled. The cache holds the machine code numba would
compile anyway, so results stay bit-identical (``tests/test_numba_cache.py`` checks a
cached fit against the fit that filled the cache, in new processes).

Two functions cannot be cached: pynndescent's ``nn_descent`` and ``nn_descent_internal``
call ``numba.get_num_threads()``, whose address numba resolves at run time ("dynamic
globals"). A process compiled those (10-25 s on 2 cores) at its first UMAP fit on 4,096
codes or more; :class:`~aeclust.cluster.reducers.UMAPReducer` now gives UMAP exact
neighbours up to 100,000 codes, so only larger fits (or other metrics) still need them.

What the cache cannot save is the first import of pynndescent on a machine: it compiles its
functions with declared signatures while it is imported (15-30 s on 2 cores; later
processes load them from the cache, about 3 s). :func:`import_umap` therefore imports
umap-learn without pynndescent (:mod:`.lazy_pynndescent`), which is imported only when
UMAP searches neighbours with it.

Where the cache lives is numba's choice: ``$NUMBA_CACHE_DIR`` when set, else
``__pycache__`` beside the package's source when that is writable, else
``~/.cache/numba``. A new umap-learn, pynndescent or numba (a changed source file) or
another CPU invalidates the entries by itself. Where no such place is writable, numba
cannot cache and UMAP compiles in every process, as without this module.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import warnings

from ..errors import require
from . import lazy_pynndescent

log = logging.getLogger(__name__)

PACKAGES = ("pynndescent", "umap")
_lock = threading.RLock()


def import_umap(purpose: str = "UMAP"):
    """``import umap`` (or raise with the install hint), with numba's cache switched on and
    pynndescent imported only when umap-learn calls it (:mod:`.lazy_pynndescent`)."""
    if importlib.util.find_spec("umap") is None:
        require("umap", "umap", purpose)  # raises, with the install hint
    with _lock:
        umap = lazy_pynndescent.import_umap()
    enable_cache()
    return umap


def enable_cache() -> int:
    """Switch numba's on-disk cache on for the jitted functions of the loaded modules of
    umap-learn and pynndescent; returns how many were switched now (0 on later calls)."""
    switched = 0
    with _lock:
        for dispatcher in dispatchers():
            if not _uses_null_cache(dispatcher):  # switched already, or cache=True
                continue
            try:
                dispatcher.enable_caching()
                switched += 1
            except RuntimeError as exc:  # no writable place for a cache: compile as before
                log.debug("numba cannot cache %s: %s", dispatcher.py_func.__name__, exc)
    # numba warns once per function it cannot cache; nothing a user could do about it
    warnings.filterwarnings("ignore", message=r".*Cannot cache compiled function")
    return switched


def is_filled() -> bool:
    """Whether numba's cache already holds UMAP's code (judged by one of its functions;
    the first UMAP fit on a machine fills it)."""
    try:
        from umap.umap_ import smooth_knn_dist

        return os.path.exists(smooth_knn_dist._cache._cache_file._index_path)
    except Exception:  # another numba's internals, or no cache: assume it is empty
        return False


def dispatchers() -> list:
    """The numba dispatchers defined at module level in the loaded modules of
    :data:`PACKAGES`."""
    from numba.core.dispatcher import Dispatcher

    found, seen = [], set()
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in PACKAGES:
            continue
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
    return found


def _uses_null_cache(dispatcher) -> bool:
    from numba.core.caching import NullCache

    return isinstance(dispatcher._cache, NullCache)
