import json

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeclust.errors import ConfigError, DataError, ModelFileError
from aeclust.estimators import AEClusterer, DeepClusterer, DenseNetClassifier
from aeclust.nn import AUTOENCODERS
from aeclust.nn.densenet import DenseNet, DenseNetConfig

# tiny and fast; lr 1e-2 so two epochs reach sklearn's accuracy bar (> 0.83 on blobs)
TINY = dict(epochs=2, batch_size=8, lr=1e-2, n_blocks=2, layers_per_block=1, growth_rate=4)
SMALL = dict(epochs=4, batch_size=16, lr=3e-3, n_blocks=2, layers_per_block=2, growth_rate=8)


def bars(n=100, seed=0):
    """(n, 1, 12, 12) noisy images with one bright horizontal (0) or vertical (1) bar."""
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 0.3, (n, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 2, n)
    at = rng.integers(2, 10, n)
    for i in range(n):
        if y[i]:
            X[i, 0, :, at[i]] += 1
        else:
            X[i, 0, at[i], :] += 1
    return X, y


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks gain nothing from threads, and busy-waiting OpenMP threads make them
    many times slower when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fitted():
    X, y = bars()
    return X, y, DenseNetClassifier(**SMALL, random_state=0).fit(X, y)


# Flat 2-D check data is seen as 1xD images. No check is expected to fail; a check that
# must be skipped goes in this dict with its reason, as in test_estimator.py.
EXPECTED_FAILED: dict[str, str] = {
    "check_methods_sample_order_invariance": "float32 convolutions of a reordered batch can "
    "differ in the 8th digit on some CPUs (measured: 1.2e-8 on an AMD EPYC), beyond the "
    "check's float64 tolerance",
}


@parametrize_with_checks(
    [DenseNetClassifier(**TINY, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 50, 50), (3, 64, 64)])
def test_network_shapes(shape):
    torch.manual_seed(0)
    net = DenseNet(DenseNetConfig(shape, n_classes=3))
    x = torch.randn(2, *shape)
    assert net(x).shape == (2, 3)
    assert net.features(x).shape == (2, net.n_features) and net.n_features == 94
    assert len(net.map_sizes) == 5 and min(min(s) for s in net.map_sizes) >= 2
    net.train()
    net(x[:1])  # batch norm in training: one image still gives > 1 value per channel


def test_documented_map_sizes():
    sizes = {s: DenseNet(DenseNetConfig((1, s, s), 2)).map_sizes for s in (50, 28, 8)}
    assert [h for h, _ in sizes[50]] == [50, 25, 12, 6, 3]
    assert [h for h, _ in sizes[28]] == [28, 14, 7, 3, 3]
    assert [h for h, _ in sizes[8]] == [8, 4, 2, 2, 2]
    assert "densenet" not in AUTOENCODERS  # a classifier, not an autoencoder


def test_learns_bars(fitted):
    X, y, est = fitted
    assert est.score(X, y) >= 0.9
    assert len(est.history_) == SMALL["epochs"] and {"loss", "acc"} <= set(est.history_[-1])
    assert est.predict_proba(X).shape == (len(X), 2)
    assert est.n_features_in_ == 144 and est.image_shape_ == (1, 12, 12)


def test_no_labels_says_what_to_do():
    X, _ = bars(20)
    with pytest.raises(DataError, match="needs labels") as info:
        DenseNetClassifier(**TINY).fit(X)
    assert "sub-folder per class" in str(info.value) and "clustering models" in str(info.value)


def test_string_labels(fitted):
    X, y, _ = fitted
    names = np.where(y == 1, "vertical", "horizontal")
    est = DenseNetClassifier(**SMALL, random_state=0).fit(X, names)
    assert est.classes_.tolist() == ["horizontal", "vertical"]
    assert set(est.predict(X)) <= {"horizontal", "vertical"}
    assert est.score(X, names) >= 0.9


def test_same_seed_same_predictions(fitted):
    X, y, est = fitted
    again = DenseNetClassifier(**SMALL, random_state=0).fit(X, y)
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    other = DenseNetClassifier(**{**SMALL, "epochs": 1}, random_state=1).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), est.predict_proba(X))


def test_flat_vectors_with_image_shape(fitted):
    X, y, _ = fitted
    est = DenseNetClassifier(**TINY, image_shape=(1, 12, 12), random_state=0)
    est.fit(X.reshape(len(X), -1), y)
    assert est.image_shape_ == (1, 12, 12)
    assert np.array_equal(est.predict_proba(X), est.predict_proba(X.reshape(len(X), -1)))


def test_save_load_identical(tmp_path, fitted):
    X, y, est = fitted
    est.save(tmp_path / "m")
    again = DenseNetClassifier.load(tmp_path / "m")
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    assert again.get_params() == {**est.get_params(), "device": "auto"}
    assert again.history_ == json.loads(json.dumps(est.history_))
    named = DenseNetClassifier(**TINY, random_state=0).fit(X, np.where(y, "v", "h"))
    named.save(tmp_path / "named")
    loaded = DenseNetClassifier.load(tmp_path / "named")
    assert loaded.classes_.dtype == named.classes_.dtype
    assert np.array_equal(loaded.predict(X), named.predict(X))


def test_load_refuses_other_models(tmp_path, fitted, digits_small):
    X, y, est = fitted
    est.save(tmp_path / "densenet")
    with pytest.raises(ModelFileError, match="not a DeepClusterer"):
        DeepClusterer.load(tmp_path / "densenet")
    ae = AEClusterer(autoencoder="mlp", autoencoder_params={"hidden": [8]}, latent_dim=2,
                     n_clusters=2, epochs=1, random_state=0)  # fmt: skip
    ae.fit(digits_small[0]).save(tmp_path / "ae")
    with pytest.raises(ModelFileError, match="not a DenseNetClassifier"):
        DenseNetClassifier.load(tmp_path / "ae")
    meta = tmp_path / "densenet" / "model.json"
    meta.write_text(meta.read_text().replace('"growth_rate": 8', '"growth_rate": 9'))
    with pytest.raises(ModelFileError, match="inconsistent"):
        DenseNetClassifier.load(tmp_path / "densenet")


@pytest.mark.parametrize(
    "kwargs, labels, error, match",
    [
        ({"n_blocks": 0}, None, ConfigError, "n_blocks must be a positive integer"),
        ({"lr": 0}, None, ConfigError, "lr > 0"),
        ({}, np.zeros(20), DataError, "at least 2 classes"),
        ({}, np.arange(19) % 2, DataError, "19 labels for 20 images"),
    ],
)
def test_bad_settings(kwargs, labels, error, match):
    X, y = bars(20)
    with pytest.raises(error, match=match):
        DenseNetClassifier(**{**TINY, **kwargs}).fit(X, y if labels is None else labels)
