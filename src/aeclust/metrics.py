"""Clustering scores as pure functions of ``(labels_true, labels_pred)``, and :func:`evaluate`.

Cluster ids are arbitrary, so scores that compare them with classes first map clusters to
classes: the Hungarian matching (one cluster per class, :func:`hungarian_mapping`) or the
majority vote (each cluster to its most frequent class, :func:`majority_mapping`). The
label -1 in ``labels_pred`` is noise (HDBSCAN): it is never matched and counts as wrong.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm

from .errors import DataError

NOISE = -1  # the label of points a density clusterer (HDBSCAN) leaves in no cluster


def _pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = np.asarray(y_true).ravel(), np.asarray(y_pred).ravel()
    if len(y_true) != len(y_pred):
        raise DataError(f"y_true has {len(y_true)} labels but y_pred has {len(y_pred)}.")
    if len(y_true) == 0:
        raise DataError("Cannot score empty label arrays.")
    return y_true, y_pred


def contingency(y_true, clusters) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts ``M`` (n_clusters, n_classes) of each (cluster, true label) pair.

    ``M[i, j]`` counts the items of cluster ``cluster_ids[i]`` with label ``class_ids[j]``;
    both id arrays are sorted (noise -1 first when present). Returns ``M, cluster_ids,
    class_ids``.
    """
    y_true, clusters = _pair(y_true, clusters)
    cluster_ids, rows = np.unique(clusters, return_inverse=True)
    class_ids, cols = np.unique(y_true, return_inverse=True)
    M = np.zeros((len(cluster_ids), len(class_ids)), dtype=np.int64)
    np.add.at(M, (rows, cols), 1)
    return M, cluster_ids, class_ids


def matched_row_order(M, noise_row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Order the rows of a contingency matrix so the Hungarian matching forms a diagonal.

    ``M`` (R, K) holds counts, rows = clusters, columns = classes; ``noise_row`` is left
    out of the matching and put last.

    Returns
    -------
    order : ndarray of shape (R,)
        Rows matched to columns 0, 1, ... (in column order), then unmatched rows by their
        largest column (bigger row first on ties), then the noise row.
    matched_col : ndarray of shape (R,)
        For each row of ``M`` (original order), its matched column, or -1.
    """
    M = np.asarray(M)
    rows = np.array([r for r in range(len(M)) if r != noise_row], dtype=int)
    matched_col = np.full(len(M), -1)
    if len(rows) and M.shape[1]:
        r, c = linear_sum_assignment(M[rows], maximize=True)
        matched_col[rows[r]] = c
    matched = sorted((matched_col[r], r) for r in rows if matched_col[r] >= 0)
    rest = sorted((M[r].argmax(), -M[r].sum(), r) for r in rows if matched_col[r] < 0)
    order = [r for _, r in matched] + [r for *_, r in rest]
    if noise_row is not None:
        order.append(noise_row)
    return np.asarray(order, dtype=int), matched_col


def _noise_row(cluster_ids: np.ndarray) -> int | None:
    return 0 if len(cluster_ids) and cluster_ids[0] == NOISE else None


def hungarian_mapping(y_true, y_pred) -> dict[int, int]:
    """Cluster id -> class id of the one-to-one matching that maximises agreement."""
    M, cluster_ids, class_ids = contingency(y_true, y_pred)
    _, matched_col = matched_row_order(M, _noise_row(cluster_ids))
    return {int(cluster_ids[r]): int(class_ids[c]) for r, c in enumerate(matched_col) if c >= 0}


def majority_mapping(y_true, y_pred) -> dict[int, int]:
    """Cluster id -> its most frequent true class (ties: the smallest class id).

    Several clusters may map to one class (the majority vote of Liu & Zhang); noise is
    not mapped.
    """
    M, cluster_ids, class_ids = contingency(y_true, y_pred)
    return {int(c): int(class_ids[M[i].argmax()]) for i, c in enumerate(cluster_ids) if c != NOISE}


def map_labels(y_pred, mapping: dict[int, int], fill: int = -1) -> np.ndarray:
    """``mapping[c]`` for every cluster id ``c`` in ``y_pred``; ``fill`` for unmapped ones."""
    y_pred = np.asarray(y_pred).ravel()
    return np.array([mapping.get(int(c), fill) for c in y_pred], dtype=np.int64)


def cluster_acc(y_true, y_pred) -> float:
    """Share of items in matched (cluster, class) pairs of the Hungarian matching.

    Works for any number of clusters and classes; unmatched clusters and noise are wrong.
    """
    M, cluster_ids, _ = contingency(y_true, y_pred)
    _, matched_col = matched_row_order(M, _noise_row(cluster_ids))
    hits = sum(M[r, c] for r, c in enumerate(matched_col) if c >= 0)
    return float(hits / M.sum())


def nmi(y_true, y_pred) -> float:
    """Normalised mutual information (arithmetic mean normalisation)."""
    return float(skm.normalized_mutual_info_score(*_pair(y_true, y_pred)))


def ari(y_true, y_pred) -> float:
    """Adjusted Rand index."""
    return float(skm.adjusted_rand_score(*_pair(y_true, y_pred)))


def purity(y_true, y_pred) -> float:
    """Sum over clusters of the size of their largest class, over N (noise counts as wrong)."""
    M, cluster_ids, _ = contingency(y_true, y_pred)
    keep = cluster_ids != NOISE
    return float(M[keep].max(axis=1).sum() / M.sum()) if keep.any() else 0.0


def _mapped(y_true, y_pred, mapping: str) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_pred = _pair(y_true, y_pred)
    if mapping not in ("hungarian", "majority"):
        raise ValueError(f"mapping must be 'hungarian' or 'majority', not {mapping!r}")
    table = (hungarian_mapping if mapping == "hungarian" else majority_mapping)(y_true, y_pred)
    wrong = int(np.min(y_true)) - 1  # a label that is no class: unmatched and noise are wrong
    return y_true, map_labels(y_pred, table, fill=wrong)


def f1_macro(y_true, y_pred, mapping: str = "hungarian") -> float:
    """Macro-averaged F1 over the true classes after mapping clusters to classes."""
    y_true, mapped = _mapped(y_true, y_pred, mapping)
    return float(skm.f1_score(y_true, mapped, labels=np.unique(y_true), average="macro"))


def f1_binary(y_true, y_pred, pos_label: int = 1, mapping: str = "majority") -> float:
    """F1 of the class ``pos_label`` after mapping clusters to classes (Liu & Zhang)."""
    y_true, mapped = _mapped(y_true, y_pred, mapping)
    return float(skm.f1_score(y_true, mapped, labels=[pos_label], average="macro"))


def noise_fraction(y_pred) -> float:
    """Share of items labelled noise (-1)."""
    y_pred = np.asarray(y_pred).ravel()
    return float(np.mean(y_pred == NOISE)) if len(y_pred) else 0.0


def labelled_fraction(y_pred) -> float:
    """Share of items in a cluster (not noise)."""
    return 1.0 - noise_fraction(y_pred)


def acc_labelled(y_true, y_pred) -> float:
    """:func:`cluster_acc` on the items not labelled noise; nan if all are noise."""
    y_true, y_pred = _pair(y_true, y_pred)
    keep = y_pred != NOISE
    return cluster_acc(y_true[keep], y_pred[keep]) if keep.any() else float("nan")


def silhouette(Z, labels, sample_size: int = 2000, random_state: int | None = 0) -> float:
    """Silhouette of ``labels`` on codes ``Z`` (N, d), on a seeded sample of at most
    ``sample_size`` non-noise items; nan when fewer than 2 clusters remain."""
    Z = np.asarray(Z).reshape(len(Z), -1)
    labels = np.asarray(labels).ravel()
    if len(Z) != len(labels):
        raise DataError(f"Z has {len(Z)} rows but labels has {len(labels)}.")
    keep = np.flatnonzero(labels != NOISE)
    if len(keep) > sample_size:
        keep = np.sort(np.random.default_rng(random_state).choice(keep, sample_size, False))
    n_found = len(np.unique(labels[keep]))
    if n_found < 2 or n_found >= len(keep):
        return float("nan")
    return float(skm.silhouette_score(Z[keep], labels[keep]))


def evaluate(y_true, y_pred, Z=None, *, silhouette_sample: int = 2000, random_state=0) -> dict:
    """All scores that apply: label scores when ``y_true`` is given, silhouette when ``Z`` is.

    Returns a dict of plain floats/ints: ``n_clusters`` (noise excluded); with labels
    ``acc``, ``nmi``, ``ari``, ``purity``, ``f1_macro``; with noise ``noise_fraction``
    and ``acc_labelled``; with codes ``silhouette``.
    """
    y_pred = np.asarray(y_pred).ravel()
    if len(y_pred) == 0:
        raise DataError("Cannot score empty label arrays.")
    scores: dict = {"n_clusters": int(len(np.setdiff1d(np.unique(y_pred), [NOISE])))}
    if y_true is not None:
        scores.update(
            acc=cluster_acc(y_true, y_pred),
            nmi=nmi(y_true, y_pred),
            ari=ari(y_true, y_pred),
            purity=purity(y_true, y_pred),
            f1_macro=f1_macro(y_true, y_pred),
        )
    if (y_pred == NOISE).any():
        scores["noise_fraction"] = noise_fraction(y_pred)
        if y_true is not None:
            scores["acc_labelled"] = acc_labelled(y_true, y_pred)
    if Z is not None:
        scores["silhouette"] = silhouette(Z, y_pred, silhouette_sample, random_state)
    return scores


def group_scores(y_true, group_labels, silhouettes=None) -> list[dict]:
    """The scores of each latent group's clusters in the format of Morais' Tables 4.1-4.4:
    ``group``, ``n_clusters``, ``labelled`` (share not noise), ``acc_labelled`` (accuracy
    on that share), ``acc`` (total accuracy: noise counts as wrong) and ``silhouette``
    (given, one per group). Without ``y_true`` only the label-free columns."""
    rows = []
    for g, labels in enumerate(group_labels):
        labels = np.asarray(labels).ravel()
        row = {"group": g, "n_clusters": int(len(np.setdiff1d(np.unique(labels), [NOISE]))),
               "labelled": labelled_fraction(labels)}  # fmt: skip
        if y_true is not None:
            row.update(acc_labelled=acc_labelled(y_true, labels), acc=cluster_acc(y_true, labels))
        if silhouettes is not None:
            row["silhouette"] = float(silhouettes[g])
        rows.append(row)
    return rows


def frechet_distance(A, B) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features (N, F) and
    (M, F): |mu_a - mu_b|² + Tr(S_a + S_b - 2 (S_a S_b)^½) (Dowson & Landau 1982).

    With Inception-v3 pool features this is the FID (Heusel et al. 2017); aeclust has no
    such network offline, so it is computed in the features of a network trained on the
    data's own labels (:meth:`aeclust.estimators.DenseNetClassifier.features`): compare
    values only within one feature network.
    """
    A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[1] or min(len(A), len(B)) < 2:
        raise DataError(f"Need two feature sets (N, F), (M, F) with N, M >= 2; got {A.shape}, "
                        f"{B.shape}.")  # fmt: skip
    mu = A.mean(0) - B.mean(0)
    Sa, Sb = np.atleast_2d(np.cov(A, rowvar=False)), np.atleast_2d(np.cov(B, rowvar=False))
    root = scipy.linalg.sqrtm(Sa @ Sb)
    if np.iscomplexobj(root):
        root = root.real  # rounding leaves tiny imaginary parts
    return float(mu @ mu + np.trace(Sa + Sb - 2 * root))
