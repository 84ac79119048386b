"""The generative estimators of Morais' thesis: BetaVAE, WAEGAN and HRWAEGAN, with the
clustering box on every latent group, noise attention, generation and save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeclust import HRWAEGAN, WAEGAN, BetaVAE, load
from aeclust.cluster.reducers import auto_neighbours
from aeclust.errors import ConfigError, DataError
from aeclust.metrics import cluster_acc
from aeclust.training import TrainConfig, Trainer
from aeclust.training.noise_attention import NoiseAttention, noise_weights
from test_dcae import EXPECTED_FAILED
from test_generative_nn import adversarial

NET = {"channels": 4, "max_channels": 16}
FAST = dict(autoencoder_params=NET, discriminator_hidden=(16,), epochs=2, batch_size=32,
            reducer=None)  # fmt: skip
VAE_FAST = {k: v for k, v in FAST.items() if k != "discriminator_hidden"}


# flat vectors are 1x1xD images here: one cell, so one latent group (HRWAEGAN needs two)
@parametrize_with_checks(
    [
        WAEGAN(**FAST, n_clusters=3, random_state=0, loss="mse"),
        BetaVAE(**VAE_FAST, n_clusters=3, random_state=0, loss="mse"),
    ],  # fmt: skip
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_defaults_follow_the_thesis():
    assert BetaVAE().beta == 30 and BetaVAE().latent_dim == 23 == WAEGAN().latent_dim
    assert WAEGAN().latent_groups == 1 and HRWAEGAN().latent_groups == 2
    assert HRWAEGAN().get_params().keys() == WAEGAN().get_params().keys()
    assert WAEGAN().hdbscan_denominator == 50 and WAEGAN().reducer == "umap"
    assert [auto_neighbours(n) for n in (300, 5000, 70000, 10)] == [5, 16, 100, 5]


def test_the_adversarial_models_default_to_adams_beta1_of_one_half_unless_told(monkeypatch):
    import aeclust.training.adversarial as adv

    seen, build = [], adv.optimizer_from_config
    monkeypatch.setattr(adv, "optimizer_from_config",
                        lambda params, cfg: seen.append(cfg) or build(params, cfg))  # fmt: skip
    X = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    tiny = dict(epochs=1, batch_size=20, reducer=None, clusterer="kmeans", n_clusters=2,
                autoencoder_params={"channels": 4, "max_channels": 8}, random_state=0)  # fmt: skip
    for params, betas in [({}, (0.5, 0.999)), ({"optimizer_params": {"betas": [0.9, 0.99]}},
                          (0.9, 0.99)), ({"optimizer": "rmsprop"}, None)]:  # fmt: skip
        seen.clear()
        est = WAEGAN(**tiny, **params).fit(X)
        given = [(c.optimizer_params or {}).get("betas") for c in seen]
        assert [b and tuple(b) for b in given] == [betas, betas]  # autoencoder, discriminator
        assert est.get_params()["optimizer_params"] == params.get("optimizer_params")
        assert [g["betas"] for g in build(torch.nn.Linear(1, 1).parameters(), seen[0])
                .param_groups if "betas" in g] == ([betas] if betas else [])  # fmt: skip
    assert WAEGAN().updates == (1, 1)
    vae = BetaVAE(**tiny).fit(X)
    assert vae._config(0).optimizer_params is None  # no adversarial game: Adam's defaults


def test_every_group_is_clustered_and_the_same_seed_gives_the_same_result(digits_small):
    X, y = digits_small
    fit = lambda: HRWAEGAN(**FAST, n_clusters=10, random_state=0, layer_matching=0.5).fit(X)  # noqa: E731
    a, b = fit(), fit()
    assert a.group_labels_.shape == (2, len(X)) and len(a.group_silhouette_) == 2
    assert np.array_equal(a.group_labels_, b.group_labels_)
    assert np.array_equal(a.labels_, a.group_labels_[0]) and np.array_equal(a.predict(X), a.labels_)
    assert a.transform_groups(X[:5]).shape == (2, 5, 23)
    assert {"reconstruction", "adversarial", "layer_matching", "discriminator"} <= set(
        a.history_[0]
    )
    assert cluster_acc(y, a.labels_) > 0.3  # chance is about 0.1
    lower = HRWAEGAN(**FAST, n_clusters=10, random_state=0, cluster_group=1).fit(X)
    assert np.array_equal(lower.labels_, lower.group_labels_[1])


@pytest.mark.parametrize("cls", [WAEGAN, BetaVAE, HRWAEGAN])
def test_save_load_gives_the_same_predictions_and_generated_images(tmp_path, digits_small, cls):
    X, _ = digits_small
    fast = VAE_FAST if cls is BetaVAE else FAST
    est = cls(**{**fast, "reducer": "umap"}, n_clusters=4, random_state=0).fit(X)
    est.save(tmp_path / "m")
    again = load(tmp_path / "m")
    assert type(again) is cls
    assert np.array_equal(again.predict(X), est.predict(X))
    assert np.array_equal(again.group_labels_, est.group_labels_)
    images = est.generate(6, random_state=1)
    assert images.shape == (6, 1, 8, 8) and 0 <= images.min() and images.max() <= 1
    assert np.array_equal(again.generate(6, random_state=1), images)
    assert not np.array_equal(est.generate(6, random_state=2), images)
    assert est.interpolate(X[0], X[1], 5).shape == (5, 1, 8, 8)
    if cls is not BetaVAE:
        assert len(again.discriminators_) == est.latent_groups


def test_k_comes_from_hdbscan_when_n_clusters_is_none(digits_small):
    X, _ = digits_small
    est = WAEGAN(**{**FAST, "reducer": "umap"}, n_clusters=None, hdbscan_denominator=20,
                 random_state=0).fit(X)  # fmt: skip
    found = est._hdbscan(est.reducer_.embedding_).n_clusters_
    assert est.n_clusters_ == est.clusterer_.n_clusters == found >= 2
    assert est.reducer_.n_components == 10


def test_noise_weights_on_a_hand_made_example():
    noise = np.array([True, False, False, True])
    assert noise_weights(noise, 0.15).tolist() == pytest.approx([1.15, 1, 1, 1.15])
    X = torch.rand(40, 1, 8, 8)
    tests = []

    def find_noise():
        tests.append(1)
        return np.arange(40) < 10  # the first ten images are "noise"

    from aeclust.training.adversarial import AdversarialStep

    step = AdversarialStep(loss="mse")
    cfg = TrainConfig(epochs=5, batch_size=10)
    history = Trainer(adversarial(), step, cfg, [NoiseAttention(2, 0.5, find_noise)]).fit(X)
    assert len(tests) == 2  # after epochs 2 and 4, not after the last
    assert [h.get("noise") for h in history] == [None, 0.25, None, 0.25, None]
    assert step.sample_weight.tolist() == [1.5] * 10 + [1.0] * 30


def test_noise_attention_in_the_estimator(digits_small):
    X, _ = digits_small
    est = WAEGAN(**{**FAST, "epochs": 3}, noise_attention=0.2, noise_every=1, random_state=0,
                 hdbscan_denominator=20).fit(X)  # fmt: skip
    assert 0 <= est.history_[0]["noise"] <= 1 and "noise" not in est.history_[-1]
    with pytest.raises(ConfigError, match="noise_every"):
        WAEGAN(**FAST, noise_attention=0.2).fit(X)


def test_bad_settings_are_refused_before_training(digits_small):
    X, _ = digits_small
    with pytest.raises(ConfigError, match="cluster_group=2 is not a latent group"):
        HRWAEGAN(**FAST, cluster_group=2).fit(X)
    with pytest.raises(ConfigError, match="latent_groups=3 needs at least 3 cells"):
        WAEGAN(**FAST, latent_groups=3).fit(X)
    with pytest.raises(DataError, match="loss='bce' needs pixel values in"):
        WAEGAN(**FAST).fit(X * 2 - 1)
    umap = {**FAST, "reducer": "umap"}  # refused before UMAP's compilation, too
    bad = [({"updates": (0, 1)}, "updates must be two positive integers"),
           ({"updates": 2}, "WAEGAN: "), ({"hdbscan_denominator": 0}, "hdbscan_denominator"),
           ({"first_updates": (1, 3)}, "set first_epochs"), ({"group_decay": 2}, "group_decay"),
           ({"alpha": -1}, "alpha must be a number >= 0"), ({"max_rollbacks": -1}, "max_rollbacks"),
           ({"noise_attention": 0.1, "noise_every": 2}, "from 1 to epochs - 1 = 1")]  # fmt: skip
    for params, message in bad:
        with pytest.raises(ConfigError, match=message):
            WAEGAN(**umap, **params).fit(X)
