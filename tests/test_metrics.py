import itertools

import numpy as np
import pytest

from aeclust import metrics as m
from aeclust.errors import DataError

Y = [0, 0, 0, 1, 1, 2]
P = [1, 1, 0, 0, 0, 2]  # best matching 1->0, 0->1, 2->2: 2 + 2 + 1 = 5 of 6 right


def test_acc_hand_computed():
    assert m.cluster_acc(Y, P) == pytest.approx(5 / 6)
    assert m.hungarian_mapping(Y, P) == {0: 1, 1: 0, 2: 2}


def test_acc_rectangular():
    # more clusters than classes: cluster 3 stays unmatched
    assert m.cluster_acc([0, 0, 1, 1], [0, 3, 1, 1]) == pytest.approx(3 / 4)
    # fewer clusters than classes: one class stays unmatched
    assert m.cluster_acc([0, 1, 2, 2], [5, 5, 7, 7]) == pytest.approx(3 / 4)


def brute_force_acc(y, p):
    clusters, classes = np.unique(p), np.unique(y)
    best = 0
    for perm in itertools.permutations(range(max(len(clusters), len(classes))), len(clusters)):
        pairs = zip(clusters, perm, strict=True)
        mapping = {c: classes[j] if j < len(classes) else -99 for c, j in pairs}
        best = max(best, sum(mapping[a] == b for a, b in zip(p, y, strict=True)))
    return best / len(y)


@pytest.mark.parametrize("seed", range(6))
def test_acc_equals_brute_force(seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 3, 12), rng.integers(0, 2 + seed % 3, 12)
    assert m.cluster_acc(y, p) == pytest.approx(brute_force_acc(y, p))


@pytest.mark.parametrize("fn", [m.cluster_acc, m.nmi, m.ari, m.purity, m.f1_macro])
def test_invariant_to_cluster_renaming(fn):
    renamed = np.array([7, 9, 4])[np.array(P)]
    assert fn(Y, renamed) == pytest.approx(fn(Y, P))


def test_perfect_and_hand_values():
    assert m.nmi([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert m.ari([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert m.nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    # purity: clusters {1: classes 0,0}, {0: 0,1,1}, {2: 2} -> (2 + 2 + 1) / 6
    assert m.purity(Y, P) == pytest.approx(5 / 6)
    # f1 after matching: class 0 -> tp 2, fp 0, fn 1 -> 0.8; class 1 -> tp 2, fp 1 -> 0.8; 2 -> 1
    assert m.f1_macro(Y, P) == pytest.approx((0.8 + 0.8 + 1.0) / 3)


def test_majority_mapping_several_clusters_one_class():
    y = [0, 0, 0, 0, 1, 1]
    p = [0, 0, 1, 1, 2, 1]  # clusters 0 and 1 are mostly class 0; cluster 2 is class 1
    assert m.majority_mapping(y, p) == {0: 0, 1: 0, 2: 1}
    assert m.map_labels(p, {0: 0, 1: 0}).tolist() == [0, 0, 0, 0, -1, 0]
    # binary F1 of class 1 after majority vote: predicted 1 only for item 4: tp 1, fn 1
    assert m.f1_binary(y, p, pos_label=1) == pytest.approx(2 / 3)
    assert m.f1_binary(y, p, pos_label=0) == pytest.approx(2 * 4 / (2 * 4 + 1))


def test_noise_counts_as_wrong():
    y, p = [0, 0, 1, 1], [-1, 0, 1, 1]
    assert m.cluster_acc(y, p) == pytest.approx(3 / 4)
    assert m.noise_fraction(p) == pytest.approx(1 / 4)
    assert m.acc_labelled(y, p) == pytest.approx(1.0)
    assert m.purity(y, p) == pytest.approx(3 / 4)
    assert -1 not in m.hungarian_mapping(y, p) and -1 not in m.majority_mapping(y, p)


def test_silhouette_sampled_and_noise_excluded():
    rng = np.random.default_rng(0)
    Z = np.r_[rng.normal(0, 0.1, (50, 2)), rng.normal(5, 0.1, (50, 2))]
    labels = np.r_[np.zeros(50, int), np.ones(50, int)]
    assert m.silhouette(Z, labels) > 0.9
    noisy = labels.copy()
    noisy[:10] = -1
    Z_bad = Z.copy()
    Z_bad[:10] = 100  # far away, but noise: ignored
    assert m.silhouette(Z_bad, noisy) > 0.9
    assert m.silhouette(Z, labels, sample_size=20) == m.silhouette(Z, labels, sample_size=20)
    assert np.isnan(m.silhouette(Z, np.zeros(100, int)))


def test_evaluate_keys():
    Z = np.random.default_rng(0).normal(size=(6, 2))
    full = m.evaluate(Y, P, Z)
    assert set(full) == {"n_clusters", "acc", "nmi", "ari", "purity", "f1_macro", "silhouette"}
    assert all(isinstance(v, float | int) for v in full.values())
    assert set(m.evaluate(None, P)) == {"n_clusters"}
    noisy = m.evaluate(Y, [-1, 1, 0, 0, 0, 2])
    assert noisy["n_clusters"] == 3 and {"noise_fraction", "acc_labelled"} <= set(noisy)


def test_errors():
    with pytest.raises(DataError, match="3 labels but y_pred has 2"):
        m.cluster_acc([0, 1, 1], [0, 1])
    with pytest.raises(DataError, match="empty"):
        m.nmi([], [])


def test_frechet_distance_matches_its_closed_form_for_diagonal_gaussians():
    from aeclust.metrics import frechet_distance

    rng = np.random.default_rng(0)
    A = rng.normal(size=(40000, 3))
    B = rng.normal(size=(40000, 3)) * np.array([2.0, 1.0, 0.5]) + np.array([1.0, 0.0, -1.0])
    # |mu_a - mu_b|^2 + sum (sigma_a - sigma_b)^2 for diagonal covariances
    expected = 2.0 + (1 - 2) ** 2 + 0 + (1 - 0.5) ** 2
    assert abs(frechet_distance(A, B) - expected) < 0.05
    assert abs(frechet_distance(A, A)) < 1e-9
    with pytest.raises(DataError, match="Need two feature sets"):
        frechet_distance(A, B[:, :2])
