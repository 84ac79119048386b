"""The training engine's results, pinned: tiny fits of every estimator family whose weights
and labels were fingerprinted with the engine before steps existed (commit 1931147). A
change to the loop that alters a single bit of any weight fails here.

Floating-point results depend on the CPU (its model, not only its vector unit), torch's
version and its thread count, so fingerprints are stored per machine key; on a key not
stored the test skips and says how to record one
(``python tests/test_engine_fingerprint.py`` prints the JSON)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from aeclust import DCEC, IDEC, AEClusterer, DCAEKMeans, DenseNetClassifier

STORE = Path(__file__).parent / "data" / "engine_fingerprints.json"


def machine_key() -> str:
    cap = torch.backends.cpu.get_cpu_capability()
    return f"torch {torch.__version__} | {cap} | {torch.get_num_threads()} threads | {cpu_model()}"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo; platform.processor() elsewhere): the same
    vector unit gives other bits on another CPU (an AMD EPYC and an Intel Xeon, both AVX512)."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def digits(n=160):
    d = load_digits()
    return (d.images[:n] / 16.0).astype(np.float32)[:, None], d.target[:n]


def fits():
    """name -> a function returning (torch modules, labels) of a tiny fit."""
    X, y = digits()
    affine = {"shift": 0.1, "rotation": 10.0}
    return {
        "ae-conv-augment-cosine-val": lambda: _ae(
            AEClusterer(epochs=3, batch_size=32, augment=affine, lr_schedule="cosine",
                        val_fraction=0.2, patience=5, n_clusters=4, random_state=1), X),
        "ae-mlp-step-bce": lambda: _ae(
            AEClusterer(autoencoder="mlp", epochs=3, batch_size=50, loss="bce",
                        lr_schedule="step", n_clusters=3, random_state=2), X),
        "dcae-warmup-kmeans": lambda: _ae(
            DCAEKMeans(n_clusters=4, init="kmeans", warmup_epochs=1, epochs=2, batch_size=32,
                       random_state=3), X),
        "dcae-random": lambda: _ae(
            DCAEKMeans(n_clusters=4, epochs=2, batch_size=40, random_state=4), X),
        "idec-mlp": lambda: _ae(
            IDEC(n_clusters=4, pretrain_epochs=1, epochs=2, batch_size=32, n_init=2,
                 update_interval=2, random_state=5), X),
        "dcec-conv": lambda: _ae(
            DCEC(n_clusters=4, pretrain_epochs=1, epochs=2, batch_size=32, n_init=2,
                 random_state=6), X),
        "densenet": lambda: _net(
            DenseNetClassifier(epochs=2, batch_size=32, n_blocks=2, layers_per_block=1,
                               growth_rate=4, random_state=7).fit(X, y), X),
    }  # fmt: skip


def _ae(est, X):
    est.fit(X)
    return est.autoencoder_.state_dict(), est.labels_, est.cluster_centers_


def _net(est, X):
    return est.network_.state_dict(), est.predict(X), np.zeros(1)


def fingerprint(state, labels, centers) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    h.update(np.asarray(labels, dtype=np.int64).tobytes())
    h.update(np.asarray(centers, dtype=np.float32).tobytes())
    return h.hexdigest()[:24]


def stored() -> dict:
    return json.loads(STORE.read_text()) if STORE.is_file() else {}


@pytest.mark.parametrize("name", sorted(fits()))
def test_same_bits_as_the_engine_before_steps(name):
    key = machine_key()
    prints = stored().get(key)
    if prints is None:
        pytest.skip(
            f"no fingerprints stored for this machine ({key}); they exist for "
            f"{sorted(stored())}. Record them at commit 1931147 with "
            "`python tests/test_engine_fingerprint.py`."
        )
    assert fingerprint(*fits()[name]()) == prints[name]


if __name__ == "__main__":  # record this machine's fingerprints (on the pre-step engine)
    store = stored()
    store[machine_key()] = {name: fingerprint(*fit()) for name, fit in sorted(fits().items())}
    json.dump(store, sys.stdout, indent=1)
    sys.stdout.write("\n")
