import os
import sys

if os.environ.get("PYTEST_XDIST_WORKER"):  # one of pytest-xdist's workers (-n N, pyproject)
    # one thread per worker, and for the processes its tests start: N workers with a thread
    # pool per core each would oversubscribe the cores, and torch's and numba's spinning
    # threads then run tiny operations a hundred times slower
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"

import numpy as np
import pytest
from sklearn.datasets import load_digits

from aeclust.data import DATASETS


@pytest.fixture(scope="session")
def digits_small():
    """300 sklearn digits as (N, 1, 8, 8) images in [0, 1], with labels."""
    d = load_digits()
    X = (d.images[:300] / 16.0).astype(np.float32)[:, None]
    return X, d.target[:300]


@pytest.fixture(params=["as-installed", "hidden"])
def optional_datasets(request, tmp_path_factory, monkeypatch):
    """Run a test twice: with the optional datasets this machine has, and as on a new
    machine, which has none (Fashion-MNIST's folder is empty, scikit-image cannot be
    imported). A developer's machine with ``dataset-fashion-mnist`` then still tests what a
    user without it sees."""
    if request.param == "hidden":
        hide_optional_datasets(monkeypatch, tmp_path_factory.mktemp("no-fashion-mnist"))
    return request.param


@pytest.fixture
def hidden_datasets(monkeypatch, tmp_path):
    """The optional datasets hidden, as on a new machine (one variant of the above)."""
    hide_optional_datasets(monkeypatch, tmp_path)


def hide_optional_datasets(monkeypatch, empty_dir) -> None:
    """Make Fashion-MNIST and scikit-image (ihc-tiles) unavailable, as on a new machine."""
    monkeypatch.setenv("AECLUST_FASHION_MNIST_DIR", str(empty_dir))
    monkeypatch.setitem(sys.modules, "skimage", None)  # find_spec and import now fail


def skip_unless_available(name: str, variant: str) -> None:
    """Skip (at run time, so the hidden variant skips too) unless the built-in dataset
    ``name`` can be loaded here; the reason is its own install hint."""
    if variant == "hidden":
        pytest.skip(f"{name} hidden, as on a new machine")
    spec = DATASETS[name]
    if not spec.available():
        pytest.skip(f"{name} is not available here: {spec.hint}")


@pytest.fixture
def fashion_mnist(optional_datasets):
    skip_unless_available("fashion-mnist", optional_datasets)


@pytest.fixture
def ihc_tiles(optional_datasets):
    """scikit-image holds the ihc-tiles image."""
    skip_unless_available("ihc-tiles", optional_datasets)


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if any network starts training: for errors that must come first."""
    from aeclust.training import Trainer

    def refuse(self, X):
        raise AssertionError("a network started training before the error")

    monkeypatch.setattr(Trainer, "fit", refuse)
