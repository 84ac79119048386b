"""Cross-validated comparison of clusterings with a supervised baseline (Liu & Zhang 2021).

The protocol of the histopathology study, as pure functions (no files, no plots):

- :func:`make_folds`: k stratified folds; with groups (e.g. patients) grouped folds, so the
  tiles of one patient never fall on both the training and the held-out side.
- :func:`run_fold`: train one method on the training folds and label the held-out fold.
  An autoencoder ("fc", "conv-nopool", ...) trains on the training images (no labels),
  then mini-batch k-means (batch 1,000, as in the paper) clusters the codes of the
  held-out images; "kmeans" clusters the held-out pixels scaled to [0, 1] ("sole
  k-means"); "densenet" is a supervised classifier trained on the training labels and
  asked for the held-out labels. With ``cluster_on="train"`` the clusters are fitted on
  the training codes (or pixels) instead, and the held-out items go to the nearest
  centre: that scores whether the clusters carry over to new images.
- :func:`score`: ACC with the Hungarian matching (eq. 14), accuracy and F1 after the
  paper's majority-vote mapping of each cluster to a class (binary F1 of the positive
  class for two classes, macro-F1 otherwise), NMI and ARI. The classifier's predictions
  are class labels already and are scored without a mapping.
- :func:`summarise`: mean and standard deviation over folds, ranked by F1 then ACC.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from .data import ImageSet
from .errors import ConfigError, DataError
from .metrics import ari, cluster_acc, f1_binary, f1_macro, nmi, purity

BASELINES = ("kmeans", "densenet")
SCORES = ("f1", "acc", "acc_majority", "nmi", "ari")
KMEANS_BATCH = 1000  # mini-batch size of k-means in the paper (section 4)


@dataclass
class MethodSpec:
    """How to build one compared method. ``kind`` is "autoencoder", "kmeans" or "densenet";
    ``params`` go to the estimator (AEClusterer or DenseNetClassifier)."""

    name: str
    kind: str
    params: dict = field(default_factory=dict)


@dataclass
class FoldResult:
    method: str
    fold: int
    scores: dict  # SCORES -> float
    seconds: float
    n_train: int
    n_test: int
    codes: np.ndarray | None = None  # held-out codes (or pixels), for the t-SNE map
    clusters: np.ndarray | None = None  # held-out clusters (or predicted classes)


def make_folds(
    data: ImageSet, n_folds: int = 5, seed: int = 0, grouped: bool = True
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train index, held-out index) pairs of stratified k-fold cross-validation.

    When ``grouped`` and ``data.groups`` is set, folds are built from whole groups
    (scikit-learn's ``StratifiedGroupKFold``), so no group is split between the sides.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    if data.y is None:
        raise DataError(
            "Cross-validated scores need labels, and these data have none. Use a folder with "
            "one sub-folder per class (or <patient>/<class>/ tiles), or y in the .npz; to "
            "cluster unlabelled images use `aeclust run`."
        )
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or n_folds < 2:
        raise ConfigError(f"cv must be an integer >= 2 (the number of folds); got {n_folds!r}.")
    counts = np.bincount(data.y)
    smallest = int(counts[counts > 0].min())
    if smallest < n_folds:
        raise DataError(
            f"The smallest class has {smallest} item(s), fewer than the {n_folds} folds; "
            "lower --cv or add data."
        )
    index = np.arange(len(data))
    if grouped and data.groups is not None:
        n_groups = len(np.unique(data.groups))
        if n_groups < n_folds:
            raise DataError(
                f"Grouped folds need at least {n_folds} groups (e.g. patients); the data have "
                f"{n_groups}. Lower --cv or pass --no-group-folds."
            )
        splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
        splits = splitter.split(index, data.y, data.groups)
    else:
        splits = StratifiedKFold(n_folds, shuffle=True, random_state=seed).split(index, data.y)
    return [(np.asarray(tr), np.asarray(te)) for tr, te in splits]


def score(y_true, y_pred, n_classes: int, pos_label: int = 1, supervised: bool = False) -> dict:
    """The table's scores of one held-out fold (see the module docstring)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if supervised:
        average = "binary" if n_classes == 2 else "macro"
        labels = None if n_classes == 2 else np.arange(n_classes)
        acc = float(accuracy_score(y_true, y_pred))
        f1 = f1_score(y_true, y_pred, pos_label=pos_label, average=average, labels=labels)
        scores = {"f1": float(f1), "acc": acc, "acc_majority": acc}
    else:
        f1 = (
            f1_binary(y_true, y_pred, pos_label=pos_label)
            if n_classes == 2
            else f1_macro(y_true, y_pred, mapping="majority")
        )
        scores = {
            "f1": f1,
            "acc": cluster_acc(y_true, y_pred),
            "acc_majority": purity(y_true, y_pred),  # accuracy after the majority vote
        }
    scores.update(nmi=nmi(y_true, y_pred), ari=ari(y_true, y_pred))
    return scores


def _fit_centres(Z_fit: np.ndarray, Z_test: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Mini-batch k-means on ``Z_fit``; the clusters of ``Z_test``."""
    from .cluster import build_clusterer

    clusterer = build_clusterer("minibatch-kmeans", k, random_state=seed, batch_size=KMEANS_BATCH)
    clusterer.fit(Z_fit)
    same = Z_fit is Z_test
    return np.asarray(clusterer.labels_ if same else clusterer.predict(Z_test))


def _rows(X, index: np.ndarray):
    """``X[index]``; images on disk give a view that reads nothing yet."""
    return X.subset(index) if hasattr(X, "subset") else X[index]


def _pixel_kmeans_streamed(X_train, X_test, k: int, seed: int, cluster_on: str) -> np.ndarray:
    """Sole k-means on pixels that stay on disk: scikit-learn's ``MiniBatchKMeans`` fed
    the images of ``cluster_on`` a mini-batch of :data:`KMEANS_BATCH` at a time
    (``partial_fit``, one pass in a seeded order, k-means++ on the first batch), then every
    held-out image assigned to its nearest centre. In memory, the same baseline is
    ``MiniBatchKMeans.fit`` over all pixels, which needs them all at once."""
    from sklearn.cluster import MiniBatchKMeans

    fit_on = X_test if cluster_on == "test" else X_train
    model = MiniBatchKMeans(n_clusters=k, random_state=seed, batch_size=KMEANS_BATCH, n_init=1)
    order = np.random.default_rng(seed).permutation(len(fit_on))
    step = max(KMEANS_BATCH, k)
    for start in range(0, len(order), step):
        rows = np.sort(order[start : start + step])
        model.partial_fit(fit_on[rows].reshape(len(rows), -1))
    return np.concatenate(
        [model.predict(rows.reshape(len(rows), -1)) for _, rows in X_test.chunks()]
    )


def run_fold(
    spec: MethodSpec,
    data: ImageSet,
    train: np.ndarray,
    test: np.ndarray,
    *,
    n_clusters: int,
    pos_label: int = 1,
    seed: int = 0,
    cluster_on: str = "test",
    fold: int = 0,
) -> FoldResult:
    """Train ``spec`` on ``data[train]``, label ``data[test]`` and score it."""
    if cluster_on not in ("test", "train"):
        raise ConfigError(f"cluster_on must be 'test' or 'train'; got {cluster_on!r}.")
    t0 = time.perf_counter()
    X_train, X_test = _rows(data.X, train), _rows(data.X, test)
    n_classes = len(np.unique(data.y))
    if spec.kind == "densenet":
        from .estimators import DenseNetClassifier

        est = DenseNetClassifier(random_state=seed, **spec.params).fit(X_train, data.y[train])
        predicted = est.predict(X_test)
        codes = None
    else:
        if spec.kind == "kmeans" and hasattr(X_train, "chunks"):  # pixels on disk
            predicted, codes = _pixel_kmeans_streamed(X_train, X_test, n_clusters, seed,
                                                      cluster_on), None  # fmt: skip
        elif spec.kind == "kmeans":  # "sole k-means" on the pixels
            Z_train, Z_test = X_train.reshape(len(train), -1), X_test.reshape(len(test), -1)
        else:
            from .estimators import AEClusterer

            params = {"clusterer": "minibatch-kmeans", "n_clusters": n_clusters, **spec.params}
            params["clusterer_params"] = {"batch_size": KMEANS_BATCH}
            est = AEClusterer(random_state=seed, **params).fit(X_train)
            Z_train = est.embedding_  # fit encoded X_train (all of it in one process)
            if cluster_on == "train" and len(Z_train) != len(train):  # only a shard
                Z_train = est.transform(X_train)
            Z_test = est.transform(X_test)
        if not (spec.kind == "kmeans" and hasattr(X_train, "chunks")):
            fit_on = Z_test if cluster_on == "test" else Z_train
            predicted = _fit_centres(fit_on, Z_test, n_clusters, seed)
            codes = Z_test
    scores = score(
        data.y[test], predicted, n_classes, pos_label, supervised=spec.kind == "densenet"
    )
    return FoldResult(
        spec.name, fold, scores, time.perf_counter() - t0, len(train), len(test), codes, predicted
    )


def cross_validate(
    specs: Sequence[MethodSpec],
    data: ImageSet,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    on_result: Callable[[FoldResult], None] | None = None,
    keep_codes_of_fold: int | None = 0,
    **kwargs,
) -> list[FoldResult]:
    """:func:`run_fold` for every method and fold; ``on_result`` sees each result (progress).

    Held-out codes are kept only for fold ``keep_codes_of_fold`` (the t-SNE map). Every
    part that is clustered is checked against ``n_clusters`` before anything trains."""
    if kwargs.get("n_clusters") is not None:
        check_fold_sizes(folds, kwargs["n_clusters"])
    results = []
    for spec in specs:
        for i, (train, test) in enumerate(folds):
            result = run_fold(spec, data, train, test, fold=i, **kwargs)
            if i != keep_codes_of_fold:
                result.codes = None
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def check_fold_sizes(folds: Sequence[tuple[np.ndarray, np.ndarray]], n_clusters: int) -> None:
    """Raise ConfigError if a fold's training or held-out part (both are clustered) has
    fewer images than ``n_clusters``."""
    for i, (train, test) in enumerate(folds, 1):
        for part, index in (("training", train), ("held-out", test)):
            if n_clusters > len(index):
                raise ConfigError(
                    f"n_clusters={n_clusters} is larger than the number of samples in the "
                    f"{part} part of fold {i} ({len(index)}); ask for fewer clusters (--k), "
                    "use fewer folds (--cv) or give more data."
                )


def summarise(results: Sequence[FoldResult]) -> list[dict]:
    """One row per method: mean and std of every score and of the seconds per fold,
    ranked by mean F1, then mean ACC (rank 1 is the best)."""
    rows = []
    for method in dict.fromkeys(r.method for r in results):
        mine = [r for r in results if r.method == method]
        row = {"method": method, "folds": len(mine)}
        for key in SCORES:
            values = np.array([r.scores[key] for r in mine], dtype=float)
            row[key], row[f"{key}_std"] = float(values.mean()), float(values.std())
        seconds = np.array([r.seconds for r in mine])
        row["seconds"], row["seconds_std"] = float(seconds.mean()), float(seconds.std())
        rows.append(row)
    rows.sort(key=lambda r: (-r["f1"], -r["acc"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows
