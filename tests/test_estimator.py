import json

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeclust import AEClusterer, load
from aeclust.errors import ConfigError, DataError, ModelFileError

FAST = dict(autoencoder="mlp", autoencoder_params={"hidden": [32]}, epochs=3, batch_size=64)


def small(**kwargs):
    return AEClusterer(**{**FAST, "n_clusters": 3, **kwargs})


# Checks run on 2-D data, so the estimator sees flat vectors as 1x1xD images (mlp).
# These checks set n_clusters=1 before fitting; aeclust rejects fewer than 2 clusters by
# design (a clear ConfigError, issue #2), so they cannot pass.
N_CLUSTERS_1 = "sets n_clusters=1, which aeclust rejects on purpose (ConfigError: at least 2)"
EXPECTED_FAILED = {
    "check_dont_overwrite_parameters": N_CLUSTERS_1,
    "check_methods_subset_invariance": N_CLUSTERS_1,
    "check_fit2d_1feature": N_CLUSTERS_1,
    "check_fit2d_predict1d": N_CLUSTERS_1,
}


@parametrize_with_checks(
    [AEClusterer(**FAST, n_clusters=3, random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_fit_sets_attributes(digits_small):
    X, _ = digits_small
    est = small(random_state=0).fit(X)
    assert est.labels_.shape == (len(X),) and est.labels_.dtype == np.int64
    assert est.n_clusters_ == 3
    assert est.cluster_centers_.shape == (3, 10)
    assert len(est.history_) == 3
    assert set(est.timings_) == {"compile", "train", "encode", "cluster"}
    assert est.transform(X).shape == (len(X), 10)
    assert est.reconstruct(X[:4]).shape == (4, 1, 8, 8)
    assert np.array_equal(est.predict(X), est.labels_)


def test_conv_on_images_learns_digits(digits_small):
    X, y = digits_small
    from aeclust.metrics import cluster_acc

    est = AEClusterer(n_clusters=10, epochs=15, batch_size=32, random_state=0).fit(X)
    assert cluster_acc(y, est.labels_) > 0.3  # chance is about 0.1


def test_flat_vectors_with_image_shape(digits_small):
    X, _ = digits_small
    est = small(autoencoder="conv", autoencoder_params=None, image_shape=(1, 8, 8), random_state=0)
    est.fit(X.reshape(len(X), -1))
    assert est.image_shape_ == (1, 8, 8)
    assert np.array_equal(est.predict(X), est.predict(X.reshape(len(X), -1)))


@pytest.mark.parametrize(
    "clusterer", ["kmeans", "minibatch-kmeans", "gmm", "agglomerative", "hdbscan"]
)
def test_save_load_identical(tmp_path, digits_small, clusterer):
    X, _ = digits_small
    est = small(clusterer=clusterer, random_state=0).fit(X)
    est.save(tmp_path / "m")
    again = AEClusterer.load(tmp_path / "m")
    assert np.array_equal(again.transform(X), est.transform(X))
    assert np.array_equal(again.predict(X), est.predict(X))
    assert np.array_equal(again.labels_, est.labels_)
    assert again.get_params() == {**est.get_params(), "device": "auto"}
    assert load(tmp_path / "m").n_clusters_ == est.n_clusters_


def test_save_load_umap(tmp_path, digits_small):
    pytest.importorskip("umap")
    X, _ = digits_small
    est = small(reducer="umap", clusterer="gmm", random_state=0).fit(X)
    est.save(tmp_path / "m")
    again = AEClusterer.load(tmp_path / "m")
    assert np.array_equal(again.predict(X[:50]), est.predict(X[:50]))


def test_truncated_or_foreign_model_files(tmp_path, digits_small):
    X, _ = digits_small
    small(random_state=0).fit(X).save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated"):
        AEClusterer.load(tmp_path / "m")
    weights.write_bytes(data)
    meta = tmp_path / "m" / "model.json"
    meta.write_text(json.dumps({"hello": 1}))
    with pytest.raises(ModelFileError, match="not written by aeclust"):
        AEClusterer.load(tmp_path / "m")
    with pytest.raises(ModelFileError, match="No model"):
        AEClusterer.load(tmp_path / "nothing")


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (
            {"autoencoder": "vae"},
            ConfigError,
            "choose one of alexnet, bottleneck-cae, conv, conv-nopool"
            ", conv-pool, dcae, fc, hrwae, mlp, resnet",
        ),
        ({"clusterer": "kmean"}, ConfigError, "kmeans"),
        ({"n_clusters": 1}, ConfigError, "at least 2"),
        ({"n_clusters": 1000}, ConfigError, "larger than the number of samples"),
        ({"loss": "l1"}, ConfigError, "mse, bce"),
    ],
)
def test_bad_parameters(digits_small, kwargs, error, match):
    X, _ = digits_small
    with pytest.raises(error, match=match):
        small(**kwargs).fit(X)


def test_bad_data(digits_small):
    X, _ = digits_small
    with pytest.raises(DataError, match="5 dimension"):
        small().fit(X[:, None])
    bad = X.copy()
    bad[3, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        small().fit(bad)
    with pytest.raises(DataError, match="\\[0, 1\\]"):
        small(loss="bce").fit(X * 16)
    est = small(random_state=0).fit(X)
    with pytest.raises(DataError, match="do not match"):
        est.predict(np.zeros((2, 1, 9, 9), np.float32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_clusters": 301}, r"n_clusters=301 is larger than the number of samples \(300\)"),
        (
            {"n_clusters": 301, "reducer": "umap"},
            r"n_clusters=301 is larger than the number of samples \(300\)",
        ),
        ({"n_clusters": 299, "reducer": "umap"}, "UMAP to 299 components needs more than 300"),
        ({"reducer": "umap", "reducer_params": {"n_neighbors": 1}}, "n_neighbors must be"),
        ({"reducer": "umap", "reducer_params": {"min_dist": 2.0}}, "min_dist <= spread"),
        ({"reducer": "umap", "reducer_params": {"metric": "nonsense"}}, "UMAP rejects"),
        (
            {"clusterer": "hdbscan", "clusterer_params": {"min_cluster_size": 400}},
            r"min_cluster_size=400 is larger than the number of codes \(300\)",
        ),
        (
            {"clusterer": "hdbscan", "clusterer_params": {"min_samples": 400}},
            r"min_samples=400 is larger than the number of codes \(300\)",
        ),
    ],
)
def test_impossible_settings_fail_before_training(no_training, digits_small, kwargs, match):
    X, _ = digits_small
    with pytest.raises(ConfigError, match=match):
        small(**kwargs).fit(X)


@pytest.mark.parametrize("name", ["dcae-kmeans", "dec", "idec", "dcec"])
def test_joint_methods_check_n_clusters_before_training(no_training, digits_small, name):
    from aeclust.estimators import METHODS

    X, _ = digits_small
    with pytest.raises(ConfigError, match="larger than the number of samples"):
        METHODS[name](n_clusters=301).fit(X)
