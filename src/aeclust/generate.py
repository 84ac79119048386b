"""``aeclust generate``: images sampled from the prior(s) of a generative run's model,
written as a PNG grid and a ``.npy`` array (N, C, H, W) on the input's scale."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .estimators import DeepClusterer, GenerativeClusterer


def generate_run(run_dir, n: int = 64, out=None, seed: int = 0, overwrite: bool = False):
    """Write ``<out>.png`` and ``<out>.npy`` (default ``RUN/generated-<n>-seed<seed>``) with
    ``n`` images decoded from samples of the model's priors; returns the two paths."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"The run directory '{run_dir}' does not exist.")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"--n must be a positive number of images; got {n!r}.")
    est = DeepClusterer.load(run_dir, networks_only=True)  # no UMAP refit
    if not isinstance(est, GenerativeClusterer):
        raise ConfigError(
            f"The model of '{run_dir}' is {type(est).__name__}, which cannot generate images; "
            "train one with `aeclust run --model beta-vae|wae-gan|hrwae-gan`."
        )
    out = Path(out) if out else run_dir / f"generated-{n}-seed{seed}"
    paths = out.with_suffix(".png"), out.with_suffix(".npy")
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{', '.join(existing)} exists; pass --overwrite or another --out.")
    images = est.generate(n, random_state=seed)
    from . import plot
    from .plot_generative import plot_image_grid

    cols = int(np.ceil(np.sqrt(n)))
    title = f"{n} images from the prior of {type(est).__name__} (seed {seed})"
    out.parent.mkdir(parents=True, exist_ok=True)
    for path, write in ((paths[1], lambda p: np.save(p, images)),
                        (paths[0], lambda p: plot.save_figure(
                            plot_image_grid(images, cols, title), p))):  # fmt: skip
        tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        try:
            write(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return paths
