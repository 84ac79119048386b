import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeclust import DCEC, DEC, IDEC
from aeclust.errors import ConfigError
from test_dcae import EXPECTED_FAILED, blobs

FAST = dict(autoencoder="mlp", autoencoder_params={"hidden": [16]}, pretrain_epochs=1, epochs=2,
            batch_size=32, n_init=2)  # fmt: skip


@parametrize_with_checks(
    [cls(**FAST, n_clusters=3, random_state=0) for cls in (DEC, IDEC, DCEC)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_defaults_follow_the_papers():
    assert DEC().autoencoder == "mlp" and DEC().gamma == 0 and "gamma" not in DEC().get_params()
    assert IDEC().gamma == 0.1 and IDEC().autoencoder == "mlp"
    assert DCEC().gamma == 0.1 and DCEC().autoencoder == "conv"
    assert DEC().batch_size == 256 and DEC().tol == 0.001 and DEC().alpha == 1.0


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_self_training_on_separated_data(cls):
    X, y = blobs(150)
    est = cls(n_clusters=3, pretrain_epochs=15, epochs=4, batch_size=25, update_interval=3,
              tol=0.0, random_state=0).fit(X, y)  # fmt: skip
    stage = [h for h in est.history_ if not h.get("pretrain")]
    assert len(stage) == 4 and all({"kl", "delta_label", "acc", "nmi"} <= set(h) for h in stage)
    assert stage[-1]["kl"] < stage[0]["kl"]
    assert stage[-1]["acc"] > 0.9
    assert ("reconstruction" in stage[0]) == (cls is IDEC)
    assert np.array_equal(est.predict(X), est.labels_)
    assert est.cluster_centers_.shape == (3, 10)


def test_dec_leaves_the_decoder_alone_and_idec_trains_it():
    X, _ = blobs(60)
    decoders = {}
    for cls in (DEC, IDEC):
        est = cls(n_clusters=3, **{**FAST, "pretrain_epochs": 0}, random_state=0)
        est.fit(X)
        fresh = cls(n_clusters=3, **{**FAST, "pretrain_epochs": 0, "epochs": 0}, random_state=0)
        fresh.fit(X)  # same seed, same initial weights, no clustering stage
        before = fresh.autoencoder_.state_dict()
        decoders[cls] = [
            torch.equal(a, before[name])
            for name, a in est.autoencoder_.state_dict().items()
            if name.startswith("decoder")
        ]
    assert decoders[DEC] and all(decoders[DEC]) and not any(decoders[IDEC])


def test_stops_once_labels_settle():
    X, y = blobs(150)
    # tol=1: the first target update after the initial one stops training mid-epoch
    est = DEC(n_clusters=3, pretrain_epochs=3, epochs=5, batch_size=25, update_interval=2,
              tol=1.0, random_state=0).fit(X)  # fmt: skip
    stage = [h for h in est.history_ if not h.get("pretrain")]
    assert len(stage) == 1


@pytest.mark.parametrize(
    "params, message",
    [({"tol": 1.5}, "tol"), ({"update_interval": 0}, "update_interval"),
     ({"alpha": 0}, "alpha"), ({"gamma": -1}, "gamma")],
)  # fmt: skip
def test_bad_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        IDEC(n_clusters=3, **FAST, **params).fit(blobs(30)[0])


def test_reference_is_the_same_network_before_self_training():
    X, _ = blobs(60)
    est = DEC(n_clusters=3, **{**FAST, "pretrain_epochs": 2, "epochs": 0}, random_state=5).fit(X)
    ref = est.without_clustering_loss().fit(X)
    assert ref.epochs == 2 and ref.autoencoder == est.autoencoder
    np.testing.assert_allclose(ref.transform(X), est.transform(X), rtol=1e-5, atol=1e-6)
