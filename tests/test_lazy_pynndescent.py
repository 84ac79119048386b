"""umap-learn is imported without pynndescent, which is imported only when UMAP calls it,
and UMAP gives the same bits either way."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("umap")

from aeclust.cluster import lazy_pynndescent  # noqa: E402

# Fits UMAPReducer to 4,200 codes (exact neighbours) in a new process, umap imported
# through aeclust ("lazy") or as usual first ("plain"), and prints whether pynndescent
# got imported, what the stand-in tables answer and a digest of the embedding and of a
# transform.
SCRIPT = """
import hashlib, json, sys, warnings
import numpy as np
if sys.argv[1] == "plain":
    import umap
if sys.argv[1] == "fallback":  # a umap-learn that wants a name the stand-ins lack
    from aeclust.cluster import lazy_pynndescent
    lazy_pynndescent.STAND_INS["pynndescent"] = ("SomethingElse", "class")
from aeclust.cluster.numba_cache import import_umap
from aeclust.cluster.reducers import UMAPReducer
umap = import_umap()
Z = np.random.default_rng(0).normal(size=(4200, 6)).astype(np.float32)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    reducer = UMAPReducer(n_components=3, n_epochs=20, random_state=0).fit(Z)
    Y = np.concatenate([reducer.embedding_, reducer.transform(Z[:20])])
table = umap.umap_.pynn_named_distances
print(json.dumps({
    "digest": hashlib.sha256(Y.tobytes()).hexdigest(),
    "answers": ["euclidean" in table, "correlation" in table, "no such metric" in table],
    "pynndescent": "pynndescent" in sys.modules,
}))
"""


def fit_in_new_process(mode: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_exact_fit_never_imports_pynndescent_and_gives_the_same_bits():
    lazy, plain = fit_in_new_process("lazy"), fit_in_new_process("plain")
    assert not lazy["pynndescent"] and plain["pynndescent"]
    assert lazy["digest"] == plain["digest"]
    assert lazy["answers"] == plain["answers"] == [True, True, False]


def test_a_umap_that_wants_more_is_imported_as_usual():
    fallback, plain = fit_in_new_process("fallback"), fit_in_new_process("plain")
    assert fallback["pynndescent"]
    assert fallback["digest"] == plain["digest"]


TABLES = [
    ("pynndescent.distances", "named_distances"),
    ("pynndescent.sparse", "sparse_named_distances"),
]


@pytest.mark.parametrize("module, name", TABLES)
def test_tables_read_from_source_hold_the_real_names(module, name):
    keys = lazy_pynndescent.literal_keys(module, name)
    assert keys == set(getattr(lazy_pynndescent.real(module), name))


def test_table_and_class_hand_over_to_the_real_objects(monkeypatch):
    class Real:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    fake = SimpleNamespace(NNDescent=Real, named_distances={"euclidean": len})
    monkeypatch.setattr(lazy_pynndescent, "real", lambda module: fake)
    stand_in = lazy_pynndescent._stand_in_class()
    made = stand_in([1, 2], n_neighbors=3)
    assert isinstance(made, Real) and made.args == ([1, 2],) and made.kwargs == {"n_neighbors": 3}
    monkeypatch.setitem(sys.modules, "pynndescent", fake)
    assert isinstance(made, stand_in) and not isinstance(object(), stand_in)
    monkeypatch.setitem(sys.modules, "pynndescent", None)
    assert not isinstance(made, stand_in)  # nothing is an NNDescent before the import

    table = lazy_pynndescent._Table("pynndescent.distances", "named_distances")
    assert table["euclidean"] is len and list(table) == ["euclidean"] and len(table) == 1


def test_unreadable_source_means_the_table_imports(monkeypatch):
    assert lazy_pynndescent.literal_keys("pynndescent.distances", "no_such_table") is None
    assert lazy_pynndescent.literal_keys("no_such_package_here.x", "named_distances") is None
