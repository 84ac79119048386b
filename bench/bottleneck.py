"""The six findings of "Walking the tightrope", measured with ``aeclust bottleneck`` on the
data this machine has: one laboratory run (12 CAEs: sizes 1-3 x compressions 1/64-1),
then one JSON line appended to --out with the settings, the configuration table, the
findings and the timings. The run directory (figures, report) is kept under --run-dir.

    python bench/bottleneck.py --dataset mnist5k --epochs 10 \
        --out bench/results/bottleneck.jsonl
    python bench/bottleneck.py --dataset fashion-mnist --split train --test-split test \
        --max-train 10000 --max-test 2000 --epochs 5 --out bench/results/bottleneck.jsonl
    python bench/bottleneck.py --dataset mnist5k --max-train 600 --epochs 40 \
        --out bench/results/bottleneck.jsonl       # the ~600-image set (Pokemon's size)

A run killed on the way (a session's end) continues with the same command and ``--resume``;
its seconds then count only the part after the resume.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import time
from pathlib import Path

from aeclust.bottleneck import bottleneck
from aeclust.config import BottleneckConfig


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist5k")
    p.add_argument("--data", help="an image folder or array file instead of --dataset")
    p.add_argument("--split")
    p.add_argument("--test-split")
    p.add_argument("--max-train", type=int)
    p.add_argument("--max-test", type=int)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--run-dir", default="/tmp/bottleneck-runs")
    p.add_argument("--out", required=True)
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the killed run of these settings under --run-dir",
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    source = Path(args.data).stem if args.data else args.dataset
    name = f"{source}-{args.max_train or 'all'}-e{args.epochs}-b{args.blocks}-s{args.seed}"
    config = BottleneckConfig(
        dataset=None if args.data else args.dataset, data=args.data, split=args.split,
        test_split=args.test_split,
        max_train=args.max_train, max_test=args.max_test, epochs=args.epochs,
        blocks=args.blocks, batch_size=args.batch_size, seed=args.seed,
        out=str(Path(args.run_dir) / name), overwrite=not args.resume,
    )  # fmt: skip
    t0 = time.perf_counter()
    out, summary = bottleneck(config, progress=True, resume=args.resume)  # a line per epoch
    line = {
        "bench": "bottleneck", "commit": commit(), "run": str(out), "dataset": source,
        "split": args.split, "test_split": args.test_split, "n_train": summary["n_train"],
        "n_test": summary["n_test"], "epochs": args.epochs, "blocks": args.blocks,
        "batch_size": args.batch_size, "seed": args.seed,
        "configurations": summary["configurations"], "findings": summary["findings"],
        "timings": summary["timings"], "seconds": time.perf_counter() - t0,
    }  # fmt: skip
    with open(args.out, "a") as f:
        f.write(json.dumps(line) + "\n")
    for finding in summary["findings"]:
        print(finding["number"], finding["holds"], finding["finding"])


if __name__ == "__main__":
    main()
