"""Summarise benchmark JSON lines as a Markdown table: mean ± std over seeds.

python bench/pipelines.py > results.jsonl && python bench/table.py results.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict

import numpy as np

METRICS = ("acc", "nmi", "ari")
SECONDS = ("seconds_train", "seconds_cluster")


def summarise(rows: list[dict]) -> str:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[
            row["dataset"], row["pipeline"], row.get("epochs"), row.get("batch_size", 64)
        ].append(row)
    head = [
        "dataset",
        "pipeline",
        "epochs",
        "batch",
        "seeds",
        *METRICS,
        "train s",
        "cluster s",
        "peak MiB",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (dataset, pipeline, epochs, batch), group in groups.items():
        cells = [dataset, pipeline, str(epochs), str(batch), str(len(group))]
        for key in METRICS:
            values = np.array([r[key] for r in group])
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}")
        for key in SECONDS:
            cells.append(f"{np.mean([r[key] for r in group]):.0f}")
        cells.append(str(max(r["peak_mib"] for r in group)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    rows = [json.loads(line) for path in sys.argv[1:] for line in open(path) if line.strip()]
    print(summarise(rows))
