"""Summarise benchmark JSON lines as Markdown tables: mean ± std over seeds.

python bench/pipelines.py > results.jsonl && python bench/table.py results.jsonl

Rows of bench/pipelines.py (key "pipeline") and of bench/joint.py (key "method") give one
table each; rows that differ only in their seed are one line of the table.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

METRICS = ("acc", "nmi", "ari")


def _mean_std(values) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.3f} ± {values.std():.3f}"


def summarise(rows: list[dict]) -> str:
    """Markdown for the pipeline rows, then for the joint-method rows."""
    parts = []
    pipelines = [r for r in rows if "pipeline" in r]
    segmentation = [r for r in rows if r.get("bench") == "segmentation"]
    parts += [bottleneck_table(r) for r in rows if r.get("bench") == "bottleneck"]
    rows = [r for r in rows if r.get("bench") not in ("segmentation", "bottleneck")]
    joint = [r for r in rows if "method" in r and "paper_mnist" not in r]
    one_stage = [r for r in rows if "paper_mnist" in r]
    if pipelines:
        parts.append(pipeline_table(pipelines))
    if joint:
        parts.append(joint_table(joint))
    if one_stage:
        parts.append(one_stage_table(one_stage))
    generative = [r for r in rows if "latent_groups" in r]
    if generative:
        parts += [generative_table(generative), denominator_table(generative)]
    if segmentation:
        parts.append(segmentation_table(segmentation))
    return "\n\n".join(parts)


def _table(head: list[str], groups: dict, cells) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells(key, group)) + " |" for key, group in groups.items()]
    return "\n".join(lines)


def pipeline_table(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        # rows written before augmentation and GMM restarts existed had neither (none, 1)
        key = r["dataset"], r["pipeline"], r.get("epochs"), r.get("augment", "none")
        key += (r.get("batch_size", 64),)
        key += (r.get("umap_epochs", 200) if "umap" in r["pipeline"] else "–",)
        groups[*key, r.get("gmm_n_init", 1) if "gmm" in r["pipeline"] else "–"].append(r)
    head = ["dataset", "pipeline", "epochs", "augment", "batch", "UMAP epochs", "GMM inits"]
    head += ["seeds", *METRICS]
    head += ["train s", "cluster s", "peak MiB"]

    def cells(key, group):
        return [
            *map(str, key),
            str(len(group)),
            *(_mean_std([r[m] for r in group]) for m in METRICS),
            f"{np.mean([r['seconds_train'] for r in group]):.0f}",
            f"{np.mean([r['seconds_cluster'] for r in group]):.0f}",
            str(max(r["peak_mib"] for r in group)),
        ]

    return _table(head, groups, cells)


def joint_table(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        settings = json.dumps(_settings(r), sort_keys=True)
        groups[r["dataset"], r["method"], settings].append(r)
    head = ["dataset", "method", "settings", "seeds", *METRICS, "epochs run", "seconds"]
    head += ["peak MiB"]

    def cells(key, group):
        dataset, method, settings = key
        text = ", ".join(f"{k} {v}" for k, v in json.loads(settings).items())
        return [
            dataset,
            method,
            text,
            str(len(group)),
            *(_mean_std([r[m] for r in group]) for m in METRICS),
            f"{np.mean([r['epochs'] for r in group]):.0f}",
            f"{np.mean([r['seconds'] for r in group]):.0f}",
            str(max(r["peak_mib"] for r in group)),
        ]

    return _table(head, groups, cells)


def _codes_cell(codes: list[dict], runs: int) -> str:
    """Purity / ACC of k-means on h_AE over the runs that measured it ("–" if none)."""
    if not codes:
        return "–"
    cell = " / ".join(_mean_std([c[m] for c in codes]) for m in ("purity", "acc"))
    return cell if len(codes) == runs else f"{cell} ({len(codes)} of {runs} runs)"


def one_stage_table(rows: list[dict]) -> str:
    """Rows of bench/one_stage.py: Table 1 of the one-stage autoencoders paper."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        key = r["dataset"], r["method"], r["k"], r.get("epochs", "–"), json.dumps(r["params"])
        groups[key].append(r)
    head = ["dataset", "method", "K", "epochs", "params", "seeds", "purity", "ACC", "NMI"]
    head += ["k-means on h_AE: purity / ACC", "clusters used", "confidence"]
    head += ["paper (MNIST purity)", "parameters", "seconds"]

    def cells(key, group):
        conf = [r["confidence"] for r in group if r["confidence"] is not None]
        codes = [r["code_kmeans"] for r in group if "code_kmeans" in r]
        paper = group[0]["paper_mnist"]
        return [
            *map(str, key[:4]),
            "" if key[4] == "{}" else key[4],
            str(len(group)),
            *(_mean_std([r[m] for r in group]) for m in ("purity", "acc", "nmi")),
            _codes_cell(codes, len(group)),
            f"{np.mean([r['clusters_used'] for r in group]):.1f}",
            f"{np.mean(conf):.3f}" if conf else "–",
            "–" if paper is None else f"{paper / 100:.3f}",
            str(group[0]["parameters"] or "–"),
            f"{np.mean([r['seconds'] for r in group]):.0f}",
        ]

    return _table(head, groups, cells)


def segmentation_table(rows: list[dict]) -> str:
    """Rows of bench/segmentation.py: Table 2 of the one-stage autoencoders paper."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        settings = f"{r.get('clusters')} clusters"
        if r["method"] == "loc":
            settings = (f"ρ {r['rho']}, {r['epochs']} epochs, width {r['width']}, "
                        f"window {r['target_window']}")  # fmt: skip
        for polarity in r["scores"]:
            groups[r["method"], settings, r["color"], polarity].append(r)
    head = ["method", "settings", "colour", "mask rule", "seeds", "pixel ACC", "IoU", "Dice"]
    head += ["segments (mean)", "paper (Flowers)", "seconds"]

    def cells(key, group):
        polarity = key[3]
        scores = [r["scores"][polarity] for r in group]
        return [
            *key[:3],
            "median + border" if polarity == "border" else "median (paper)",
            str(len(group)),
            *(_mean_std([s[m] for s in scores]) for m in ("pixel_acc", "iou", "dice")),
            f"{np.mean([r['segments_mean'] for r in group]):.2f}",
            " / ".join(f"{v / 100:.3f}" for v in group[0]["paper"]),
            f"{np.mean([r['seconds'] for r in group]):.0f}",
        ]

    return _table(head, groups, cells)


def _avg_best(values, best_index=None) -> str:
    """mean ± std (the thesis' "avg") and, in brackets, the value of the best run."""
    values = np.asarray(values, dtype=float)
    if not len(values):
        return "–"
    best = values.max() if best_index is None else values[best_index]
    return f"{100 * values.mean():.1f} ± {100 * values.std():.1f} ({100 * best:.1f})"


def generative_table(rows: list[dict]) -> str:
    """Tables 4.1, 4.3 and 4.4 of Morais' thesis: per model, L and latent group, the
    thesis' columns (in %, mean ± std over the runs, the best run in brackets)."""
    by_model: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        key = r["dataset"], r["model"], r["latent_groups"], r["epochs"]
        by_model[*key, json.dumps(r.get("params", {}), sort_keys=True)].append(r)
    groups = {}
    for key, runs in by_model.items():
        ok = [r for r in runs if "groups" in r]
        for g in range(key[2] if ok else 0):
            groups[(*key, g)] = (runs, [r["groups"][g] for r in ok], ok)
        if not ok:
            groups[(*key, "–")] = (runs, [], ok)
    head = ["dataset", "model", "L", "epochs", "params", "group", "runs (diverged)",
            "rollbacks", "recon. MSE", "Fréchet (DenseNet)", "HDBSCAN #clusters",
            "% labelled", "acc labelled", "total acc (best)", "silhouette",
            "GMM, K from HDBSCAN: acc (best)", "GMM, K = classes: acc (best)"]  # fmt: skip

    def cells(key, value):
        runs, per_group, ok = value
        diverged = len(runs) - len(ok)
        base = [*map(str, key[:4]), key[4] if key[4] != "{}" else "", str(key[5]),
                f"{len(runs)} ({diverged})"]  # fmt: skip
        if not per_group:
            return base + ["–"] * (len(head) - len(base))
        h = [g["hdbscan_50"] for g in per_group]
        fd = [r["frechet_densenet"] for r in ok if "frechet_densenet" in r]
        return base + [
            str(sum(r["rollbacks"] for r in ok)),
            f"{np.mean([r['reconstruction_mse'] for r in ok]):.4f}",
            f"{np.mean(fd):.2f}" if fd else "–",
            f"{np.mean([x['n_clusters'] for x in h]):.1f}",
            _avg_best([x["labelled"] for x in h], int(np.argmax([x["acc"] for x in h]))),
            _avg_best([x["acc_labelled"] for x in h], int(np.argmax([x["acc"] for x in h]))),
            _avg_best([x["acc"] for x in h]),
            f"{np.mean([x['silhouette'] for x in h]):.2f}",
            _avg_best([g["gmm_k_hdbscan"]["acc"] for g in per_group if "gmm_k_hdbscan" in g]),
            _avg_best([g["gmm_k_classes"]["acc"] for g in per_group]),
        ]

    return _table(head, groups, cells)


def denominator_table(rows: list[dict]) -> str:
    """Table 4.2: HDBSCAN's denominator on each model's top group (means over the runs),
    on the points each run swept (rows from before the subsample swept all N)."""
    table: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if "groups" not in r:
            continue
        top = r["groups"][0]
        prefix = "sweep_hdbscan_" if "sweep_n" in top else "hdbscan_"
        key = r["dataset"], r["model"], r["latent_groups"], r["epochs"], top.get("sweep_n", r["n"])
        for name, value in top.items():
            if name.startswith(prefix):
                table[(*key, int(name.rsplit("_", 1)[1]))].append(value)
    head = ["dataset", "model", "L", "epochs", "points", "denominator", "runs", "% labelled",
            "acc labelled", "total acc", "silhouette"]  # fmt: skip

    def cells(key, xs):
        mean = lambda k: np.mean([x[k] for x in xs])  # noqa: E731
        return [*map(str, key), str(len(xs)), f"{100 * mean('labelled'):.1f}",
                f"{100 * mean('acc_labelled'):.1f}", f"{100 * mean('acc'):.1f}",
                f"{mean('silhouette'):.2f}"]  # fmt: skip

    return _table(head, dict(sorted(table.items())), cells)


def bottleneck_table(row: dict) -> str:
    """One laboratory run of bench/bottleneck.py: a row per configuration, the pixels
    first (their MSE is the mean image's)."""
    head = ["config (side-channels)", "neurons % of input", "final train MSE", "final test MSE",
            "best test MSE (epoch)", "test rise after best", "probe F1 train / test",
            "k-means ACC", "UMAP+GMM ACC"]  # fmt: skip
    title = (f"{row['dataset']}: {row['n_train']} / {row['n_test']} images, {row['epochs']} "
             f"epochs, batch {row['batch_size']}, {row['blocks']} residual blocks, "
             f"seed {row['seed']}, commit {row['commit']}")  # fmt: skip

    def cells(name, r):
        if r["size"] is None:
            mse = [
                f"{r['train_mse']:.4f} (mean image)",
                f"{r['test_mse']:.4f} (mean image)",
                "",
                "",
            ]
        else:
            rise = f"{100 * r['test_rise']:.1f}%" if r["test_rise"] else "0"
            mse = [f"{r['train_mse']:.4f}", f"{r['test_mse']:.4f}",
                   f"{r['best_test_mse']:.4f} ({r['best_epoch']})", rise]  # fmt: skip
        return [name, f"{r['share']:.1f}", *mse,
                f"{r['probe_train_f1']:.3f} / {r['probe_test_f1']:.3f}",
                f"{r['kmeans_acc']:.3f}", f"{r['umap_gmm_acc']:.3f}"]  # fmt: skip

    return title + "\n\n" + _table(head, {r["name"]: r for r in row["configurations"]}, cells)


def _settings(row: dict) -> dict:
    """The settings of bench/joint.py that matter to this row's method."""
    s = row.get("settings", {})
    if row["method"] in ("dec", "idec", "dcec"):
        keys = ("pretrain_epochs", "cluster_epochs")
    elif row["method"] == "dcae-kmeans":
        keys = ("epochs", "dcae_init", "warmup_epochs", "e1_reduction")
    else:
        keys = ("epochs",)
    # rows measured before e1_reduction existed used the per-pixel mean
    defaults = {"e1_reduction": "mean"}
    return {k: s.get(k, defaults.get(k)) for k in keys}


if __name__ == "__main__":
    rows = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
    print(summarise(rows))
