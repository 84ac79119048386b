"""Linear probes ("Walking the tightrope", section 3.2): how much of what labels say a
representation makes linearly separable, measured by a cross-validated logistic regression.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def probe_model(weight_decay: float, n_train: int, max_iter: int = 300):
    """Standardisation + L2 logistic regression whose penalty is the paper's weight decay:
    minimising mean log-loss + (weight_decay / 2) |w|^2 is sklearn's objective with
    C = 1 / (weight_decay * n_train)."""
    C = 1.0 / (weight_decay * n_train)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))


def linear_probe(
    codes, y, folds: int = 5, weight_decay: float = 0.01, random_state: int = 0,
    max_iter: int = 300,
) -> dict:  # fmt: skip
    """Macro-F1 of a logistic regression predicting ``y`` from ``codes`` (N, ...; flattened),
    over ``folds`` stratified, shuffled folds (seeded): each fold's model is trained on the
    others and scored on it.

    The paper trains its linear models for 200 epochs with weight decay 0.01; here the same
    penalty is solved to convergence (:func:`probe_model`), on standardised features so
    that one penalty suits codes of any scale. Returns ``{"f1": mean, "f1_std": std,
    "folds": [...], "weight_decay": ..., "converged": bool}``.
    """
    X = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    y = np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"codes and labels differ in length: {len(X)} and {len(y)}")
    if not weight_decay > 0:
        raise ValueError(f"weight_decay must be positive; got {weight_decay!r}")
    counts = np.unique(y, return_counts=True)[1]
    if len(counts) < 2 or counts.min() < folds:
        raise ValueError(
            f"a {folds}-fold probe needs at least 2 classes with {folds} images each; the "
            f"smallest class here has {counts.min()} image(s)"
        )
    splitter = StratifiedKFold(folds, shuffle=True, random_state=random_state)
    scores, converged = [], True
    for train, test in splitter.split(X, y):
        model = probe_model(weight_decay, len(train), max_iter)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model.fit(X[train], y[train])
        converged &= not any(issubclass(w.category, ConvergenceWarning) for w in caught)
        scores.append(float(f1_score(y[test], model.predict(X[test]), average="macro")))
    return {"f1": float(np.mean(scores)), "f1_std": float(np.std(scores)), "folds": scores,
            "weight_decay": weight_decay, "converged": bool(converged)}  # fmt: skip
