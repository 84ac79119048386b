"""``aeclust compare``: several autoencoders + k-means against sole k-means and a supervised
DenseNet, cross-validated, in one table, one t-SNE figure and one report (Liu & Zhang 2021).

The protocol itself is in :mod:`aeclust.protocol`; this module loads the data, builds the
methods from a :class:`~aeclust.config.CompareConfig`, shows progress and writes the
output directory (atomically, as ``aeclust run`` does)::

    results.csv    one row per method and fold
    table.csv      one row per method: mean and std of F1, ACC, NMI, ARI, seconds; ranked
    table.md       the same as a Markdown table
    scores.png     F1 and ACC per method with their spread over folds
    tsne.png       t-SNE of the held-out codes of fold 1, one map per method (paper Fig. 6)
    summary.json   the table, the data and the timings; config.yaml; report.html
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .config import CompareConfig, write_yaml
from .data import ImageSet
from .errors import ConfigError, check_choice, check_names
from .progress import interactive
from .protocol import BASELINES, SCORES, MethodSpec, cross_validate, make_folds, summarise
from .rundir import check_out_dir, load_data, staged_dir, versions

log = logging.getLogger(__name__)

PAPER_BATCH = {"alexnet": 300, "resnet": 160}  # section 4; 1,000 for the other networks
DEFAULT_BATCH = 1000
MIN_STEPS = 20  # the paper's batches assume 277,524 tiles; keep >= 20 Adam steps per epoch


def default_batch_size(model: str, n_train: int) -> int:
    """The paper's batch size of ``model``, made smaller when the training folds are too
    small for it to give at least MIN_STEPS updates per epoch (never below 32)."""
    paper = PAPER_BATCH.get(model, DEFAULT_BATCH)
    return int(min(paper, max(32, n_train // MIN_STEPS)))


def compare(config: CompareConfig, progress: bool = True) -> tuple[Path, list[dict]]:
    """Run the comparison of ``config``; returns the output directory and the ranked table."""
    out = Path(config.out) if config.out else default_out(config)
    check_out_dir(out, config.overwrite, [config.data])
    specs = method_specs(config, progress)  # names are checked before any loading
    data = prepare_data(config)
    folds = make_folds(data, config.cv, config.seed, config.group_folds)  # checks the labels
    k = config.k or len(np.unique(data.y))
    pos_label = resolve_pos_label(config.pos_label, data)
    for spec in specs:
        if spec.kind == "autoencoder" and spec.params["batch_size"] is None:
            spec.params["batch_size"] = default_batch_size(spec.name, len(folds[0][0]))
    config.k, config.out = k, str(out)
    log.info(
        "%s: %d images %s, %d classes, %d folds%s, %d methods",
        data.name, len(data), data.image_shape, len(np.unique(data.y)), len(folds),
        " grouped" if config.group_folds and data.groups is not None else "", len(specs),
    )  # fmt: skip

    # the line per fold below is the progress in a log file; the bar only in a terminal
    bar = tqdm(
        total=len(specs) * len(folds), desc="compare", unit="fold",
        disable=not (progress and interactive()),
    )  # fmt: skip

    def on_result(result):
        bar.update(1)
        bar.set_postfix(method=result.method, f1=f"{result.scores['f1']:.3f}", refresh=False)
        text = (
            f"{result.method} fold {result.fold + 1}/{len(folds)}: F1 {result.scores['f1']:.4f} "
            f"ACC {result.scores['acc']:.4f} ({result.seconds:.0f} s)"
        )
        bar.write(text, file=sys.stderr) if progress else log.info(text)

    t0 = time.perf_counter()
    with staged_dir(out) as stage:
        write_yaml(config, stage / "config.yaml")
        try:
            results = cross_validate(
                specs, data, folds, on_result=on_result, n_clusters=k, pos_label=pos_label,
                seed=config.seed, cluster_on=config.cluster_on,
            )  # fmt: skip
        finally:
            bar.close()
        rows = summarise(results)
        summary = {
            "dataset": data.name,
            "n_samples": len(data),
            "image_shape": list(data.image_shape),
            "class_names": data.class_names,
            "n_clusters": k,
            "pos_label": pos_label if len(np.unique(data.y)) == 2 else None,
            "folds": len(folds),
            "grouped": bool(config.group_folds and data.groups is not None),
            "table": rows,
            "seconds": time.perf_counter() - t0,
            "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
            "versions": versions(),
        }
        write_outputs(stage, results, rows, summary, data, config)
    return out, rows


def default_out(config: CompareConfig) -> Path:
    source = Path(config.data).stem if config.data else config.dataset
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"compare-{source}-{stamp}"


def method_specs(config: CompareConfig, progress: bool = False) -> list[MethodSpec]:
    """The compared methods in table order: the autoencoders, then the baselines."""
    from .nn import AUTOENCODERS

    models, baselines = _names(config.models, "models"), _names(config.baselines, "baselines")
    if not models and not baselines:
        raise ConfigError("Nothing to compare: give at least one model or baseline.")
    for name in models:
        check_choice("model", name, sorted(AUTOENCODERS))
    for name in baselines:
        check_choice("baseline", name, BASELINES)
    for key in ("autoencoder_params", "encoder_weights"):
        check_names(key, getattr(config, key), models, noun="model")
    check_choice("cluster_on", config.cluster_on, ("test", "train"))
    if "densenet" in baselines:
        from .estimators import DenseNetClassifier

        own = set(DenseNetClassifier().get_params()) - {"epochs", "lr", "batch_size"}
        check_names("densenet_params", config.densenet_params, sorted(own - {"random_state"}))
    specs = []
    for name in models:
        params = dict(
            autoencoder=name, epochs=config.epochs, lr=config.lr, loss=config.loss,
            augment=config.augment,
            batch_size=config.batch_size,  # None: set from the fold size in compare()
            latent_dim=config.latent_dim, autoencoder_params=config.autoencoder_params.get(name),
            encoder_weights=config.encoder_weights.get(name), device=config.device,
            verbose=progress,
        )  # fmt: skip
        specs.append(MethodSpec(name, "autoencoder", params))
    if "kmeans" in baselines:
        specs.append(MethodSpec("kmeans", "kmeans"))
    if "densenet" in baselines:
        params = dict(
            epochs=config.densenet_epochs, lr=config.densenet_lr,
            batch_size=config.densenet_batch_size, device=config.device, verbose=progress,
            **config.densenet_params,
        )  # fmt: skip
        specs.append(MethodSpec("densenet", "densenet", params))
    return specs


def _names(value, what: str) -> list[str]:
    """A list of names from a list or a comma-separated string ("none": no names);
    duplicates are an error."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return []
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else list(value)
    names = [str(n) for n in names if str(n)]
    if len(set(names)) != len(names):
        raise ConfigError(f"{what} lists a name twice: {names}.")
    return names


def prepare_data(config: CompareConfig) -> ImageSet:
    """Load the data, keep ``classes`` and draw ``max_samples`` (stratified, seeded)."""
    data = load_data(config)
    if config.classes:
        classes = config.classes
        data = data.select_classes(classes.split(",") if isinstance(classes, str) else classes)
    if config.max_samples is not None:
        data = data.sample(config.max_samples, config.seed)
    return data


def resolve_pos_label(pos_label, data: ImageSet) -> int:
    """The label id of the positive class of the binary F1: by name or id; None = 1."""
    return 1 if pos_label is None else data.class_id(pos_label)


def write_outputs(stage: Path, results, rows, summary: dict, data: ImageSet, config) -> None:
    from . import plot
    from .compare_report import markdown_table, write_compare_report

    with open(stage / "results.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "fold", *SCORES, "seconds", "n_train", "n_test"])
        for r in results:
            scores = [f"{r.scores[s]:.6f}" for s in SCORES]
            writer.writerow(
                [r.method, r.fold + 1, *scores, f"{r.seconds:.2f}", r.n_train, r.n_test]
            )
    keys = ["rank", "method", "folds"]
    keys += [k for s in (*SCORES, "seconds") for k in (s, f"{s}_std")]
    with open(stage / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, keys)
        writer.writeheader()
        writer.writerows(rows)
    (stage / "table.md").write_text(markdown_table(rows) + "\n")
    plot.save_figure(plot.plot_score_bars(rows), stage / "scores.png")
    maps = []
    for r in results:
        if r.codes is None:
            continue
        keep = np.random.default_rng(config.seed).permutation(len(r.codes))[: config.tsne_points]
        Y, _ = plot.embed_2d(r.codes[np.sort(keep)], config.seed, method="tsne")
        title = (
            f"{r.method} (fold {r.fold + 1}: F1 {r.scores['f1']:.3f}, ACC {r.scores['acc']:.3f})"
        )
        maps.append((Y, r.clusters[np.sort(keep)], title))
    if maps:
        fig = plot.plot_map_pair(maps, "t-SNE", ncols=3)
        fig.suptitle("Held-out codes coloured by cluster (sole k-means: the pixels)")
        plot.save_figure(fig, stage / "tsne.png")
    (stage / "summary.json").write_text(json.dumps(summary, indent=1))
    write_compare_report(stage)
