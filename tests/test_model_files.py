"""Model files: named modules, each (registry name, config, weights), plus the estimator's
metadata; files of the first format (version 1) still load and predict the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

from aeclust import load

V1 = Path(__file__).parent / "data" / "model_v1"


@pytest.mark.parametrize("name", ["aeclusterer", "dcec", "densenet"])
def test_version_1_files_still_load_and_predict_the_same(name):
    expected = json.loads((V1 / "expected.json").read_text())["predict"][name]
    assert json.loads((V1 / name / "model.json").read_text())["format_version"] == 1
    X = (load_digits().images[:120] / 16).astype(np.float32)[:, None]
    model = load(V1 / name)
    assert model.predict(X).tolist() == expected


def test_any_number_of_named_modules_round_trip(tmp_path):
    """An estimator with two networks (as a GAN's generator and discriminator will be)
    saves and loads both through the one path."""
    from sklearn.base import BaseEstimator

    from aeclust.estimators.model_file import ModelFileMixin
    from aeclust.nn import build_autoencoder

    class TwoNets(ModelFileMixin, BaseEstimator):
        def __init__(self, device="auto"):
            self.device = device

        def fit(self, X=None):
            return self

        def _named_modules(self):
            return {"generator": self.g_, "critic": self.c_}

        def _restore_modules(self, modules):
            self.g_, self.c_ = modules["generator"], modules["critic"]

    est = TwoNets()
    est.g_ = build_autoencoder("mlp", (1, 4, 4), 2, hidden=(5,))
    est.c_ = build_autoencoder("conv", (1, 8, 8), 3)
    est.image_shape_, est.history_ = (1, 4, 4), []
    est.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format_version"] == 2
    assert {k: v["registry"] for k, v in meta["modules"].items()} == {
        "generator": "mlp",
        "critic": "conv",
    }
    back = load(tmp_path / "m")
    assert type(back) is TwoNets
    for a, b in [(est.g_, back.g_), (est.c_, back.c_)]:
        assert a.config == b.config
        assert all((a.state_dict()[k] == v).all() for k, v in b.state_dict().items())
