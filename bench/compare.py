"""Benchmark Liu & Zhang's Table 1 protocol (`aeclust compare`) on built-in datasets.

Each experiment runs the five autoencoders + mini-batch k-means, sole k-means on the pixels
and the supervised DenseNet under k-fold cross-validation, writes its output directory
(table, t-SNE figure, report) under --out-root, and prints one JSON line per method:
experiment, dataset, classes, samples, method, mean and std over folds of F1 / ACC / NMI,
seconds per fold, and the experiment's wall time. Run from the repository root:

    python bench/compare.py --experiments fashion-mnist fashion-shirt mnist5k

Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import time

from aeclust.compare import compare
from aeclust.config import CompareConfig

EXPERIMENTS = {
    "fashion-mnist": {"dataset": "fashion-mnist"},
    # the hardest pair of Fashion-MNIST: two classes, like the paper's IDC data
    "fashion-shirt": {"dataset": "fashion-mnist", "classes": ["T-shirt/top", "Shirt"]},
    "mnist5k": {"dataset": "mnist5k"},
    "digits": {"dataset": "digits"},
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=["fashion-mnist", "fashion-shirt",
                        "mnist5k"], choices=list(EXPERIMENTS))  # fmt: skip
    parser.add_argument("--models", default="fc,conv-pool,conv-nopool,alexnet,resnet")
    parser.add_argument("--baselines", default="kmeans,densenet")
    parser.add_argument("--max-samples", type=int, default=5000)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=70)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the paper's")
    parser.add_argument("--densenet-epochs", type=int, default=30)
    parser.add_argument("--width", type=float, default=1.0, help="conv channel multiplier")
    parser.add_argument("--fc-width", type=int, default=4096, help="AlexNet's dense layers")
    parser.add_argument("--densenet-params", type=json.loads, default={}, help="JSON mapping")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-root", default="bench/out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    models = args.models.split(",") if args.models else []
    ae_params = {m: {"width": args.width} for m in models if m in ("conv-pool", "conv-nopool",
                                                                  "resnet", "alexnet")}  # fmt: skip
    if "alexnet" in ae_params:
        ae_params["alexnet"]["fc_width"] = args.fc_width
    for name in args.experiments:
        config = CompareConfig(
            **EXPERIMENTS[name], max_samples=args.max_samples, models=models,
            baselines=args.baselines.split(",") if args.baselines else [], cv=args.cv,
            epochs=args.epochs, batch_size=args.batch_size, autoencoder_params=ae_params,
            densenet_epochs=args.densenet_epochs, densenet_params=args.densenet_params,
            seed=args.seed, out=f"{args.out_root}/{name}-seed{args.seed}", overwrite=True,
        )  # fmt: skip
        t0 = time.perf_counter()
        out, rows = compare(config, progress=True)
        wall = time.perf_counter() - t0
        summary = json.loads((out / "summary.json").read_text())
        for row in rows:
            record = {
                "experiment": name, "dataset": config.dataset, "classes": config.classes,
                "n_samples": summary["n_samples"], "cv": args.cv, "epochs": args.epochs,
                "densenet_epochs": args.densenet_epochs, "width": args.width,
                "fc_width": args.fc_width, "seed": args.seed,
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()},
                "wall_seconds": round(wall, 1),
            }  # fmt: skip
            print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
