"""The ``aeclust`` command: ``run``, ``compare``, ``segment``, ``bottleneck``, ``predict``,
``generate``, ``runs`` and ``datasets``.

This is the only module that parses arguments. Errors a user can fix (:class:`AeclustError`)
print one line and exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path

import yaml

from .errors import AeclustError

EXIT_USER_ERROR = 2
OVERWRITE_HELP = "replace --out when it holds an earlier aeclust output"


def _size(text: str):
    parts = [int(p) for p in text.lower().replace("x", ",").split(",") if p]
    return parts[0] if len(parts) == 1 else parts


def _param(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise AeclustError(f"--param needs KEY=VALUE, e.g. --param lam=0.5; got {text!r}.")
    return key.strip().replace("-", "_"), yaml.safe_load(value)


A = argparse.SUPPRESS  # unset flags stay out of the namespace, so YAML values survive


def add_data_arguments(p: argparse.ArgumentParser, data_help: str) -> None:
    """The settings file and the data options every job that reads images shares."""
    p.add_argument("--config", metavar="FILE.yaml", help="settings file; flags override it")
    p.add_argument("--dataset", default=A, help="built-in dataset (see `aeclust datasets`)")
    p.add_argument("--data", default=A, metavar="PATH", help=data_help)
    p.add_argument("--split", default=A, help="dataset split, e.g. train or test")
    p.add_argument("--image-size", type=_size, default=A, metavar="H[xW]", help="resize images")
    p.add_argument("--color", default=A, choices=["auto", "gray", "rgb"])
    p.add_argument("--skip-bad", action="store_true", default=A, help="skip unreadable images")


def add_stream_arguments(p: argparse.ArgumentParser, default=A) -> None:
    """``--stream`` and ``--workers``: images read from disk a batch at a time."""
    p.add_argument(
        "--stream",
        action="store_true",
        default=default,
        help="keep the images on disk and read them batch by batch (data larger "
        "than memory: an image folder, or a .npy that `aeclust cache` wrote)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=default,
        metavar="N",
        help="with --stream: processes that read the next batches (0)",
    )


def add_output_arguments(p: argparse.ArgumentParser, out_help: str) -> None:
    """Seed, device and the output directory, shared by the training jobs."""
    p.add_argument("--seed", type=int, default=A)
    p.add_argument("--device", default=A, help="auto, cpu or cuda")
    p.add_argument("--out", default=A, metavar="DIR", help=out_help)
    p.add_argument("--overwrite", action="store_true", default=A, help=OVERWRITE_HELP)


def k_value(text: str) -> int | str:
    """``--k``: a whole number, or "auto"."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number or auto; got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aeclust", description="Cluster images with deep autoencoders."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or logs")
    sub = parser.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="train, cluster, score and write a run directory with a report")
    add_data_arguments(r, "image folder, .npy/.npz or IDX file")
    add_stream_arguments(r)
    r.add_argument(
        "--model",
        default=A,
        help="autoencoder (conv (default), mlp, dcae, fc, conv-pool, conv-nopool, alexnet, "
        "resnet, hrwae), joint method (dcae-kmeans, dec, idec, dcec), one-stage ACRBM "
        "(acrbm, ae-acrbm) or generative model (beta-vae, wae-gan, hrwae-gan)",
    )
    r.add_argument(
        "--param",
        action="append",
        default=A,
        metavar="KEY=VALUE",
        help="a parameter of the joint or generative method, e.g. --param lam=0.5 "
        "--param pretrain_epochs=20, --param latent_groups=2 --param updates=[1,2]",
    )
    r.add_argument("--latent-dim", type=int, default=A)
    r.add_argument(
        "--encoder-weights",
        default=A,
        metavar="FILE",
        help="local encoder state dict (.safetensors or torch file), e.g. AlexNet weights",
    )
    r.add_argument("--loss", default=A, choices=["mse", "bce"])
    r.add_argument("--epochs", type=int, default=A)
    r.add_argument("--batch-size", type=int, default=A)
    r.add_argument("--lr", type=float, default=A)
    r.add_argument("--lr-schedule", default=A, choices=["constant", "cosine", "step"])
    r.add_argument("--optimizer", default=A, choices=["adam", "adamw", "rmsprop", "sgd"],
                   help="default adam; its own settings go in optimizer_params (YAML)")  # fmt: skip
    r.add_argument(
        "--precision",
        default=A,
        choices=["fp32", "bf16"],
        help="bf16: bfloat16 autocast in training (CPUs with AMX/AVX512-BF16, GPUs)",
    )
    r.add_argument("--val-fraction", type=float, default=A)
    r.add_argument("--patience", type=int, default=A)
    r.add_argument(
        "--augment",
        default=A,
        choices=["auto", "affine", "none"],
        help="random shifts and rotations of the training images (autoencoder models; "
        "default none; auto: on for images of 8x8 pixels or more)",
    )
    r.add_argument(
        "--clusterer",
        default=A,
        help="kmeans, minibatch-kmeans, gmm (default), agglomerative, hdbscan",
    )
    r.add_argument("--k", type=k_value, default=A, metavar="K",
                   help="number of clusters (default: classes or 10); auto: K from HDBSCAN "
                   "(generative models)")  # fmt: skip
    r.add_argument("--reducer", default=A, help="umap (default) or none")
    r.add_argument(
        "--no-compare",
        dest="compare",
        action="store_false",
        default=A,
        help="joint methods: skip training the same network without the clustering loss "
        "(the with/without map in the report)",
    )
    add_output_arguments(r, "run directory to write")
    r.add_argument(
        "--nproc",
        type=int,
        default=A,
        metavar="N",
        help="train with N processes on this machine (PyTorch DDP through torchrun; several "
        "machines: see the README)",
    )
    r.add_argument(
        "--resume",
        default=A,
        metavar="OUT",
        help="continue the killed or interrupted run that was headed for OUT, with its settings",
    )

    c = sub.add_parser(
        "compare",
        help="cross-validate autoencoders + k-means against sole k-means and a supervised "
        "DenseNet (Liu & Zhang's Table 1) and write a ranked report",
    )
    add_data_arguments(c, "labelled image folder or file")
    add_stream_arguments(c)
    c.add_argument("--classes", default=A, help="keep only these classes, e.g. 0,6 or names")
    c.add_argument("--max-samples", type=int, default=A, help="stratified sample of the data")
    c.add_argument(
        "--models", default=A, help="autoencoders, default fc,conv-pool,conv-nopool,alexnet,resnet"
    )
    c.add_argument("--baselines", default=A, help="kmeans,densenet (default) or none")
    c.add_argument("--cv", type=int, default=A, help="number of folds (default 5)")
    c.add_argument(
        "--no-group-folds", dest="group_folds", action="store_false", default=A,
        help="ignore the groups (patients) when making folds",
    )  # fmt: skip
    c.add_argument(
        "--cluster-on",
        default=A,
        choices=["test", "train"],
        help="fit k-means on the held-out codes (default) or the training codes",
    )
    c.add_argument("--k", type=int, default=A, help="number of clusters (default: classes)")
    c.add_argument("--pos-label", default=A, help="positive class of the binary F1 (default 1)")
    c.add_argument("--epochs", type=int, default=A, help="autoencoder epochs (default 70)")
    c.add_argument("--batch-size", type=int, default=A, help="default: the paper's per model")
    c.add_argument("--lr", type=float, default=A)
    c.add_argument("--latent-dim", type=int, default=A, help="default: each model's own")
    c.add_argument("--loss", default=A, choices=["mse", "bce"])
    c.add_argument(
        "--augment",
        default=A,
        choices=["none", "auto", "affine"],
        help="random shifts and rotations of the training images (default none, as the paper)",
    )
    c.add_argument(
        "--param", action="append", default=A, metavar="MODEL:KEY=VALUE",
        help="a network parameter, e.g. --param alexnet:fc_width=1024 --param resnet:width=0.5 "
        "--param densenet:growth_rate=8",
    )  # fmt: skip
    c.add_argument(
        "--encoder-weights",
        action="append",
        default=A,
        metavar="MODEL=FILE",
        help="load a local encoder state dict, e.g. alexnet=alexnet.safetensors",
    )
    c.add_argument("--densenet-epochs", type=int, default=A, help="default 30")
    c.add_argument("--tsne-points", type=int, default=A, help="points per t-SNE map (2000)")
    add_output_arguments(c, "output directory to write")

    sg = sub.add_parser(
        "segment",
        help="unsupervised segmentation with LOC: segment maps, foreground masks, overlays "
        "and a report (scored against true masks when there are any)",
    )
    add_data_arguments(sg, "folder of images (or .npy/.npz) to segment")
    sg.add_argument("--masks", default=A, metavar="DIR",
                    help="folder of true masks named as the images (scores them)")  # fmt: skip
    sg.add_argument("--rho", type=float, default=A, help="LOC's bound ρ (0.5)")
    sg.add_argument("--epochs", type=int, default=A, help="training epochs (50)")
    sg.add_argument("--batch-size", type=int, default=A)
    sg.add_argument("--lr", type=float, default=A)
    sg.add_argument("--width", type=int, default=A, help="filters of the network (16)")
    sg.add_argument("--polarity", default=A, choices=["border", "none"],
                    help="which half of the segments is the object: border (default) swaps a "
                    "mask that is mostly border; none is the paper's median rule")  # fmt: skip
    sg.add_argument("--no-baseline", dest="baseline", action="store_false", default=A,
                    help="do not score the colour k-means baseline")  # fmt: skip
    add_output_arguments(sg, "output directory to write")

    b = sub.add_parser(
        "bottleneck",
        help="the bottleneck laboratory (Walking the tightrope): CAEs that differ only in "
        "their bottleneck's size and channels, with loss curves, probes, SVCCA and a report",
    )
    add_data_arguments(b, "image folder, .npy/.npz or IDX file (the training images)")
    b.add_argument("--test-data", default=A, metavar="PATH", help="the test images (default: "
                   "a random --test-fraction of the data)")  # fmt: skip
    b.add_argument("--test-split", default=A, help="or a split of the dataset, e.g. test")
    b.add_argument("--test-fraction", type=float, default=A, help="default 0.2 (the paper's)")
    b.add_argument("--max-train", type=int, default=A, help="a random sample of N training images")
    b.add_argument("--max-test", type=int, default=A, help="a random sample of N test images")
    b.add_argument("--sizes", default=A, help="bottleneck sizes i of eq. 5 (default 1,2,3)")
    b.add_argument("--compressions", default=A,
                   help="compressions c of eq. 6 (default 1/64,1/16,1/4,1)")  # fmt: skip
    b.add_argument("--blocks", type=int, default=A, help="residual blocks per stage (2)")
    b.add_argument("--epochs", type=int, default=A, help="epochs per configuration (30)")
    b.add_argument("--batch-size", type=int, default=A)
    b.add_argument("--lr", type=float, default=A)
    b.add_argument("--probe-folds", type=int, default=A, help="folds of the linear probes (5)")
    b.add_argument("--no-cluster", dest="cluster", action="store_false", default=A,
                   help="skip k-means and UMAP + GMM on the codes")  # fmt: skip
    b.add_argument("--k", type=int, default=A, help="clusters (default: classes, else 10)")
    add_output_arguments(b, "run directory to write")
    b.add_argument(
        "--resume",
        default=A,
        metavar="OUT",
        help="continue the killed laboratory headed for OUT with its settings",
    )

    p = sub.add_parser("predict", help="assign new images with a saved run")
    p.add_argument("--run", required=True, metavar="DIR", help="a directory `aeclust run` wrote")
    p.add_argument("--data", required=True, metavar="PATH", help="dataset name or path")
    p.add_argument("--out", metavar="DIR", help="default: RUN/predict-<data>")
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("--skip-bad", action="store_true")
    add_stream_arguments(p, default=None)

    ca = sub.add_parser("cache", help="decode an image folder once into a memory-mapped .npy "
                        "(uint8) and its labels (.json), for fast --stream runs")  # fmt: skip
    ca.add_argument("--data", required=True, metavar="DIR", help="the image folder")
    ca.add_argument("--out", required=True, metavar="FILE.npy", help="the cache to write")
    ca.add_argument("--image-size", type=_size, metavar="H[xW]", help="resize images")
    ca.add_argument("--color", default="auto", choices=["auto", "gray", "rgb"])
    ca.add_argument("--skip-bad", action="store_true", help="leave unreadable images out")
    ca.add_argument("--workers", type=int, default=2, metavar="N",
                    help="decoding processes (default 2)")  # fmt: skip
    ca.add_argument("--overwrite", action="store_true", help="replace an existing cache")

    g = sub.add_parser("generate", help="sample images from a generative run's prior(s)")
    g.add_argument("--run", required=True, metavar="DIR", help="a run of beta-vae, wae-gan or "
                   "hrwae-gan")  # fmt: skip
    g.add_argument("--n", type=int, default=64, help="number of images (64)")
    g.add_argument("--seed", type=int, default=0, help="seed of the prior samples (0)")
    g.add_argument("--out", metavar="PATH", help="writes PATH.png and PATH.npy; default "
                   "RUN/generated-N-seedS")  # fmt: skip
    g.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)

    sub.add_parser("datasets", help="list the built-in datasets and whether they are installed")
    s = sub.add_parser("runs", help="list run directories and the staging folders of killed runs")
    s.add_argument("dirs", nargs="*", default=["."], metavar="DIR", help="where to look (.)")
    s.add_argument("--stale", action="store_true", help="only the killed runs' staging folders")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    worker = int(os.environ.get("RANK", "0")) > 0  # a process torchrun started, not rank 0
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    level = logging.ERROR if worker else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s")
    formatwarning, warnings.formatwarning = warnings.formatwarning, _format_warning
    try:
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "predict":
            return cmd_predict(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "runs":
            return cmd_runs(args)
        if args.command == "cache":
            return cmd_cache(args)
        if args.command == "generate":
            return cmd_generate(args)
        if args.command == "segment":
            return cmd_segment(args)
        if args.command == "bottleneck":
            return cmd_bottleneck(args)
        return cmd_datasets()
    except AeclustError as exc:
        if several:  # leave now: the others may wait for this process (training.launch)
            from .training.launch import fail

            fail(f"aeclust: error: {exc}", EXIT_USER_ERROR)
        print(f"aeclust: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt as exc:
        command = getattr(exc, "resume_command", None)
        if worker:  # with several processes, process 0 says it
            return 130
        if command:
            print(f"aeclust: interrupted; continue with: {command}", file=sys.stderr)
        else:
            print("aeclust: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except Exception:
        if several:
            from .training.launch import fail

            fail(traceback.format_exc(), 1)
        raise
    finally:
        warnings.formatwarning = formatwarning


def check_before_launch(config, resume: bool) -> None:
    """The mistakes worth naming before N processes start: a missing data path, an
    unusable --out."""
    from .data.registry import unknown_source_message
    from .run import check_no_killed_run
    from .rundir import check_out_dir

    if config.data and not Path(config.data).exists():
        raise AeclustError(unknown_source_message(config.data))
    if config.out:
        check_out_dir(Path(config.out), config.overwrite, [config.data])
        if not resume:
            check_no_killed_run(Path(config.out), config.overwrite)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line for the user, without Python's file name and source line."""
    return f"aeclust: warning: {message}\n"


def refuse_settings_with_resume(args, overrides: dict, noun: str, extra=("config",)) -> None:
    """A resumed job keeps the settings it started with: refuse any flag (``overrides``, and
    the ``extra`` arguments that are set) given beside ``--resume``."""
    given = sorted(set(overrides) | {k for k in extra if getattr(args, k, None)})
    if given:
        flags = ", ".join("--" + k.replace("_", "-") for k in given)
        raise AeclustError(
            f"--resume continues a {noun} with its own settings; drop {flags}, or start a "
            f"new {noun} without --resume."
        )


def cmd_run(args, argv: list[str]) -> int:
    from .config import make_config
    from .run import resume_config, run
    from .training import distributed

    skip = ("command", "config", "quiet", "param", "resume")
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    if hasattr(args, "resume"):
        refuse_settings_with_resume(args, overrides, "run", ("config", "param"))
        config = resume_config(args.resume)
    else:
        params = dict(_param(text) for text in getattr(args, "param", []))
        config = make_config(args.config, **overrides)
        config.model_params.update(params)  # flags win over the file's model_params
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if config.nproc is not None and config.nproc < 1:
        raise AeclustError(f"nproc must be 1 or more; got {config.nproc}.")
    if (config.nproc or 1) > 1 and not distributed.launched():  # the same command, N times
        from .training.launch import launch

        check_before_launch(config, resume=hasattr(args, "resume"))
        return launch(config.nproc, argv)
    if config.nproc not in (None, world):
        raise AeclustError(
            f"nproc={config.nproc}, but torchrun started {world} process(es); give one of them."
        )
    config.nproc = world
    out, metrics = run(config, progress=not args.quiet, resume=hasattr(args, "resume"))
    if not metrics:  # a process of several that is not rank 0: rank 0 reports
        return 0
    print(format_scores(metrics))
    print(f"Run directory: {out}\nReport: {out / 'report.html'}")
    return 0


def format_scores(metrics: dict) -> str:
    keys = ["acc", "nmi", "ari", "purity", "f1_macro", "silhouette", "n_clusters", "noise_fraction"]
    parts = [
        f"{k}={metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
        for k in keys
        if metrics.get(k) is not None
    ]
    text = f"{metrics.get('dataset')}: " + "  ".join(parts)
    ref = metrics.get("without_clustering_loss")
    if ref and ref.get("acc") is not None:
        text += f"\n  without the clustering loss: acc={ref['acc']:.4f}  nmi={ref['nmi']:.4f}"
    return text


def cmd_compare(args) -> int:
    from .compare import compare
    from .config import CompareConfig, make_config

    skip = ("command", "config", "quiet", "param", "encoder_weights")
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    config = make_config(args.config, CompareConfig, **overrides)
    for text in getattr(args, "param", []):  # flags win over the file
        owner, sep, rest = text.partition(":")
        if not sep:
            raise AeclustError(
                f"--param needs MODEL:KEY=VALUE, e.g. resnet:width=0.5; got {text!r}."
            )
        key, value = _param(rest)
        target = config.densenet_params if owner == "densenet" else (
            config.autoencoder_params.setdefault(owner, {}))  # fmt: skip
        target[key] = value
    for text in getattr(args, "encoder_weights", []):
        model, sep, path = text.partition("=")
        if not sep or not path:
            raise AeclustError(f"--encoder-weights needs MODEL=FILE; got {text!r}.")
        config.encoder_weights[model.strip()] = path
    out, rows = compare(config, progress=not args.quiet)
    from .compare_report import markdown_table

    print(markdown_table(rows))
    print(f"Output: {out}\nReport: {out / 'report.html'}")
    return 0


def cmd_segment(args) -> int:
    from .config import SegmentConfig, make_config
    from .segment import segment

    overrides = {k: v for k, v in vars(args).items() if k not in ("command", "config", "quiet")}
    config = make_config(args.config, SegmentConfig, **overrides)
    out, metrics = segment(config, progress=not args.quiet)
    seg = metrics["segments"]
    print(f"{metrics['dataset']}: {metrics['n_images']} images, {seg['min']}-{seg['max']} "
          f"segments per image (mean {seg['mean']:.2f})")  # fmt: skip
    for name in ("loc", "kmeans"):
        if name in metrics:
            scores = "  ".join(f"{k}={v:.4f}" for k, v in metrics[name].items())
            print(f"  {'LOC' if name == 'loc' else 'colour k-means'}: {scores}")
    print(f"Output: {out}\nReport: {out / 'report.html'}")
    return 0


def cmd_bottleneck(args) -> int:
    from .bottleneck import bottleneck
    from .config import BottleneckConfig, make_config
    from .run import resume_config

    skip = ("command", "config", "quiet", "resume")
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    if hasattr(args, "resume"):
        refuse_settings_with_resume(args, overrides, "laboratory")
        config = resume_config(args.resume, BottleneckConfig)
    else:
        config = make_config(args.config, BottleneckConfig, **overrides)
    out, summary = bottleneck(config, progress=not args.quiet, resume=hasattr(args, "resume"))
    verdict = {True: "yes", False: "no", None: "cannot tell"}
    for f in summary["findings"]:
        print(f"finding {f['number']}: {verdict[f['holds']]:>11}  {f['finding']}")
    print(f"Output: {out}\nReport: {out / 'report.html'}")
    return 0


def cmd_predict(args) -> int:
    from .predict import predict_run

    out, metrics = predict_run(args.run, args.data, args.out, args.overwrite, args.skip_bad,
                               stream=bool(args.stream), workers=args.workers or 0)  # fmt: skip
    if metrics:
        print(format_scores(metrics))
    print(f"Assignments: {Path(out) / 'assignments.csv'}")
    return 0


def cmd_cache(args) -> int:
    from .data.cache import cache_folder

    images = cache_folder(args.data, args.out, image_size=args.image_size, color=args.color,
                          skip_bad=args.skip_bad, workers=args.workers, overwrite=args.overwrite,
                          show_progress=not args.quiet)  # fmt: skip
    labels = "unlabelled" if images.y is None else f"{len(images.class_names or [])} classes"
    print(f"Cached {len(images)} images of {'x'.join(map(str, images.X.shape[1:]))} ({labels}) "
          f"in {args.out}; use it with --data {args.out} --stream")  # fmt: skip
    return 0


def cmd_generate(args) -> int:
    from .generate import generate_run

    png, npy = generate_run(args.run, args.n, args.out, args.seed, args.overwrite)
    print(f"Generated {args.n} images: {png} and {npy}")
    return 0


def cmd_runs(args) -> int:
    from .runs import find_runs, format_runs

    finished, stale = find_runs(args.dirs)
    print(format_runs([] if args.stale else finished, stale))
    return 0


def cmd_datasets() -> int:
    from .data import list_datasets

    rows = [("name", "shape (N, C, H, W)", "classes", "available", "description")]
    for d in list_datasets():
        avail = "yes" if d["available"] else f"no: {d['hint']}"
        rows.append(
            (
                d["name"],
                str(tuple(d["shape"])),
                str(d["n_classes"] or "none"),
                avail,
                d["description"],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4])
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
