"""Clustering codes split across processes (aeclust.cluster.sharded): the functions in one
process against scikit-learn and naive references, and 2 gloo processes (torchrun) against
one process."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs

from aeclust import AEClusterer
from aeclust.cluster import build_clusterer, clusterer_from_state
from aeclust.cluster.sharded import (
    cluster_shards,
    fit_on_sample,
    kmeans_sharded,
    minibatch_kmeans_sharded,
    sample_indices,
    shard_bounds,
)
from aeclust.errors import DataError
from test_distributed import HELPERS, torchrun

spec = importlib.util.spec_from_file_location("ddp_kmeans", HELPERS / "ddp_kmeans.py")
ddp_kmeans = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ddp_kmeans)


@pytest.fixture(scope="module")
def blobs():
    Z, _ = make_blobs(600, n_features=4, centers=4, cluster_std=2.0, random_state=1)
    return Z


# ---------------------------------------------------------------------- one process
@pytest.mark.parametrize("n, world", [(10, 3), (7, 2), (2, 4), (1000, 7), (6, 1)])
def test_shards_are_contiguous_in_rank_order_and_cover_every_row(n, world):
    bounds = [shard_bounds(n, r, world) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_sample_rows_are_seeded_sorted_and_distinct():
    a, b = sample_indices(1000, 100, 5), sample_indices(1000, 100, 5)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, sample_indices(1000, 100, 6))
    assert np.array_equal(sample_indices(50, 100, 5), np.arange(50))  # all rows: no sampling


@pytest.mark.parametrize("case", ["data", "far", "max_iter=2"])
def test_kmeans_matches_sklearn_lloyd_from_the_same_centres(blobs, case):
    init = blobs[:4].copy()
    if case == "far":  # one centre far from every code: its cluster is empty, re-seeded
        init[3] = blobs.max(axis=0) + 50
    max_iter = 2 if case == "max_iter=2" else 300  # stops before convergence
    ours = kmeans_sharded(blobs, init, max_iter=max_iter, tol=1e-4)
    ref = KMeans(4, init=init, n_init=1, algorithm="lloyd", max_iter=max_iter).fit(blobs)
    assert np.array_equal(ours.labels, ref.labels_)
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, rtol=0, atol=1e-9)
    assert ours.n_iter == ref.n_iter_
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-10)


def test_minibatch_with_one_batch_of_all_codes_is_one_lloyd_step(blobs):
    init = blobs[:4]
    mini = minibatch_kmeans_sharded(blobs, init, batch_size=len(blobs), max_iter=1)
    step = kmeans_sharded(blobs, init, max_iter=1, tol=0)
    np.testing.assert_allclose(mini.centers, step.centers, rtol=0, atol=1e-12)


def test_minibatch_centres_are_running_means_of_the_batches(blobs):
    """The rule against a naive reference: each centre is the mean of every code assigned
    to it so far (learning rate 1/count), over the seeded order of the passes."""
    init, batch, passes = blobs[:4], 50, 2
    ours = minibatch_kmeans_sharded(blobs, init, batch, passes, seed=3, max_no_improvement=None)
    rng = np.random.default_rng([3, 1])
    centers, seen = init.astype(float).copy(), [[] for _ in init]
    for _ in range(passes):
        order = rng.permutation(len(blobs))
        for b in range(0, len(blobs), batch):
            x = blobs[order[b : b + batch]]
            labels = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
            for k in range(len(centers)):
                seen[k] += list(x[labels == k])
                if len(seen[k]):
                    centers[k] = np.mean(seen[k], axis=0)
    np.testing.assert_allclose(ours.centers, centers, rtol=0, atol=1e-9)
    assert ours.n_iter == passes


def test_sampled_codes_keep_the_fit_labels_and_the_others_are_predicted(blobs):
    rows = sample_indices(len(blobs), 200, 0)
    clusterer = build_clusterer("agglomerative", 4)  # predict (nearest mean) != Ward's labels
    _, fitted, labels = fit_on_sample(blobs, 0, rows, None, clusterer)
    assert np.array_equal(labels[rows], fitted.labels_)
    rest = np.setdiff1d(np.arange(len(blobs)), rows)
    assert np.array_equal(labels[rest], fitted.predict(blobs[rest]))


@pytest.mark.parametrize("name", ["kmeans", "minibatch-kmeans"])
def test_kmeans_family_is_one_fitted_clusterer_that_saves_and_predicts(blobs, name):
    fit = cluster_shards(blobs, None, build_clusterer(name, 4, random_state=0), seed=1)
    assert fit.info["method"] == "all-reduce" and fit.info["sample_size"] == len(blobs)
    assert np.array_equal(fit.clusterer.labels_, fit.labels)
    again = clusterer_from_state(fit.clusterer.get_config(), fit.clusterer.state_dict())
    assert np.array_equal(again.predict(blobs), fit.labels)
    # k-means++ starts on the sample are seeded: the same seed, the same fit
    assert np.array_equal(cluster_shards(blobs, None, build_clusterer(name, 4), seed=1).labels,
                          fit.labels)  # fmt: skip


def test_bad_codes_are_refused(blobs):
    Z = blobs.copy()
    Z[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        cluster_shards(Z, None, build_clusterer("kmeans", 4), seed=0)


def test_one_process_fit_describes_itself_and_its_shard_is_everything():
    X = (load_digits().images[:60] / 16).astype(np.float32)[:, None]
    est = AEClusterer(epochs=1, batch_size=30, n_clusters=3, random_state=0).fit(X)
    assert est.shard_ == (0, 60)
    assert est.cluster_info_["method"] == "one process" and est.cluster_info_["processes"] == 1
    shard = est.transform_shard(X)
    assert (shard.start, shard.stop) == (0, 60)
    assert np.array_equal(shard.codes, est.transform(X))


# ---------------------------------------------------------------------- two processes
def test_two_processes_give_the_one_process_results(tmp_path):
    result = torchrun(str(HELPERS / "ddp_kmeans.py"), "functions", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["world"] == 2
    r0, r1 = report["ranks"]
    Z, init, far = ddp_kmeans.codes()
    one = ddp_kmeans.run_functions(Z, init, far)  # no process group: the all-reduces are no-ops
    assert len(r0["kmeans"]["labels"]) == 501 and len(r1["kmeans"]["labels"]) == 500
    for name, start in (("kmeans", init), ("kmeans_far", far), ("minibatch", None)):
        for r in (r0, r1):  # the centres are the same on both ranks, and as in one process
            np.testing.assert_allclose(r[name]["centers"], one[name]["centers"], rtol=0, atol=1e-9)
        labels = r0[name]["labels"] + r1[name]["labels"]  # the shards, in rank order
        assert labels == one[name]["labels"]
        if start is not None:
            sk = KMeans(5, init=start, n_init=1, algorithm="lloyd").fit(Z)
            assert labels == sk.labels_.tolist()
            assert r0[name]["n_iter"] == r1[name]["n_iter"] == sk.n_iter_
    for name in ("kmeans", "minibatch-kmeans", "gmm", "hdbscan"):
        fit0, fit1 = r0[f"fit-{name}"], r1[f"fit-{name}"]
        assert fit0["labels"] == fit1["labels"] == one[f"fit-{name}"]["labels"]
        assert fit1["predict_all"] == fit0["predict_all"]  # rank 0's fitted clusterer on both
        assert fit0["info"]["processes"] == 2 and fit0["info"]["sample_size"] == 400
    assert r0["fit-gmm"]["labels"] == r0["fit-gmm"]["predict_all"]  # GMM's labels_ = predict
    assert "gmm fitted on rank 0 over a sample of 400 of 1,001 codes" in result.stderr
    assert "kmeans with all-reduced centres" in result.stderr


def test_aeclusterer_under_two_processes_labels_all_codes_on_every_rank(tmp_path):
    runs = []
    for out in ("a", "b"):
        (tmp_path / out).mkdir()
        result = torchrun(str(HELPERS / "ddp_kmeans.py"), "estimator", out, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        runs.append(json.loads(result.stdout.strip().splitlines()[-1])["ranks"])
        assert sorted(p.name for p in (tmp_path / out).iterdir()) == ["gmm", "kmeans"]  # rank 0
        assert "kmeans with all-reduced centres (k-means++ on a sample of 150" in result.stderr
        assert "gmm fitted on rank 0 over a sample of 150 of 200 codes" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
    (r0, r1), (again0, _) = runs
    for name, method in (("kmeans", "all-reduce"), ("gmm", "sample")):
        assert len(r0[name]["labels"]) == 200 and r0[name]["labels"] == r1[name]["labels"]
        assert r0[name]["info"]["method"] == method and r0[name]["info"]["processes"] == 2
        assert (r0[name]["shard"], r1[name]["shard"]) == ([0, 100], [100, 200])
        assert r1[name]["shard_rows"] == [100, 200]
        for key in ("labels", "centers", "codes"):  # a second run gives the same
            assert again0[name][key] == r0[name][key]
        codes = np.array(r0[name]["codes"] + r1[name]["codes"], dtype=np.float32)
        model = AEClusterer.load(tmp_path / "a" / name)
        assert model.labels_.tolist() == r0[name]["labels"]  # all N, also after loading
        assert model.cluster_info_["method"] == method
        assert model.clusterer_.predict(codes).tolist() == r0[name]["labels"]  # GMM: = predict
    assert len(model.clusterer_.labels_) == 150  # the GMM's own labels are its sample's
