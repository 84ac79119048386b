"""What compiling UMAP's numba code beside training costs the training (issue 14).

Trains the default `conv` autoencoder on mnist5k (no UMAP in the estimator) while a second
process compiles UMAP's code from an empty numba cache, and prints one JSON line: torch
threads, how the compile ran ("none", "beside" at normal priority, "nice" at nice 19),
seconds of training and per epoch, when the compile finished, and a digest of the trained
weights (which shows whether the thread count changes the result). Run from the
repository root, with nothing else running:

    python bench/compile_beside_training.py --threads 2 --compile none
    python bench/compile_beside_training.py --threads 2 --compile beside
    python bench/compile_beside_training.py --threads 2 --compile nice
    python bench/compile_beside_training.py --threads 1 --compile none --epochs 3

Never run by the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from aeclust import AEClusterer, load_dataset

COMPILE = """
import warnings, numpy as np
from aeclust.cluster.numba_cache import import_umap
umap = import_umap()
Z = np.random.default_rng(1).normal(size=(5000, 10)).astype(np.float32)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    umap.UMAP(n_components=10, n_neighbors=20, min_dist=0.0, random_state=0).fit(Z)
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", choices=["none", "beside", "nice"], default="none")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X = load_dataset("mnist5k").X
    start, proc = time.perf_counter(), None
    with tempfile.TemporaryDirectory() as cache:
        if args.compile != "none":
            nice = ["nice", "-n", "19"] if args.compile == "nice" else []
            env = {**os.environ, "NUMBA_CACHE_DIR": cache, "OMP_NUM_THREADS": "1"}
            proc = subprocess.Popen([*nice, sys.executable, "-c", COMPILE], env=env)
        model = AEClusterer(clusterer="kmeans", epochs=args.epochs, random_state=0).fit(X)
        compiled_at = None
        if proc is not None:
            proc.wait()
            compiled_at = round(time.perf_counter() - start, 1)
    weights = b"".join(p.detach().numpy().tobytes() for p in model.autoencoder_.parameters())
    row = {
        "threads": args.threads,
        "compile": args.compile,
        "epochs": args.epochs,
        "train_s": round(model.timings_["train"], 1),
        "epoch_s": [round(h["seconds"], 1) for h in model.history_],
        "compile_done_s": compiled_at,
        "weights_sha256": hashlib.sha256(weights).hexdigest()[:16],
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
