"""``aeclust bottleneck``: the bottleneck laboratory of "Walking the tightrope" on any
images. Trains one CAE per (size, compression) from the same seed, measures train and test
error every epoch, probes and clusters the codes, compares them by SVCCA, checks the
paper's six findings, and writes a run directory (atomically; a killed run continues with
``aeclust bottleneck --resume OUT``)::

    configurations.csv  one row per configuration (and "pixels"): size, channels, neurons
                        as % of the input, final / best train and test MSE, best epoch,
                        probe F1 on training and test codes, k-means and UMAP + GMM ACC/NMI
    table.md            the same, as Markdown
    history.csv         per configuration and epoch: loss, train_mse, test_mse
    findings.json       the six findings, each with holds (yes / no) and its numbers
    svcca.json          the SVCCA matrices of the training and the test codes
    losses.png          Fig. 1; reconstructions-train.png, reconstructions-test.png: Fig. 2
    probes.png          Fig. 3 (with labels); svcca-train.png, svcca-test.png: Fig. 4
    models/<name>/      every CAE as a model file (``aeclust.load``)
    summary.json, config.yaml, report.html
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from .config import BottleneckConfig, write_yaml
from .data import ImageSet, load_dataset
from .errors import ConfigError, DataError, check_number
from .laboratory import analyse_grid, findings, parse_grid, train_grid
from .report import html_page, img_tag, table
from .run import check_no_killed_run
from .rundir import check_out_dir, load_data, staged_dir, staging_path, versions

log = logging.getLogger(__name__)
COLUMNS = [
    "name", "side", "channels", "neurons", "share", "train_mse", "test_mse", "best_test_mse",
    "best_epoch", "test_rise", "probe_train_f1", "probe_test_f1", "kmeans_acc", "kmeans_nmi",
    "umap_gmm_acc", "umap_gmm_nmi",
]  # fmt: skip
N_SHOWN = 3  # images per reconstruction grid


def default_out(config: BottleneckConfig) -> Path:
    source = Path(config.data).stem if config.data else config.dataset
    return Path("runs") / f"bottleneck-{source}-{dt.datetime.now():%Y%m%d-%H%M%S}"


def split_data(config: BottleneckConfig) -> tuple[ImageSet, ImageSet]:
    """(train, test): the test images from ``test_data`` or ``test_split`` when given, else
    a seeded random ``test_fraction`` of the data; then seeded random samples of
    ``max_train`` / ``max_test`` images (in their original order).

    Random, not the paper's "first 80%": the paper's images were in no particular order,
    while files and built-in sets often are (mnist5k is sorted by digit, so its last 20%
    would be only 8s and 9s)."""
    rng = np.random.default_rng(config.seed)
    data = load_data(config)
    if config.test_data or config.test_split:
        source = config.test_data or config.data or config.dataset
        size = config.image_size or (None if config.test_data is None else data.image_shape[1:])
        train, test = data, load_dataset(source, split=config.test_split, image_size=size,
                                         color=config.color, skip_bad=config.skip_bad)  # fmt: skip
    else:
        n_test = int(round(config.test_fraction * len(data)))
        if not 0 < n_test < len(data):
            raise DataError(
                f"test_fraction={config.test_fraction} of {len(data)} images leaves no "
                "training or no test images; change it or give --test-data."
            )
        order = rng.permutation(len(data))
        train, test = data.subset(np.sort(order[n_test:])), data.subset(np.sort(order[:n_test]))
    if test.image_shape != train.image_shape:
        raise DataError(
            f"The test images are {test.image_shape}, the training images {train.image_shape}; "
            "give both the same --image-size and --color."
        )
    if config.max_train and config.max_train < len(train):
        train = train.subset(np.sort(rng.permutation(len(train))[: config.max_train]))
    if config.max_test and config.max_test < len(test):
        test = test.subset(np.sort(rng.permutation(len(test))[: config.max_test]))
    return train, test


def check_config(config: BottleneckConfig) -> list[tuple[int, float]]:
    """The grid, after refusing settings that cannot work (before anything is loaded)."""
    grid = parse_grid(config.sizes, config.compressions, config.levels)
    check_number("epochs", config.epochs, low=1, integer=True)
    check_number("eval_train", config.eval_train, low=1, integer=True)
    check_number("probe_folds", config.probe_folds, low=2, integer=True)
    check_number("svcca_images", config.svcca_images, low=2, integer=True)
    check_number("svcca_keep", config.svcca_keep, low=0, high=1)
    check_number("probe_weight_decay", config.probe_weight_decay, low=0)
    check_number("test_fraction", config.test_fraction, low=0, high=1)
    for name in ("svcca_keep", "probe_weight_decay"):
        if getattr(config, name) == 0:
            raise ConfigError(f"{name} must be above 0; got 0.")
    return grid


def check_data(config: BottleneckConfig, train: ImageSet, test: ImageSet, k: int) -> None:
    """What the analysis needs of the data, checked before training."""
    if len(train) < 2 or len(test) < 2:
        raise DataError(f"Need at least 2 training and 2 test images; got {len(train)} and "
                        f"{len(test)}.")  # fmt: skip
    if k > len(train):
        raise ConfigError(f"k={k} clusters is more than the {len(train)} training images.")
    if train.y is None or test.y is None:
        return
    for part, y in (("training", train.y), ("test", test.y)):
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise DataError(
                f"The {part} images are all of one class ({classes[0]}), so the linear probes "
                "cannot be trained; give --test-data, or order the images so that both parts "
                "hold several classes."
            )
        smallest = counts.min()
        if smallest < config.probe_folds:
            raise DataError(
                f"The {part} images have a class with {smallest} image(s), fewer than the "
                f"{config.probe_folds} probe folds; lower --probe-folds or give more images."
            )


def bottleneck(config: BottleneckConfig, progress: bool = True, resume: bool = False):
    """Run the laboratory of ``config``; returns the run directory and the summary."""
    out = Path(config.out) if config.out else default_out(config)
    grid = check_config(config)
    check_out_dir(out, config.overwrite, [config.data, config.test_data])
    if not resume:
        check_no_killed_run(out, config.overwrite, "bottleneck")
    train, test = split_data(config)
    k = config.k or (len(np.unique(train.y)) if train.y is not None else 10)
    check_data(config, train, test, k)
    config.out, config.k = str(out), k
    try:
        with staged_dir(out, resumable=True, command="bottleneck") as stage:
            return out, _run_in(stage, config, grid, train, test, progress, resume)
    except KeyboardInterrupt as exc:
        exc.resume_command = f"aeclust bottleneck --resume {out}"
        raise


def _run_in(stage: Path, config, grid, train: ImageSet, test: ImageSet, progress, resume):
    if not resume:
        write_yaml(config, stage / "config.yaml")
    log.info("%s: %d training and %d test images %s; %d configurations, %d epochs each",
             train.name, len(train), len(test), train.image_shape, len(grid),
             config.epochs)  # fmt: skip
    t0 = time.perf_counter()
    results = train_grid(
        train.X, test.X, grid, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
        levels=config.levels, blocks=config.blocks, n_clusters=config.k,
        eval_train=config.eval_train, seed=config.seed, device=config.device, verbose=progress,
        folder=stage, resume=resume,
    )  # fmt: skip
    t1 = time.perf_counter()
    rows, svcca = analyse_grid(
        results, train.X, test.X, train.y, test.y, k=config.k, probe_folds=config.probe_folds,
        weight_decay=config.probe_weight_decay, cluster=config.cluster,
        svcca_keep=config.svcca_keep, svcca_images=config.svcca_images, seed=config.seed,
    )  # fmt: skip
    checks = findings(rows, svcca)
    summary = {
        "dataset": train.name, "n_train": len(train), "n_test": len(test),
        "image_shape": list(train.image_shape), "epochs": config.epochs,
        "configurations": rows, "findings": checks,
        "timings": {"train": t1 - t0, "analyse": time.perf_counter() - t1},
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "versions": versions(),
    }  # fmt: skip
    histories = {r["name"]: r["estimator"].history_ for r in results}
    write_outputs(stage, rows, histories, svcca, checks, summary, results, train, test)
    shutil.rmtree(stage / "checkpoints", ignore_errors=True)  # the models are saved
    return summary


def write_outputs(stage: Path, rows, histories, svcca, checks, summary, results, train, test):
    from . import plot
    from .plot_laboratory import (
        plot_loss_curves,
        plot_probe_heatmaps,
        plot_reconstruction_grid,
        plot_svcca,
    )

    with open(stage / "configurations.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (stage / "table.md").write_text(markdown_table(rows) + "\n")
    with open(stage / "history.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["configuration", "epoch", "loss", "train_mse", "test_mse", "seconds"])
        for name, history in histories.items():
            for h in history:
                writer.writerow([name, h["epoch"], h["loss"], h["train_mse"], h["test_mse"],
                                 f"{h['seconds']:.2f}"])  # fmt: skip
    (stage / "findings.json").write_text(json.dumps(checks, indent=1))
    (stage / "svcca.json").write_text(json.dumps(svcca, indent=1))
    (stage / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    configs = [r for r in rows if r["name"] != "pixels"]
    plot.save_figure(plot_loss_curves(configs, histories), stage / "losses.png")
    for part, images in (("train", train.X), ("test", test.X)):
        X = images[:N_SHOWN]
        recons = {r["name"]: r["estimator"].reconstruct(X) for r in results}
        title = f"{part} images: input, then one row per size, one column per compression"
        fig = plot_reconstruction_grid(X, recons, configs, title)
        plot.save_figure(fig, stage / f"reconstructions-{part}.png")
        plot.save_figure(plot_svcca(svcca[part], svcca["names"], f"SVCCA of the {part} codes"),
                         stage / f"svcca-{part}.png")  # fmt: skip
    if "probe_test_f1" in rows[0]:
        plot.save_figure(plot_probe_heatmaps(rows), stage / "probes.png")
    write_report(stage, summary)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _rounded(obj):
    """``obj`` with every float rounded to 4 significant digits, for reading."""
    if isinstance(obj, float):
        return float(f"{obj:.4g}")
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return obj


def markdown_table(rows) -> str:
    keys = [k for k in COLUMNS if any(k in r for r in rows)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(r.get(k)) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


FIGURES = [
    ("losses.png", "Fig. 1: training and test MSE per epoch (eval mode), one line per "
     "configuration; colour = size, darker = more channels"),
    ("reconstructions-train.png", "Fig. 2: reconstructions of training images"),
    ("reconstructions-test.png", "Fig. 2: reconstructions of test images"),
    ("probes.png", "Fig. 3: linear probes on the codes against the raw pixels"),
    ("svcca-test.png", "Fig. 4: SVCCA similarity of the test codes (labels size-channels)"),
    ("svcca-train.png", "Fig. 4: SVCCA similarity of the training codes"),
]  # fmt: skip


def write_report(stage: Path, summary: dict) -> None:
    rows = summary["configurations"]
    keys = [k for k in COLUMNS if any(k in r for r in rows)]
    body = [f"<h1>Bottleneck laboratory: {summary['dataset']}</h1>",
            f"<p>{summary['n_train']} training and {summary['n_test']} test images of shape "
            f"{tuple(summary['image_shape'])}, {summary['epochs']} epochs per configuration; "
            f"training {summary['timings']['train']:.0f} s, analysis "
            f"{summary['timings']['analyse']:.0f} s.</p>",
            "<h2>The paper's findings</h2>"]  # fmt: skip
    verdict = {True: "yes", False: "no", None: "cannot tell"}
    body.append(table(
        [(f["number"], f["finding"], verdict[f["holds"]],
          json.dumps(_rounded(f["numbers"]))) for f in summary["findings"]],
        ["#", "finding", "holds here", "numbers"],
    ))  # fmt: skip
    body.append("<h2>Configurations</h2>")
    body.append(table([[_cell(r.get(k)) for k in keys] for r in rows], keys, "l" + "r" * 20))
    for name, caption in FIGURES:
        if (stage / name).is_file():
            body.append(img_tag(stage / name, caption))
    (stage / "report.html").write_text(html_page("aeclust bottleneck", "\n".join(body)))


__all__ = ["bottleneck", "split_data", "staging_path"]
