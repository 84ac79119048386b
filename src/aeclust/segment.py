"""``aeclust segment``: train LOC on a folder of images (or a built-in segmentation set),
then write every image's segment map, foreground mask and overlay, the number of segments
LOC chose, and a report; with true masks, the scores of LOC and of the colour k-means
baseline (the paper's Table 2).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .config import SegmentConfig
from .data import ImageSet
from .errors import DataError
from .estimators.loc import LOCSegmenter
from .report import html_page, img_tag, table, write_text_atomic
from .rundir import check_out_dir, load_data, staged_dir, versions
from .segmentation import (
    dice_per_image,
    iou_per_image,
    kmeans_segments,
    median_masks,
    n_segments,
    pixel_accuracy_per_image,
    segmentation_scores,
)

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def load_masks(folder: str | Path, data: ImageSet) -> np.ndarray:
    """The true mask of every image of ``data`` (loaded from a folder) from ``folder``: the
    file with the same relative path and stem, any image format, nonzero = foreground;
    resized (nearest) to the images' size. (N, H, W) bool."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"The masks folder '{folder}' does not exist; give --masks DIR.")
    if not data.names:
        raise DataError("--masks needs images from a folder, whose file names find the masks.")
    h, w = data.X.shape[2:]
    masks, missing = np.zeros((len(data), h, w), dtype=bool), []
    for i, name in enumerate(data.names):
        stem = Path(name).with_suffix("")
        found = [p for p in folder.glob(f"{stem}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if not found:
            missing.append(name)
            continue
        plane = Image.open(found[0]).convert("L").resize((w, h), Image.Resampling.NEAREST)
        masks[i] = np.asarray(plane) > 0
    if missing:
        raise DataError(
            f"{len(missing)} image(s) have no mask in '{folder}', e.g. '{missing[0]}'; give "
            "every image a mask file of the same name (any image format)."
        )
    return masks


def default_out(config: SegmentConfig) -> Path:
    source = Path(config.data).stem if config.data else config.dataset
    return Path("runs") / f"segment-{source}-{dt.datetime.now():%Y%m%d-%H%M%S}"


def segment(config: SegmentConfig, progress: bool = True) -> tuple[Path, dict]:
    """Run ``aeclust segment`` with ``config``; returns the output directory and metrics."""
    out = Path(config.out) if config.out else default_out(config)
    check_out_dir(out, config.overwrite, [config.data, config.masks])
    est = LOCSegmenter(
        rho=config.rho, epochs=config.epochs, batch_size=config.batch_size, lr=config.lr,
        width=config.width, observer_size=config.observer_size,
        target_window=config.target_window, polarity=config.polarity,
        device=config.device, random_state=config.seed, verbose=progress,
    )  # fmt: skip
    est._check_settings()  # before loading and training
    data = load_data(config)
    truth = load_masks(config.masks, data) if config.masks else data.masks
    with staged_dir(out) as stage:
        metrics = _segment_in(stage, config, est, data, truth)
    return out, metrics


def _segment_in(stage: Path, config, est: LOCSegmenter, data: ImageSet, truth) -> dict:
    t0 = time.perf_counter()
    est.fit(data.X)
    t1 = time.perf_counter()
    segments = est.segment(data.X)
    masks = median_masks(segments, config.polarity)
    counts = n_segments(segments)
    metrics = {
        "dataset": data.name,
        "n_images": len(data),
        "model": "LOC",
        "rho": config.rho,
        "segments": _distribution(counts),
        "timings": {"train": t1 - t0, "segment": time.perf_counter() - t1},
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "versions": versions(),
    }
    baseline = None
    if truth is not None:
        metrics["loc"] = segmentation_scores(truth, masks)
        if config.baseline:
            t2 = time.perf_counter()
            km = kmeans_segments(data.X, config.baseline_clusters, random_state=config.seed)
            baseline = median_masks(km, config.polarity)
            metrics["kmeans"] = segmentation_scores(truth, baseline)
            metrics["timings"]["kmeans"] = time.perf_counter() - t2
    est.save(stage)
    (stage / "history.json").write_text(json.dumps(est.history_, indent=1))
    (stage / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
    names = _file_names(data)
    _write_images(stage, data.X, segments, masks, names)
    _write_table(stage / "segments.csv", names, counts, masks, truth)
    _figures(stage, data.X, segments, masks, truth, baseline, counts, est.history_)
    (stage / "metrics.json").write_text(json.dumps(metrics, indent=1))
    write_text_atomic(stage / "report.html", _report(stage, metrics))
    return metrics


def _distribution(counts: np.ndarray) -> dict:
    values, freq = np.unique(counts, return_counts=True)
    return {
        "mean": float(counts.mean()),
        "median": float(np.median(counts)),
        "min": int(counts.min()),
        "max": int(counts.max()),
        "histogram": {str(int(v)): int(f) for v, f in zip(values, freq, strict=True)},
    }


def _file_names(data: ImageSet) -> list[str]:
    if data.names:
        return [str(Path(n).with_suffix(".png")) for n in data.names]
    return [f"{i:05d}.png" for i in range(len(data))]


def _display(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W, 3) uint8."""
    rgb = np.repeat(image, 3, 0) if image.shape[0] == 1 else image[:3]
    lo, hi = float(rgb.min()), float(rgb.max())
    scaled = (rgb - lo) / (hi - lo) if lo < 0 or hi > 1 else rgb
    return (np.clip(scaled, 0, 1).transpose(1, 2, 0) * 255).astype(np.uint8)


def _palette(segments: np.ndarray) -> np.ndarray:
    """A segment map (H, W) as (H, W, 3) uint8, the colours spread over viridis."""
    from matplotlib import colormaps

    top = max(int(segments.max()), 1)
    return (colormaps["viridis"](segments / top)[..., :3] * 255).astype(np.uint8)


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the foreground tinted red and the background dimmed."""
    rgb = _display(image).astype(np.float32)
    red = np.array([255, 40, 40], dtype=np.float32)
    out = np.where(mask[..., None], 0.55 * rgb + 0.45 * red, 0.5 * rgb)
    return out.astype(np.uint8)


def _write_images(stage: Path, X, segments, masks, names) -> None:
    for folder in ("segments", "masks", "overlays"):
        (stage / folder).mkdir()
    for i, name in enumerate(names):
        for folder in ("segments", "masks", "overlays"):
            (stage / folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_palette(segments[i])).save(stage / "segments" / name)
        Image.fromarray((masks[i] * 255).astype(np.uint8)).save(stage / "masks" / name)
        Image.fromarray(_overlay(X[i], masks[i])).save(stage / "overlays" / name)


def _write_table(path: Path, names, counts, masks, truth) -> None:
    header = ["index", "name", "n_segments", "foreground"]
    if truth is not None:
        header += ["iou", "dice", "pixel_acc"]
        ious, dices = iou_per_image(truth, masks), dice_per_image(truth, masks)
        accs = pixel_accuracy_per_image(truth, masks)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, name in enumerate(names):
            row = [i, name, int(counts[i]), f"{masks[i].mean():.4f}"]
            if truth is not None:
                row += [f"{ious[i]:.4f}", f"{dices[i]:.4f}", f"{accs[i]:.4f}"]
            writer.writerow(row)


def _figures(stage, X, segments, masks, truth, baseline, counts, history) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(8, len(X))

    def overlays(masks_):
        return [_overlay(x, m) for x, m in zip(X[:n], masks_[:n], strict=True)]

    rows = [("image", [_display(x) for x in X[:n]]),
            ("LOC segments", [_palette(s) for s in segments[:n]]),
            ("LOC mask", overlays(masks))]  # fmt: skip
    if baseline is not None:
        rows.append(("k-means mask", overlays(baseline)))
    if truth is not None:
        rows.append(("true mask", overlays(truth)))
    fig, axes = plt.subplots(len(rows), n, figsize=(1.6 * n, 1.7 * len(rows)), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(images[c])
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if r == 1:
                ax.set_title(f"{counts[c]} segments", fontsize=7)
    fig.tight_layout()
    fig.savefig(stage / "examples.png", dpi=110)
    plt.close(fig)

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    values, freq = np.unique(counts, return_counts=True)
    a.bar(values, freq, color="#4878a8")
    a.set(xlabel="segments LOC chose", ylabel="images", title="Number of segments per image")
    epochs = [h["epoch"] for h in history]
    b.plot(epochs, [h["loss"] for h in history], label="loss (eq. 22)")
    b.plot(epochs, [h["error"] for h in history], label="ε, monitored images")
    b.set(xlabel="epoch", title="Training")
    b2 = b.twinx()
    b2.plot(epochs, [h["segments"] for h in history], color="#c44e52", label="segments")
    b2.set_ylabel("mean segments", color="#c44e52")
    b.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(stage / "segments.png", dpi=110)
    plt.close(fig)


def _report(stage: Path, metrics: dict) -> str:
    seg = metrics["segments"]
    body = [
        f"<h1>LOC segmentation of {metrics['dataset']}</h1>",
        f"<p>{metrics['n_images']} images, ρ = {metrics['rho']}; LOC chose {seg['min']} to "
        f"{seg['max']} segments per image (mean {seg['mean']:.2f}, median {seg['median']:g}). "
        f"Training took {metrics['timings']['train']:.0f} s.</p>",
    ]
    if "loc" in metrics:
        rows = [("LOC", *(f"{metrics['loc'][k]:.3f}" for k in ("pixel_acc", "iou", "dice")))]
        if "kmeans" in metrics:
            rows.append(("colour k-means", *(f"{metrics['kmeans'][k]:.3f}"
                                              for k in ("pixel_acc", "iou", "dice"))))  # fmt: skip
        body.append("<h2>Scores against the true masks (per-image means)</h2>")
        body.append(table(rows, ["method", "pixel ACC", "IoU", "Dice"], "lrrr"))
    body.append(img_tag(stage / "examples.png", "Examples: segments, masks (red) and truth"))
    body.append(img_tag(stage / "segments.png", "Segments per image, and training"))
    body.append(
        "<p>Every image's segment map, mask and overlay are in <code>segments/</code>, "
        "<code>masks/</code> and <code>overlays/</code>; <code>segments.csv</code> lists "
        "the number of segments (and scores) per image.</p>"
    )
    return html_page(f"aeclust segment: {metrics['dataset']}", "\n".join(body))
