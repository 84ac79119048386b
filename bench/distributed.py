"""Does training in 2 processes cluster as well as in 1? The default `aeclust run` on
mnist5k (same total epochs, same global batch) with ``--nproc 1`` and ``--nproc 2`` for
several seeds; one JSON line per run (nproc, seed, wall seconds of the whole command, the
run's train seconds, ACC, NMI). Run from the repository root:

    python bench/distributed.py --seeds 0 1 2 | tee -a bench/results/distributed_mnist5k.jsonl

Extra arguments after ``--`` go to ``aeclust run``. Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(nproc: int, seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = ["aeclust", "-q", "run", "--seed", str(seed), "--nproc", str(nproc),
               "--out", str(out), *extra]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        m = json.loads((out / "metrics.json").read_text())
    return {
        "bench": "distributed", "dataset": m["dataset"], "nproc": nproc, "seed": seed,
        "wall_s": round(wall, 1), "train_s": round(m["timings"]["train"], 1),
        "acc": round(m["acc"], 4), "nmi": round(m["nmi"], 4), "args": extra,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    for seed in args.seeds:
        for nproc in args.nprocs:
            print(json.dumps(one_run(nproc, seed, extra)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
