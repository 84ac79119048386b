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
    joint = [r for r in rows if "method" in r]
    if pipelines:
        parts.append(pipeline_table(pipelines))
    if joint:
        parts.append(joint_table(joint))
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
