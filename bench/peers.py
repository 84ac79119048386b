"""aeclust's default against clustpy's methods, side by side in one run (issue 19).

    python bench/peers.py mnist5k --seeds 0 >> bench/results/peers_mnist5k.jsonl
    python bench/peers.py fashion-mnist --seeds 0 --methods aeclust   # re-run our side only

clustpy (0.0.3) is a benchmark peer, never a dependency: it runs in its own virtual
environment (``--venv``, default ``~/.cache/aeclust-peers``), which this script creates on
first use with ``pip install torch==2.13.0``, ``pip install --no-deps clustpy
torchvision==0.28.0`` and clustpy's light dependencies (torchvision's own dependencies would
pull a CUDA build of torch). Every method runs as a new process on the same images
(exported once from ``aeclust.load_dataset``); this script measures its wall seconds
(imports included) and peak resident memory (``os.wait4``), and scores every method's
clusters with the same ``aeclust.metrics``. Methods (``--methods``, comma-separated):
``kmeans``, ``umap-gmm`` (on the pixels; UMAP with N2D's settings), ``ae-kmeans``, ``dec``,
``idec``, ``dcn``, ``n2d`` (clustpy, default feed-forward autoencoder, ``--pretrain-epochs``
and ``--clustering-epochs``), and ``aeclust`` (``aeclust -q run --dataset D --seed S`` with
no other flag). Prints one JSON line per (method, seed); ``ratio`` is the method's seconds
over aeclust's in the same run. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aeclust.data import load_dataset
from aeclust.metrics import ari, cluster_acc, nmi

HERE = Path(__file__).resolve().parent
DEEP = ("ae-kmeans", "dec", "idec", "dcn", "n2d")  # clustpy's, with its autoencoder
PEERS = ("kmeans", "umap-gmm", *DEEP)
LIGHT = ("scikit-learn", "scipy", "pandas", "tqdm", "matplotlib", "umap-learn")


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        return python
    print(f"creating clustpy's environment in {venv} (about a minute)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q"]
    for args in (["torch==2.13.0"], ["--no-deps", "clustpy", "torchvision==0.28.0"], LIGHT):
        subprocess.run([*pip, *args], check=True)
    return python


def timed(command: list[str], log: Path) -> tuple[float, float]:
    """Run ``command`` (its output into ``log``); its (wall seconds, peak resident GB)."""
    start = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = log.read_text()[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({status}); its output ended:\n{tail}")
    return wall, usage.ru_maxrss / 2**20  # kB on Linux


def main(a) -> None:
    data = load_dataset(a.dataset)
    y = np.asarray(data.y)
    k = len(np.unique(y))
    methods = a.methods.split(",")
    unknown = set(methods) - {*PEERS, "aeclust"}
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; use {', '.join(PEERS)}, aeclust")
    python = ensure_venv(Path(a.venv).expanduser()) if set(methods) & set(PEERS) else None
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "data.npz"
        np.savez(npz, X=data.X.reshape(len(y), -1), k=k)
        for seed in a.seeds:
            rows = []
            for m in methods:
                out = Path(tmp) / f"{m}_{seed}"
                if m == "aeclust":
                    cmd = ["aeclust", "-q", "run", "--dataset", a.dataset, "--seed", str(seed),
                           "--out", str(out)]  # fmt: skip
                    wall, peak = timed(cmd, Path(f"{out}.log"))
                    with open(out / "assignments.csv", newline="") as f:
                        assigned = np.array([int(r["cluster"]) for r in csv.DictReader(f)])
                else:
                    epochs = [str(a.pretrain_epochs), str(a.clustering_epochs)]
                    cmd = [str(python), str(HERE / "peers_worker.py"), str(npz), m, str(seed),
                           *epochs, f"{out}.npy"]  # fmt: skip
                    wall, peak = timed(cmd, Path(f"{out}.log"))
                    assigned = np.load(f"{out}.npy")
                rows.append(dict(
                    dataset=a.dataset, method=m, seed=seed, date=time.strftime("%Y-%m-%d"),
                    acc=round(cluster_acc(y, assigned), 4), nmi=round(nmi(y, assigned), 4),
                    ari=round(ari(y, assigned), 4), seconds=round(wall, 1),
                    peak_gb=round(peak, 2),
                    pretrain_epochs=a.pretrain_epochs if m in DEEP else None,
                ))  # fmt: skip
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
            ours = next((r["seconds"] for r in rows if r["method"] == "aeclust"), None)
            for r in rows:
                r["ratio"] = round(r["seconds"] / ours, 2) if ours else None
                print(json.dumps(r), flush=True)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--methods", default=",".join((*PEERS, "aeclust")))
    p.add_argument("--pretrain-epochs", type=int, default=100)
    p.add_argument("--clustering-epochs", type=int, default=150)
    p.add_argument("--venv", default="~/.cache/aeclust-peers")
    main(p.parse_args())
