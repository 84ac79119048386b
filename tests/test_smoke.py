"""One smoke test over every registered estimator (as clustpy does): tiny data, 2 epochs;
the same seed gives the same labels, ``predict(X) == labels_``, and a saved model loads
back with the same codes and predictions. An estimator added to the registry is covered
the day it is registered."""

from __future__ import annotations

import numpy as np
import pytest

from aeclust import AEClusterer, load
from aeclust.estimators import METHODS

ESTIMATORS = {"autoencoder": AEClusterer, **METHODS}
# the fast settings, applied where an estimator has the parameter; each keeps its network
FAST = dict(epochs=2, pretrain_epochs=1, batch_size=32,
            n_init=2, n_clusters=3)  # fmt: skip


def tiny(cls, seed):
    est = cls(random_state=seed)
    return est.set_params(**{k: v for k, v in FAST.items() if k in est.get_params()})


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_seed_predict_save_load(name, digits_small, tmp_path):
    X = digits_small[0][:120]
    a = tiny(ESTIMATORS[name], 3).fit(X)
    b = tiny(ESTIMATORS[name], 3).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.transform(X), b.transform(X))
    assert np.array_equal(a.predict(X), a.labels_)
    assert a.labels_.dtype == np.int64 and a.labels_.shape == (len(X),)
    a.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert type(again) is type(a) and again.get_params() == {**a.get_params(), "device": "auto"}
    assert np.array_equal(again.transform(X), a.transform(X))
    assert np.array_equal(again.predict(X), a.predict(X))
