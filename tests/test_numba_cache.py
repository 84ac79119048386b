"""UMAP's numba code is compiled once per machine (numba's on-disk cache) and a cached fit
gives the same bits as a fit without the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("umap")

from aeclust.cluster.numba_cache import dispatchers, import_umap  # noqa: E402

# Fits UMAP on 300 codes in a new process (below 4,096 codes UMAP finds exact neighbours,
# so every function it compiles can be cached) and prints the embedding's bytes as hex
# digest and how many functions the fit compiled rather than loaded from numba's cache.
SCRIPT = """
import hashlib, json, sys, warnings
import numpy as np
from aeclust.cluster import numba_cache
umap = numba_cache.import_umap() if sys.argv[1] == "cached" else __import__("umap")
def misses():  # functions with a signature are compiled at import, before the cache is on
    return sum(len(d.stats.cache_misses) for d in numba_cache.dispatchers())
before = misses()
Z = np.random.default_rng(0).normal(size=(300, 6)).astype(np.float32)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    Y = umap.UMAP(n_components=3, n_neighbors=10, n_epochs=30, random_state=0).fit_transform(Z)
compiled = misses() - before if sys.argv[1] == "cached" else None
print(json.dumps({"digest": hashlib.sha256(Y.tobytes()).hexdigest(), "compiled": compiled}))
"""


def start_fit(mode: str, cache_dir) -> subprocess.Popen:
    """The fit of SCRIPT in a new process, started (see :func:`result`)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, mode], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def fit_in_new_process(mode: str, cache_dir) -> dict:
    return result(start_fit(mode, cache_dir))


def test_every_umap_function_caches():
    from aeclust.cluster.lazy_pynndescent import real

    import_umap()
    real("pynndescent")  # imported when UMAP calls it; its functions cache too
    found = dispatchers()
    assert len(found) > 100  # umap-learn and pynndescent: about 250
    assert {type(d._cache).__name__ for d in found} == {"FunctionCache"}
    assert {d.py_func.__module__.split(".")[0] for d in found} == {"umap", "pynndescent"}


def test_second_process_loads_what_the_first_compiled(tmp_path):
    cache = tmp_path / "cache"
    # plain umap (its own cache folder: pynndescent caches some functions itself) and the
    # first cached fit compile at once, each on one core
    plain = start_fit("plain", tmp_path / "plain-cache")
    first = result(start_fit("cached", cache))
    plain = result(plain)
    second = fit_in_new_process("cached", cache)
    assert first["compiled"] > 0 and second["compiled"] == 0
    assert plain["digest"] == first["digest"] == second["digest"]
    assert any(cache.glob("umap_*/umap_.*.nbi"))  # the index files of umap-learn's code


@pytest.mark.parametrize("n_samples", [400, 4200])  # UMAP's exact neighbours, then ours
def test_precompile_leaves_nothing_to_compile_for_the_fit(n_samples):
    """What the estimator compiles before training is what the real fit needs."""
    import numpy as np

    from aeclust.cluster import build_reducer

    reducer = build_reducer("umap", n_components=4, random_state=0, n_epochs=20)
    reducer.precompile(n_samples, 6)
    compiled = sum(len(d.overloads) for d in dispatchers())
    Z = np.random.default_rng(1).normal(size=(n_samples, 6))
    reducer.fit(Z)
    assert sum(len(d.overloads) for d in dispatchers()) == compiled


def test_no_writable_cache_falls_back_to_compiling(monkeypatch):
    """numba raises when it finds no writable place for a cache; UMAP must still work."""
    from numba.core.dispatcher import Dispatcher

    from aeclust.cluster import numba_cache

    def refuse(self):
        raise RuntimeError("cannot cache function: no locator available")

    monkeypatch.setattr(Dispatcher, "enable_caching", refuse)
    monkeypatch.setattr(numba_cache, "_uses_null_cache", lambda d: True)
    assert numba_cache.enable_cache() == 0
