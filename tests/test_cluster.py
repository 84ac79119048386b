"""Clustering of latent codes: recovery, predict, determinism, save/restore, errors."""

import json
import logging

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

import aeclust.cluster as cluster
from aeclust.cluster import (
    CLUSTERERS,
    REDUCERS,
    build_clusterer,
    build_reducer,
    clusterer_from_state,
    reducer_from_state,
)
from aeclust.errors import ConfigError, DataError, ModelFileError

K = 4


@pytest.fixture(scope="module")
def blobs():
    """300 codes of size 5 in 4 well-separated blobs, and their true labels."""
    Z, y = make_blobs(300, n_features=5, centers=K, cluster_std=0.6, random_state=0)
    return Z.astype(np.float32), y


@pytest.fixture(scope="module")
def new_codes(blobs):
    """Codes the clusterers never saw: around the blobs plus uniform points."""
    Z, _ = blobs
    rng = np.random.default_rng(1)
    near = Z[rng.choice(len(Z), 40)] + rng.normal(0, 0.5, (40, Z.shape[1]))
    wide = rng.uniform(Z.min(0), Z.max(0), (40, Z.shape[1]))
    return np.concatenate([near, wide])


def make(name, **params):
    return build_clusterer(name, n_clusters=K, random_state=0, **params)


@pytest.fixture(scope="module")
def fitted(blobs):
    """Each clusterer fitted once on the blobs (shared: fitting is the slow part)."""
    return {name: make(name).fit(blobs[0]) for name in CLUSTERERS}


def round_trip(config, arrays, tmp_path):
    """Write config as JSON and arrays as safetensors, read both back."""
    path = tmp_path / "state.safetensors"
    save_file(arrays, str(path))
    return json.loads(json.dumps(config)), load_file(str(path))


def test_public_api():
    assert CLUSTERERS == ("kmeans", "minibatch-kmeans", "gmm", "agglomerative", "hdbscan")
    assert REDUCERS == ("umap",)
    for name in cluster.__all__:
        assert hasattr(cluster, name), name


@pytest.mark.parametrize("name", CLUSTERERS)
def test_recovers_blobs(name, blobs, fitted):
    Z, y = blobs
    c = fitted[name]
    assert c.labels_.dtype == np.int64 and c.labels_.shape == (len(Z),)
    assert adjusted_rand_score(y, c.labels_) > 0.95
    assert c.n_clusters_ == K
    assert c.cluster_centers_.shape == (K, Z.shape[1])


@pytest.mark.parametrize("name", ["kmeans", "minibatch-kmeans", "gmm", "agglomerative"])
def test_predict_training_codes_gives_labels(name, blobs, fitted):
    # exact for the first three; for Ward a nearest-centroid approximation that is exact
    # on well-separated blobs
    Z, _ = blobs
    c = fitted[name]
    assert np.array_equal(c.predict(Z), c.labels_)


@pytest.mark.parametrize("name", ["kmeans", "minibatch-kmeans"])
def test_kmeans_predict_matches_sklearn(name, blobs, fitted, new_codes):
    c = fitted[name]
    # a fitted sklearn KMeans whose centres are replaced: its predict is the reference
    Z = blobs[0].astype(np.float64)
    reference = KMeans(n_clusters=K, n_init=1, max_iter=1).fit(Z)
    reference.cluster_centers_ = c.cluster_centers_
    assert np.array_equal(c.predict(Z), reference.predict(Z))
    assert np.array_equal(c.predict(new_codes), reference.predict(new_codes))


@pytest.mark.parametrize("name", CLUSTERERS)
def test_state_round_trip_predicts_identically(name, fitted, new_codes, tmp_path):
    c = fitted[name]
    arrays = c.state_dict()
    for value in arrays.values():
        assert value.dtype in (np.float32, np.float64, np.int64)
        assert value.flags.c_contiguous
    config, arrays = round_trip(c.get_config(), arrays, tmp_path)
    restored = clusterer_from_state(config, arrays)
    assert restored.get_config() == c.get_config()
    assert np.array_equal(restored.labels_, c.labels_)
    assert restored.n_clusters_ == c.n_clusters_
    np.testing.assert_array_equal(restored.cluster_centers_, c.cluster_centers_)
    assert np.array_equal(restored.predict(new_codes), c.predict(new_codes))


@pytest.mark.parametrize("name", CLUSTERERS)
def test_same_seed_same_labels(name, blobs, fitted):
    again = make(name).fit(blobs[0])
    assert np.array_equal(again.labels_, fitted[name].labels_)


def test_config_is_complete_json():
    config = make("gmm", reg_covar=1e-4).get_config()
    assert config["name"] == "gmm" and config["n_clusters"] == K and config["random_state"] == 0
    assert config["params"]["reg_covar"] == 1e-4 and config["params"]["covariance_type"] == "full"
    json.dumps(config)


def test_hdbscan_noise_and_denominator(blobs):
    Z, _ = blobs
    outliers = np.full((3, Z.shape[1]), 100.0) + np.arange(3)[:, None] * 30
    c = build_clusterer("hdbscan", min_cluster_size_denominator=10).fit(np.vstack([Z, outliers]))
    assert c.min_cluster_size_ == len(c.labels_) // 10
    assert np.all(c.labels_[-3:] == -1)
    assert c.n_clusters_ == K  # noise is not a cluster
    assert c.cluster_centers_.shape == (K, Z.shape[1])
    assert c.predict(outliers + 0.01).tolist() == [-1, -1, -1]


def test_hdbscan_without_clusters(caplog):
    Z = np.random.default_rng(0).uniform(size=(30, 3))
    with caplog.at_level(logging.WARNING):
        c = build_clusterer("hdbscan", min_cluster_size=10).fit(Z)
    assert "no cluster" in caplog.text
    assert np.all(c.labels_ == -1) and c.n_clusters_ == 0 and c.cluster_centers_ is None
    restored = clusterer_from_state(c.get_config(), c.state_dict())
    assert np.all(restored.predict(Z) == -1)


def test_hdbscan_size_parameters_exclusive(blobs):
    c = build_clusterer("hdbscan", min_cluster_size=5, min_cluster_size_denominator=10)
    with pytest.raises(ConfigError, match="not both"):
        c.fit(blobs[0])
    with pytest.raises(ConfigError, match="smaller min_cluster_size"):
        build_clusterer("hdbscan", min_cluster_size=50).fit(blobs[0][:20])


def test_unknown_name_suggests():
    with pytest.raises(ConfigError, match="kmeans") as info:
        build_clusterer("kmean")
    assert "Did you mean 'kmeans'" in str(info.value)
    with pytest.raises(ConfigError, match="umap"):
        build_reducer("umapp")


def test_unknown_param_names_valid_ones():
    with pytest.raises(ConfigError, match="'n_int'.*n_init.*Did you mean 'n_init'"):
        build_clusterer("kmeans", n_int=5)
    with pytest.raises(ConfigError, match="valid parameters: none"):
        build_clusterer("agglomerative", n_init=5)
    with pytest.raises(ConfigError, match="n_neighbours"):
        build_reducer("umap", n_neighbours=5)


def test_bad_inputs(blobs):
    with pytest.raises(ConfigError, match="at least 2"):
        build_clusterer("kmeans", n_clusters=1)
    with pytest.raises(ConfigError, match="fewer clusters"):
        build_clusterer("kmeans", n_clusters=50).fit(blobs[0][:10])
    with pytest.raises(ConfigError, match="random_state"):
        build_clusterer("kmeans", random_state="seed")
    with pytest.raises(DataError, match="2-D"):
        make("kmeans").fit(np.zeros(10))
    with pytest.raises(DataError, match="NaN"):
        make("kmeans").fit(np.full((10, 2), np.nan))
    c = make("kmeans").fit(blobs[0][:20])
    with pytest.raises(DataError, match="fitted on 5"):
        c.predict(np.zeros((3, 2)))
    with pytest.raises(ModelFileError, match="cluster_centers_"):
        clusterer_from_state(c.get_config(), {"labels_": c.labels_})
    assert build_reducer(None) is None


# ---------------------------------------------------------------------- UMAP (slow: numba JIT)
@pytest.fixture(scope="module")
def umap_fitted(blobs):
    pytest.importorskip("umap")
    r = build_reducer("umap", n_components=2, random_state=0, n_epochs=50)
    return r, r.fit_transform(blobs[0])


def test_umap_reduces_and_clusters(umap_fitted, blobs):
    r, embedding = umap_fitted
    assert embedding.shape == (len(blobs[0]), 2)
    labels = make("kmeans").fit(embedding).labels_
    assert adjusted_rand_score(blobs[1], labels) > 0.95


def test_umap_refit_round_trip_is_identical(umap_fitted, new_codes, tmp_path, recwarn):
    r, embedding = umap_fitted
    config, arrays = round_trip(r.get_config(), r.state_dict(), tmp_path)
    restored = reducer_from_state(config, arrays)
    assert not [w for w in recwarn if "refitted UMAP differs" in str(w.message)]
    assert np.array_equal(restored.embedding_, embedding)
    assert np.array_equal(restored.transform(new_codes), r.transform(new_codes))


def test_umap_seed_none_means_zero():
    pytest.importorskip("umap")
    assert build_reducer("umap", random_state=None).get_config()["random_state"] == 0


def test_umap_exact_neighbours_from_4096_codes(tmp_path, recwarn):
    """From 4,096 codes UMAP would search approximately (pynndescent, whose nn_descent is
    compiled again in every process); the reducer gives it the exact neighbours instead,
    and transform, the refit and the seed stay as before."""
    pytest.importorskip("umap")
    from sklearn.neighbors import NearestNeighbors

    from aeclust.cluster.reducers import ExactSearch, uses_exact_neighbours

    Z, y = make_blobs(4100, n_features=4, centers=K, random_state=0)
    Z = Z.astype(np.float32)
    r = build_reducer("umap", n_components=2, random_state=0, n_neighbors=10, n_epochs=20)
    embedding = r.fit_transform(Z)
    assert isinstance(r.umap_._knn_search_index, ExactSearch)
    _, exact = NearestNeighbors(n_neighbors=10, algorithm="brute").fit(Z).kneighbors(Z)
    assert (np.sort(r.umap_._knn_indices, 1) == np.sort(exact, 1)).mean() > 0.999  # ties
    labels = make("kmeans").fit(embedding).labels_
    assert adjusted_rand_score(y, labels) > 0.95
    new = Z[:30] + 0.05
    moved = r.transform(new)
    assert moved.shape == (30, 2)
    assert np.array_equal(moved, r.transform(new))
    assert adjusted_rand_score(y[:30], make("kmeans").fit(embedding).predict(moved)) > 0.9
    config, arrays = round_trip(r.get_config(), r.state_dict(), tmp_path)
    restored = reducer_from_state(config, arrays)
    assert not [w for w in recwarn if "refitted UMAP differs" in str(w.message)]
    assert np.array_equal(restored.transform(new), moved)
    # where the exact search is used: from 4,096 to 100,000 codes, for metrics it shares
    params = {"n_neighbors": 20, "metric": "euclidean"}
    assert [uses_exact_neighbours(n, params) for n in (4095, 4096, 100_000, 100_001)] == [
        False, True, True, False,
    ]  # fmt: skip
    assert uses_exact_neighbours(5000, {"n_neighbors": 20, "metric": "cosine"})
    assert not uses_exact_neighbours(5000, {"n_neighbors": 20, "metric": "correlation"})
    assert not uses_exact_neighbours(5000, {"n_neighbors": 5000, "metric": "euclidean"})
