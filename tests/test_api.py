"""The public API: every name in __all__ exists, so a typo cannot hide one."""

import importlib

import pytest

MODULES = [
    "aeclust",
    "aeclust.data",
    "aeclust.nn",
    "aeclust.losses",
    "aeclust.training",
    "aeclust.cluster",
    "aeclust.estimators",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} has an empty __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists missing names {missing}"
    assert len(set(module.__all__)) == len(module.__all__)


def test_top_level_exports():
    import aeclust

    assert {"AEClusterer", "load_dataset", "evaluate", "load"} <= set(aeclust.__all__)
