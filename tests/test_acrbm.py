"""ACRBM clustering layers (one-stage autoencoders, section 2.1 and appendix B)."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeclust import ACRBM, AEACRBM, load
from aeclust.cli import main
from aeclust.errors import ConfigError, DataError
from aeclust.losses import acrbm_loss
from aeclust.metrics import cluster_acc
from aeclust.nn import build_module
from test_dcae import EXPECTED_FAILED, blobs

FAST_AE = dict(latent_dim=8, channels=4, pretrain_epochs=1, epochs=2, batch_size=32, n_init=2)


@parametrize_with_checks(
    [ACRBM(n_clusters=3, epochs=2, batch_size=32, random_state=0),
     AEACRBM(n_clusters=3, **{**FAST_AE, "epochs": 10, "batch_size": 16}, lr=1e-2, loss="mse",
             random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)  # fmt: skip
def test_sklearn_compatible(estimator, check):
    check(estimator)


def naive_acrbm_loss(h):
    """Eqs. 13-14 written out: u = hᵀh, each row of u normalised, −mean log of the diagonal."""
    n = h.shape[1]
    u = [[sum(h[b, i] * h[b, j] for b in range(h.shape[0])) for j in range(n)] for i in range(n)]
    eta = [[u[i][j] / sum(u[i]) for j in range(n)] for i in range(n)]
    return -sum(math.log(eta[i][i]) for i in range(n)) / n


def test_acrbm_loss_against_the_equations():
    h = torch.softmax(torch.randn(7, 4, generator=torch.Generator().manual_seed(0)), dim=1)
    assert acrbm_loss(h).item() == pytest.approx(naive_acrbm_loss(h.double().numpy()), rel=1e-5)


def test_acrbm_loss_is_zero_for_certain_assignments_and_log_k_for_uniform_ones():
    one_hot = torch.eye(3)[[0, 1, 2, 1, 0]]
    assert acrbm_loss(one_hot).item() == pytest.approx(0.0, abs=1e-6)
    assert acrbm_loss(torch.full((6, 5), 0.2)).item() == pytest.approx(math.log(5), rel=1e-6)
    # an empty cluster in a batch stays finite
    assert torch.isfinite(acrbm_loss(torch.eye(3)[[0, 0, 1]]))


def test_shallow_acrbm_recovers_separable_clusters_with_a_near_diagonal_d():
    X, y = blobs(150)
    est = ACRBM(n_clusters=3, epochs=30, batch_size=30, random_state=0).fit(X, y)
    assert cluster_acc(y, est.labels_) > 0.95
    H = est.transform(X)
    D = H.T @ H  # eq. 16's D: diagonal at the optimum
    assert np.trace(D) / D.sum() > 0.95
    assert est.confidence_ > 0.9 and est.history_[-1]["clusters_used"] == 3
    assert est.history_[-1]["acrbm"] < est.history_[0]["acrbm"]
    assert np.allclose(est.predict_proba(X).sum(1), 1, atol=1e-5)


def test_centring_subtracts_the_training_mean_and_is_saved(tmp_path):
    X, _ = blobs(60)
    est = ACRBM(n_clusters=3, epochs=1, random_state=0).fit(X)
    assert np.allclose(est.network_.mean.numpy(), X.mean(0), atol=1e-6)
    raw = ACRBM(n_clusters=3, epochs=1, center=False, random_state=0).fit(X)
    assert not raw.network_.mean.any()
    X_hat = est.reconstruct(X[:4])
    assert X_hat.shape == (4, 1, 8, 8) and X_hat.min() >= 0 and X_hat.max() <= 1
    est.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert torch.equal(again.network_.mean, est.network_.mean)
    assert np.array_equal(again.reconstruct(X), est.reconstruct(X))
    assert again.confidence_ == est.confidence_


def test_reconstruction_weight_adds_the_term_and_needs_pixels_in_0_1():
    X, _ = blobs(60)
    est = ACRBM(n_clusters=3, epochs=1, reconstruction_weight=0.5, random_state=0).fit(X)
    assert {"acrbm", "reconstruction"} <= set(est.history_[0])
    with pytest.raises(DataError, match="\\[0, 1\\]"):
        ACRBM(n_clusters=3, epochs=1, reconstruction_weight=1.0).fit(X * 3)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 8), (2, 13, 17)])
@pytest.mark.parametrize("head", ["acrbm", "relu"])
def test_ae_acrbm_shapes(shape, head):
    net = build_module("ae-acrbm", {"input_shape": shape, "latent_dim": 6, "n_clusters": 4,
                                    "channels": 5, "head": head})  # fmt: skip
    out = net(torch.rand(3, *shape))
    assert out.h.shape == (3, 4) and out.code.shape == (3, 6) and out.output.shape == (3, *shape)
    if head == "acrbm":
        assert torch.allclose(out.h.sum(1), torch.ones(3))
    else:
        assert (out.h >= 0).all()
    shallow = build_module("shallow-acrbm", {"input_shape": shape, "n_clusters": 4})
    assert shallow(torch.rand(3, *shape)).output.shape == (3, *shape)


def test_ae_acrbm_trains_both_terms_and_its_reference_clusters_with_kmeans(digits_small):
    X, y = digits_small
    est = AEACRBM(n_clusters=4, **FAST_AE, random_state=0).fit(X, y)
    assert {"reconstruction", "acrbm", "confidence", "purity", "acc"} <= set(est.history_[-1])
    ref = est.without_clustering_loss()
    assert ref.head == "relu" and ref.get_params()["channels"] == 4 and ref.checkpoint is None
    ref.fit(X)
    assert "acrbm" not in ref.history_[-1] and ref.cluster_centers_.shape == (4, 4)
    assert np.array_equal(ref.predict(X), ref.labels_)
    with pytest.raises(ConfigError, match="soft assignments"):
        ref.predict_proba(X)
    assert ref.network_label() == "ae-acrbm (relu head)"


@pytest.mark.parametrize(
    "params, message",
    [({"head": "kmeans"}, "head"), ({"weight": -1}, "weight"), ({"kernel": 4}, "odd"),
     ({"channels": 0}, "channels"), ({"loss": "l1"}, "loss"), ({"encoder_grad": 2}, "[0, 1]"),
     ({"head_init": "pca"}, "head_init")],
)  # fmt: skip
def test_ae_acrbm_refuses_bad_settings_before_training(params, message, digits_small):
    with pytest.raises(ConfigError, match=message):
        AEACRBM(**{**FAST_AE, **params}).fit(digits_small[0])


def test_adam_betas_follow_table_3_unless_given(digits_small):
    def betas(est):
        est.image_shape_ = (1, 8, 8)
        return est._config(0).optimizer_params

    assert betas(ACRBM()) == {"betas": (0.01, 0.999)}
    assert betas(AEACRBM()) == {"betas": (0.05, 0.999)}
    assert betas(AEACRBM(optimizer_params={"betas": [0.9, 0.99]})) == {"betas": [0.9, 0.99]}
    assert betas(ACRBM(optimizer="sgd")) is None
    ACRBM(n_clusters=3, epochs=1, optimizer="sgd").fit(digits_small[0][:64])


def test_cli_runs_both_models_and_the_reference(tmp_path, capsys):
    base = ["-q", "run", "--dataset", "digits", "--epochs", "1", "--seed", "0"]
    out = tmp_path / "shallow"
    assert main([*base, "--model", "acrbm", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["confidence"] <= 1 and metrics["clusterer"] == "acrbm (joint)"
    assert (out / "neighbours.png").exists() and "without_clustering_loss" not in metrics
    assert "assignment confidence" in (out / "report.html").read_text()
    out = tmp_path / "ae"
    params = ["--param", "channels=4", "--param", "latent_dim=6", "--param", "pretrain_epochs=1"]
    assert main([*base, "--model", "ae-acrbm", *params, "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    reference = metrics["without_clustering_loss"]
    assert reference["model"].startswith("ae-acrbm (relu head) + k-means")
    assert (out / "with_without_clustering_loss.png").exists()
    history = json.loads((out / "history.json").read_text())
    assert history[0]["pretrain"] and "acrbm" in history[-1]


def test_cli_refuses_settings_that_do_not_apply(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--dataset", "digits", "--model", "acrbm", "--out", str(out)]
    assert main([*args, "--latent-dim", "5"]) == 2
    assert "latent_dim does not apply to 'acrbm'" in capsys.readouterr().err
    assert main([*args, "--param", "weight=2"]) == 2
    assert "weight" in capsys.readouterr().err
    assert not out.exists()


def test_layer_started_from_centres_is_the_kmeans_posterior():
    from aeclust.nn.acrbm import ACRBMLayer

    gen = torch.Generator().manual_seed(0)
    centres, v, var = torch.randn(4, 6, generator=gen), torch.randn(50, 6, generator=gen), 0.7
    layer = ACRBMLayer(6, 4)
    layer.init_from_centres(centres, var)
    expected = torch.softmax(-(torch.cdist(v, centres) ** 2) / (2 * var), dim=1)
    assert torch.allclose(layer(v), expected, atol=1e-5)


def test_encoder_grad_zero_keeps_the_objective_out_of_the_encoder():
    def encoder_grad_norm(g):
        torch.manual_seed(0)
        config = {"input_shape": (1, 8, 8), "latent_dim": 6, "n_clusters": 3, "channels": 4}
        net = build_module("ae-acrbm", {**config, "encoder_grad": g})
        acrbm_loss(net(torch.rand(16, 1, 8, 8)).h).backward()
        grads = [p.grad for p in net.ae.encoder.parameters() if p.grad is not None]
        return sum(float(g.norm()) for g in grads), float(net.head.weight.grad.norm())

    assert encoder_grad_norm(0.0)[0] == 0 and encoder_grad_norm(0.0)[1] > 0
    full, half = encoder_grad_norm(1.0)[0], encoder_grad_norm(0.5)[0]
    assert full > 0 and half == pytest.approx(full / 2, rel=1e-4)


def test_clustering_phase_starts_from_kmeans_on_the_codes(digits_small):
    X, y = digits_small
    est = AEACRBM(n_clusters=4, **{**FAST_AE, "epochs": 1}, lr=1e-12, random_state=0).fit(X, y)
    codes = est.network_.ae.encode(torch.from_numpy(X)).detach().numpy()
    from sklearn.cluster import KMeans

    km = KMeans(4, n_init=2, random_state=est._seed()).fit(codes.astype(np.float64))
    assert cluster_acc(km.labels_, est.labels_) > 0.98
