import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeclust import DCAEKMeans
from aeclust.cluster.centers import assign_nearest, update_centers
from aeclust.errors import ConfigError

FAST = dict(autoencoder="mlp", autoencoder_params={"hidden": [16]}, epochs=2, batch_size=32)
N_CLUSTERS_1 = "sets n_clusters=1, which aeclust rejects on purpose (ConfigError: at least 2)"


# checks that set n_clusters=1, with the reason they fail; shared with test_dec
EXPECTED_FAILED = {
    c: N_CLUSTERS_1
    for c in (
        "check_dont_overwrite_parameters",
        "check_methods_subset_invariance",
        "check_fit2d_1feature",
        "check_fit2d_predict1d",
    )
}


@parametrize_with_checks(
    [DCAEKMeans(**FAST, n_clusters=3, loss="mse", random_state=0)],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_center_update_hand_made():
    Z = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]])
    centers = np.array([[1.0, 1.0], [11.0, 9.0], [50.0, 50.0]])
    assign = assign_nearest(Z, centers)
    assert assign.tolist() == [0, 0, 1, 1]
    new, empty = update_centers(Z, assign, centers)
    # eq. 7: means of the members; centre 2 had none and is re-seeded at the worst-fitted code
    assert new[0].tolist() == [1.0, 0.0] and new[1].tolist() == [11.0, 10.0]
    assert empty == [2]
    assert new[2].tolist() in Z.tolist()


def blobs(n=120, seed=0):
    """Three well-separated kinds of 1x8x8 images (bright top, left or bottom-right)."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, 8, 8)).astype(np.float32) * 0.1
    y = np.arange(n) % 3
    X[y == 0, :, :3, :] += 0.8
    X[y == 1, :, :, :3] += 0.8
    X[y == 2, :, 5:, 5:] += 0.8
    return np.clip(X, 0, 1), y


def test_e2_decreases_and_history_has_scores():
    X, y = blobs()
    est = DCAEKMeans(n_clusters=3, epochs=6, batch_size=20, init="kmeans", warmup_epochs=2,
                     lam=1.0, random_state=0).fit(X, y)  # fmt: skip
    joint = [h for h in est.history_ if not h.get("warmup")]
    assert len(joint) == 6 and all({"e1", "e2", "acc", "nmi"} <= set(h) for h in joint)
    assert joint[-1]["e2"] < joint[0]["e2"]
    assert joint[-1]["acc"] > 0.9
    assert np.array_equal(est.predict(X), est.labels_)


def test_paper_network_on_28x28_same_seed_save_load(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 28, 28)).astype(np.float32)
    a = DCAEKMeans(n_clusters=3, epochs=1, random_state=1).fit(X)
    b = DCAEKMeans(n_clusters=3, epochs=1, random_state=1).fit(X)
    assert np.array_equal(a.labels_, b.labels_)
    assert a.reconstruct(X[:2]).shape == (2, 1, 28, 28)
    a.save(tmp_path / "m")
    again = DCAEKMeans.load(tmp_path / "m")
    assert np.array_equal(again.predict(X), a.predict(X))
    assert np.array_equal(again.transform(X), a.transform(X))


def test_bad_init():
    with pytest.raises(ConfigError, match="init"):
        DCAEKMeans(init="kmeans++", epochs=1).fit(blobs()[0])


def test_e1_sums_over_pixels_as_in_eq3():
    X, _ = blobs(40)  # 8x8 images: 64 pixels
    runs = {
        red: DCAEKMeans(n_clusters=3, epochs=1, lam=0.0, e1_reduction=red, random_state=0)
        .fit(X)
        .history_[0]["e1"]
        for red in ("sum", "mean")
    }
    # with λ = 0 and Adam (invariant to the loss scale) both train alike; E1 differs by 64x
    assert runs["sum"] == pytest.approx(64 * runs["mean"], rel=1e-3)
    with pytest.raises(ConfigError, match="e1_reduction"):
        DCAEKMeans(n_clusters=3, epochs=1, e1_reduction="max").fit(X)
