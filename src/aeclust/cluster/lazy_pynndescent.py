"""``import umap`` without importing pynndescent until umap-learn calls it.

umap-learn imports pynndescent when it is imported, and pynndescent compiles its numba
functions with declared signatures while it is imported: 15-20 s the first time on a
2-core machine (most of a new machine's first run's extra cost), 3 s from numba's cache
later. :class:`~aeclust.cluster.reducers.UMAPReducer` gives UMAP exact neighbours up to
100,000 codes, and on that path umap-learn never calls pynndescent: it reads three names
when it is imported (``NNDescent``, ``distances.named_distances`` and
``sparse.sparse_named_distances``) and asks whether a metric's name is in the two tables.

:func:`import_umap` imports umap-learn with stand-ins for those three names. The class
imports pynndescent when it is called (an approximate search: above 100,000 codes or with
another metric) and answers ``isinstance`` without importing (no instance can exist before
pynndescent is imported). The tables answer which names they hold from pynndescent's own
source (the keys of the dict literal, read with :mod:`ast`, which compiles nothing), and
import pynndescent for anything else (a value, iteration). Every answer is the real
object's, so UMAP's results are the same bits. If umap-learn asks for anything else while
it is imported (another version), the stand-ins step aside and umap-learn is imported as
usual; so they do when pynndescent or umap is already imported.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import types
from collections.abc import Mapping
from pathlib import Path

# the names umap-learn's umap_.py imports from pynndescent: module -> (name, kind)
STAND_INS = {
    "pynndescent": ("NNDescent", "class"),
    "pynndescent.distances": ("named_distances", "table"),
    "pynndescent.sparse": ("sparse_named_distances", "table"),
}


def import_umap():
    """``import umap``, deferring pynndescent's import where that is possible."""
    if "umap" in sys.modules or "pynndescent" in sys.modules:
        return importlib.import_module("umap")
    stand_ins = {}
    for module, (name, kind) in STAND_INS.items():
        stand_in = _StandInModule(module)
        setattr(stand_in, name, _stand_in_class() if kind == "class" else _Table(module, name))
        stand_ins[module] = stand_in
    sys.modules.update(stand_ins)
    try:
        return importlib.import_module("umap")
    except (ImportError, AttributeError):  # umap-learn wanted more than the stand-ins hold
        for name in [n for n in sys.modules if n == "umap" or n.startswith("umap.")]:
            del sys.modules[name]
        _remove(stand_ins)
        return importlib.import_module("umap")
    finally:
        _remove(stand_ins)


def is_deferred() -> bool:
    """Whether pynndescent is still unimported (umap-learn holds the stand-ins)."""
    return isinstance(sys.modules.get("pynndescent"), _StandInModule) or (
        "pynndescent" not in sys.modules
    )


def real(module: str):
    """Import pynndescent's ``module`` for real, with numba's cache switched on."""
    loaded = importlib.import_module(module)
    from .numba_cache import enable_cache

    enable_cache()
    return loaded


def _remove(stand_ins: dict) -> None:
    for module, stand_in in stand_ins.items():
        if sys.modules.get(module) is stand_in:
            del sys.modules[module]


class _StandInModule(types.ModuleType):
    """A pynndescent module while umap-learn is imported; only the names it was given."""


class _StandInClass(type):
    def __call__(cls, *args, **kwargs):
        return real("pynndescent").NNDescent(*args, **kwargs)

    def __instancecheck__(cls, obj) -> bool:
        loaded = sys.modules.get("pynndescent")
        if loaded is None or isinstance(loaded, _StandInModule):
            return False  # nothing can be an NNDescent before pynndescent is imported
        return isinstance(obj, loaded.NNDescent)

    def __getattr__(cls, name):
        return getattr(real("pynndescent").NNDescent, name)


def _stand_in_class() -> type:
    return _StandInClass("NNDescent", (), {"__module__": "pynndescent"})


class _Table(Mapping):
    """One of pynndescent's tables of distances by name, imported at the first value."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name
        self._keys = literal_keys(module, name)

    def _table(self) -> dict:
        return getattr(real(self.module), self.name)

    def __contains__(self, key) -> bool:
        if self._keys is None or self.module in sys.modules:  # imported for real
            return key in self._table()
        return key in self._keys

    def __getitem__(self, key):
        return self._table()[key]

    def __iter__(self):
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


def literal_keys(module: str, name: str) -> frozenset | None:
    """The keys of ``name = {...}`` in ``module``'s source, if that dict literal with
    string keys is all that defines it there; else None (then the table imports)."""
    try:
        spec = importlib.util.find_spec(module.split(".")[0])  # imports nothing
        root = Path(spec.submodule_search_locations[0])
        path = root.joinpath(*module.split(".")[1:]).with_suffix(".py")
        if module == module.split(".")[0]:
            path = root / "__init__.py"
        source = path.read_text()
    except (AttributeError, TypeError, IndexError, OSError, ValueError):
        return None
    if f"{name}[" in source or f"{name}." in source:  # changed after its definition
        return None
    definitions = [
        node.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]
    if len(definitions) != 1 or not isinstance(definitions[0], ast.Dict):
        return None
    keys = definitions[0].keys
    if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
        return None
    return frozenset(k.value for k in keys)
