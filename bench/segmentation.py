"""Table 2 of the one-stage autoencoders paper, measured on the offline ``textured-shapes``
set: colour k-means against LOC, pixel ACC / IoU / Dice of the median-rule masks, and the
number of segments LOC chose per image.

LOC trains on the 1,000 training images and segments the 200 test images (the paper
trained on Flowers and scored a held-out test set); k-means runs on each test image alone.
Both are scored with the border polarity (the default) and with the paper's median rule as
written (``polarity none``). One JSON line per fit, appended to --out as soon as it ends.

    python bench/segmentation.py --seeds 0,1,2 --out bench/results/segmentation.jsonl
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time

import numpy as np

from aeclust import LOCSegmenter, load_dataset
from aeclust.segmentation import (
    kmeans_segments,
    median_masks,
    n_segments,
    segmentation_scores,
)

PAPER = {"kmeans": (61.48, 52.23, 55.02), "loc": (81.22, 61.93, 71.80)}  # Flowers, %


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def scores(truth, segments) -> dict:
    return {
        polarity: segmentation_scores(truth, median_masks(segments, polarity))
        for polarity in ("border", "none")
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", default="0")
    p.add_argument("--methods", default="kmeans,loc")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--rho", type=float, default=0.5)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--target-window", type=int, default=7)
    p.add_argument("--kmeans-clusters", type=int, default=2)
    p.add_argument("--color", default="auto", choices=["auto", "gray"])
    p.add_argument("--out", required=True)
    args = p.parse_args()
    train = load_dataset("textured-shapes", split="train", color=args.color)
    test = load_dataset("textured-shapes", split="test", color=args.color)
    for seed in (int(s) for s in args.seeds.split(",")):
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            row = {"bench": "segmentation", "method": method, "seed": seed,
                   "color": args.color, "commit": commit()}  # fmt: skip
            if method == "kmeans":
                segments = kmeans_segments(test.X, args.kmeans_clusters, random_state=seed)
                row["clusters"] = args.kmeans_clusters
            else:
                est = LOCSegmenter(
                    rho=args.rho, epochs=args.epochs, width=args.width,
                    target_window=args.target_window, random_state=seed,
                ).fit(train.X)  # fmt: skip
                segments = est.segment(test.X)
                last = est.history_[-1]
                row.update(rho=args.rho, epochs=args.epochs, width=args.width,
                           target_window=args.target_window, train_error=last["error"],
                           train_segments=last["segments"])  # fmt: skip
            counts = n_segments(segments)
            values, freq = np.unique(counts, return_counts=True)
            row.update(
                scores=scores(test.masks, segments),
                segments_mean=float(counts.mean()),
                segments_histogram={str(int(v)): int(f) for v, f in zip(values, freq, strict=True)},
                paper=PAPER[method],
                seconds=round(time.perf_counter() - t0, 1),
            )
            print(json.dumps(row), flush=True)
            with open(args.out, "a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
