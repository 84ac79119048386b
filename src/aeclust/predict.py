"""``aeclust predict``: assign new images with the model of a saved run directory."""

from __future__ import annotations

import json
from pathlib import Path

from .data import load_dataset
from .errors import DataError
from .estimators import DeepClusterer
from .metrics import evaluate
from .rundir import check_out_dir, staged_dir, write_assignments


def predict_run(run_dir, data: str, out=None, overwrite: bool = False, skip_bad: bool = False,
                stream: bool = False, workers: int = 0):  # fmt: skip
    """Write ``assignments.csv`` (and ``metrics.json`` when the data has labels) into ``out``.
    ``stream``: read the images from disk a batch at a time (see :func:`load_dataset`)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"The run directory '{run_dir}' does not exist.")
    est = DeepClusterer.load(run_dir)
    channels, height, width = est.image_shape_  # new images take the model's shape
    color = {1: "gray", 3: "rgb"}.get(channels, "auto")
    out = Path(out) if out else run_dir / f"predict-{Path(str(data)).name}"
    check_out_dir(out, overwrite, [data, run_dir])
    images = load_dataset(data, image_size=(height, width), color=color, skip_bad=skip_bad,
                          stream=stream, workers=workers)  # fmt: skip
    clusters = est.predict(images.X)
    metrics = evaluate(images.y, clusters) if images.y is not None else {}
    with staged_dir(out) as stage:
        write_assignments(stage / "assignments.csv", clusters, images)
        if metrics:
            metrics["dataset"] = images.name
            (stage / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return out, metrics
