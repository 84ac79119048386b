"""Issue 20 at the paper's scale: an IDC-like folder larger than memory as float32.

Three steps, each printing JSON lines (append them to a results file as they come):

    # 1. the folder: <patient>/<0|1>/*.png, 50x50 RGB crops of scikit-image's
    #    immunohistochemistry slide; label 1 = more DAB (brown) stain than the median crop
    python bench/scale.py generate --n 50000 --out /work/scale/idc-like
    # 2. aeclust cache at 250x250 (9.4 GB of uint8; 37.5 GB as float32), then aeclust run
    #    from the cache, each a process timed with its peak RSS (os.wait4)
    python bench/scale.py cache --data /work/scale/idc-like --out /work/scale/tiles250.npy
    python bench/scale.py run --data /work/scale/tiles250.npy --width 0.125 -- \\
        --model resnet --epochs 1 --batch-size 32 --reducer none --clusterer kmeans
    # 3. samples/s of training from the cache against the same images in memory (a subset
    #    that fits), alternated in one process
    python bench/scale.py throughput --data /work/scale/tiles250.npy --n 1024
    # the first 10,000 rows of the cache, for the seed pairs of 1 and 2 processes
    python bench/scale.py head --data /work/scale/tiles250.npy --n 10000 \
        --out /work/scale/tiles250-10k.npy
    # 4. the other two pipelines on the whole cache: predict with a run's model, compare
    python bench/scale.py predict --run RUN_DIR --data /work/scale/tiles250.npy
    python bench/scale.py compare --data /work/scale/tiles250.npy -- --models resnet \
        --param resnet:width=0.125 --epochs 1 --cv 2 --baselines kmeans --batch-size 32

Never run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def generate(n: int, out: Path, patients: int, seed: int) -> dict:
    from PIL import Image
    from skimage import data

    slide = data.immunohistochemistry()  # (512, 512, 3) uint8
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    corners = rng.integers(0, 512 - 50, (n, 2))
    brown = np.array([(slide[y : y + 50, x : x + 50, 2] < 120).mean() for y, x in corners])
    labels = (brown > np.median(brown)).astype(int)
    for i, ((y, x), label) in enumerate(zip(corners, labels, strict=True)):
        tile = np.rot90(slide[y : y + 50, x : x + 50], rng.integers(4))
        if rng.random() < 0.5:
            tile = tile[:, ::-1]
        jitter = rng.normal(1.0, 0.05, 3)  # stain intensity differs between slides
        tile = np.clip(tile * jitter, 0, 255).astype(np.uint8)
        folder = out / f"patient{i % patients:03d}" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.ascontiguousarray(tile)).save(folder / f"tile{i:06d}.png")
    return {"step": "generate", "n": n, "patients": patients, "positive": int(labels.sum()),
            "seconds": round(time.perf_counter() - t0, 1), "out": str(out)}  # fmt: skip


def timed(cmd: list[str]) -> dict:
    """Run ``cmd``; its wall seconds, return code, the peak RSS of its largest process
    (``peak_rss_mb``, from os.wait4) and the peak of the RSS summed over the process and
    all its descendants (``peak_tree_rss_mb``: reader workers, torchrun's ranks), sampled
    every 0.2 s."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    return {"seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb": round(
        usage.ru_maxrss / 1024), "peak_tree_rss_mb": round(peak[0] / 2**20),
        "rc": os.waitstatus_to_exitcode(status),
        "tail": output.strip().splitlines()[-3:]}  # fmt: skip


def _rss(pid: int) -> int:
    """Bytes of resident memory of ``pid`` (0 once gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _tree_rss(pid: int) -> int:
    """Bytes of resident memory of ``pid`` and all its descendants (0 once gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _rss(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


def cache(folder: str, out: str, size: int, workers: int) -> dict:
    cmd = ["aeclust", "cache", "--data", folder, "--out", out, "--image-size", str(size),
           "--workers", str(workers), "--overwrite"]  # fmt: skip
    result = timed(cmd)
    size_bytes = Path(out).stat().st_size if Path(out).exists() else None
    return {"step": "cache", "image_size": size, "workers": workers, "bytes": size_bytes,
            **result}  # fmt: skip


def run(data: str, extra: list[str], nproc: int, width: float | None) -> dict:
    with tempfile.TemporaryDirectory(dir=Path(data).parent) as tmp:
        out = Path(tmp) / "run"
        cmd = ["aeclust", "run", "--data", data, "--stream", "--nproc", str(nproc),
               "--out", str(out), *extra]  # fmt: skip
        if width is not None:  # network settings are YAML-only for `aeclust run`
            (Path(tmp) / "config.yaml").write_text(f"autoencoder_params: {{width: {width}}}\n")
            cmd += ["--config", str(Path(tmp) / "config.yaml")]
        result = timed(cmd)
        metrics = json.loads((out / "metrics.json").read_text()) if result["rc"] == 0 else {}
    timings = metrics.get("timings", {})
    n = metrics.get("n_samples")
    return {"step": "run", "nproc": nproc, "args": extra, "width": width, "n": n, **result,
            "train_s": timings.get("train"), "encode_s": timings.get("encode"),
            "cluster_s": timings.get("cluster"),
            "acc": metrics.get("acc"), "nmi": metrics.get("nmi")}  # fmt: skip


def head(data: str, n: int, out: str) -> dict:
    """The first ``n`` rows of the cache ``data`` as a cache of their own (pixels and
    sidecar), copied in chunks."""
    from aeclust.data.cache import sidecar
    from aeclust.data.memory import npy_header, write_npy_header

    shape, dtype, offset, _ = npy_header(Path(data))
    row = int(np.prod(shape[1:])) * dtype.itemsize
    with open(data, "rb") as src, open(out, "wb") as dst:
        write_npy_header(dst, (n, *shape[1:]), dtype)
        src.seek(offset)
        for start in range(0, n, 256):
            dst.write(src.read(row * (min(n, start + 256) - start)))
    meta = json.loads(sidecar(data).read_text())
    for key in ("names", "y", "groups"):
        if meta.get(key) is not None:
            meta[key] = meta[key][:n]
    meta["count"] = n
    sidecar(out).write_text(json.dumps(meta))
    return {"step": "head", "data": data, "n": n, "out": out}


def predict(run_dir: str, data: str, extra: list[str]) -> dict:
    """``aeclust predict --stream`` of ``data`` with the model of ``run_dir``."""
    with tempfile.TemporaryDirectory(dir=Path(data).parent) as tmp:
        out = Path(tmp) / "predict"
        cmd = ["aeclust", "predict", "--run", run_dir, "--data", data, "--stream", "--out",
               str(out), *extra]  # fmt: skip
        result = timed(cmd)
        metrics = out / "metrics.json"
        metrics = json.loads(metrics.read_text()) if metrics.is_file() else {}
        rows = sum(1 for _ in open(out / "assignments.csv")) - 1 if result["rc"] == 0 else None
    return {"step": "predict", "run": run_dir, "args": extra, "rows": rows, **result,
            "acc": metrics.get("acc"), "nmi": metrics.get("nmi")}  # fmt: skip


def compare(data: str, extra: list[str]) -> dict:
    """``aeclust compare --stream`` of ``data``; the table's rows (mean scores)."""
    with tempfile.TemporaryDirectory(dir=Path(data).parent) as tmp:
        out = Path(tmp) / "compare"
        cmd = ["aeclust", "compare", "--data", data, "--stream", "--out", str(out), *extra]
        result = timed(cmd)
        summary = out / "summary.json"
        summary = json.loads(summary.read_text()) if summary.is_file() else {}
    return {"step": "compare", "args": extra, **result, "summary": summary}


def throughput(data: str, n: int, batch: int, width: float, rounds: int) -> list[dict]:
    """Training samples/s on the first ``n`` images: from the cache (read by positioned
    reads, with 0 and 1 reader workers) and from memory, alternated, one epoch each."""
    import torch

    from aeclust.data import MappedImages
    from aeclust.nn import build_autoencoder
    from aeclust.training import LossStep, TrainConfig, Trainer

    full = MappedImages(data)
    subset = full.subset(np.arange(n))
    in_memory = subset[np.arange(n)]  # float32, as every loader returns
    sources = {"memory": lambda: in_memory, "cache": lambda: subset,
               "cache+1 worker": lambda: _with_workers(subset, 1)}  # fmt: skip

    def loss_fn(model, b):
        return ((model(b.x).output - b.x) ** 2).mean()

    lines = []
    for r in range(rounds):
        for name, source in sources.items():
            torch.manual_seed(0)
            model = build_autoencoder("resnet", full.image_shape, width=width)
            config = TrainConfig(epochs=1, batch_size=batch, seed=0)
            t0 = time.perf_counter()
            Trainer(model, LossStep(loss_fn), config).fit(source())
            seconds = time.perf_counter() - t0
            lines.append({"step": "throughput", "round": r, "source": name, "n": n,
                          "batch": batch, "width": width, "seconds": round(seconds, 2),
                          "samples_per_s": round(n / seconds, 1)})  # fmt: skip
            print(json.dumps(lines[-1]), flush=True)
    return lines


def _with_workers(images, workers: int):
    import copy

    view = copy.copy(images)
    view.workers = workers
    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--n", type=int, default=50_000)
    g.add_argument("--patients", type=int, default=100)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("cache")
    c.add_argument("--data", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--image-size", type=int, default=250)
    c.add_argument("--workers", type=int, default=2)
    r = sub.add_parser("run")
    r.add_argument("--data", required=True)
    r.add_argument("--nproc", type=int, default=1)
    r.add_argument("--width", type=float, help="autoencoder_params width (resnet, alexnet)")
    h = sub.add_parser("head")
    h.add_argument("--data", required=True)
    h.add_argument("--n", type=int, required=True)
    h.add_argument("--out", required=True)
    p = sub.add_parser("predict")
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    m = sub.add_parser("compare")
    m.add_argument("--data", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--data", required=True)
    t.add_argument("--n", type=int, default=1024)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--width", type=float, default=0.125)
    t.add_argument("--rounds", type=int, default=2)
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    if args.step == "generate":
        print(json.dumps(generate(args.n, args.out, args.patients, args.seed)), flush=True)
    elif args.step == "cache":
        print(json.dumps(cache(args.data, args.out, args.image_size, args.workers)), flush=True)
    elif args.step == "run":
        print(json.dumps(run(args.data, extra, args.nproc, args.width)), flush=True)
    elif args.step == "head":
        print(json.dumps(head(args.data, args.n, args.out)), flush=True)
    elif args.step == "predict":
        print(json.dumps(predict(args.run, args.data, extra)), flush=True)
    elif args.step == "compare":
        print(json.dumps(compare(args.data, extra)), flush=True)
    else:
        throughput(args.data, args.n, args.batch_size, args.width, args.rounds)


if __name__ == "__main__":
    sys.exit(main())
