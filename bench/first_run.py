"""Time the first `aeclust run` on a new machine against the run after it.

Each pair runs ``aeclust -q run`` twice as new processes: first with empty numba and
matplotlib caches (a new machine), then with the caches the first one filled. Prints one
JSON line per run: which, wall seconds of the whole process, the run's own timings
(compile, train, encode, cluster, score, figures), ACC, and the sha256 of its
assignments.csv (the same seed must give the same clusters, cached or not). Run from the
repository root; one pair takes about 4 minutes on 2 cores:

    python bench/first_run.py --pairs 2 >> bench/results/first_run.jsonl

Extra arguments after ``--`` go to ``aeclust run`` (e.g. ``-- --epochs 10``). Never run by
the test suite.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path


def one_run(which: str, caches: Path, out: Path, extra: list[str]) -> dict:
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(caches / "numba"),
        "MPLCONFIGDIR": str(caches / "matplotlib"),
    }
    start = time.perf_counter()
    command = ["aeclust", "-q", "run", "--out", str(out), *extra]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    digest = hashlib.sha256((out / "assignments.csv").read_bytes()).hexdigest()
    return {
        "run": which,
        "wall_s": round(wall, 1),
        "timings": {k: round(v, 1) for k, v in metrics["timings"].items()},
        "acc": metrics.get("acc"),
        "assignments_sha256": digest[:16],
        "args": extra,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="arguments for aeclust run, after --")
    args = parser.parse_args(argv)
    for _ in range(args.pairs):
        with tempfile.TemporaryDirectory(prefix="aeclust-first-run-") as tmp:
            tmp = Path(tmp)
            for which in ("first", "second"):
                row = one_run(which, tmp / "caches", tmp / which, args.extra)
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
