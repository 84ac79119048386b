"""The main job: data -> autoencoder -> clusters -> scores -> run directory with a report.

Everything is written into a hidden staging directory next to the target, ``.<name>.partial``,
which is renamed to the target only when the run succeeded: an error leaves no half-written
run directory. The staging directory holds the run's settings and its training checkpoints,
so a run that was killed or interrupted (Ctrl-C) continues with ``aeclust run --resume OUT``
and ends with the same files as a run that never stopped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from .config import RunConfig, make_config, write_yaml
from .data import ImageSet
from .data.memory import read_header, write_npy_header
from .errors import ConfigError, check_choice, check_names
from .estimators import GENERATIVE, METHODS, AEClusterer
from .metrics import evaluate, group_scores
from .nn import AUTOENCODERS
from .report import write_report
from .rundir import (
    check_out_dir,
    dir_size,
    load_data,
    staged_dir,
    staging_path,
    versions,
    write_assignments,
)
from .training import distributed

log = logging.getLogger(__name__)


def default_out(config: RunConfig) -> Path:
    source = Path(config.data).stem if config.data else config.dataset
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    clusterer = "" if config.model in METHODS else f"-{config.clusterer}"
    return Path("runs") / f"{source}-{config.model}{clusterer}-{stamp}"


TRAINING = (
    "latent_dim",
    "epochs",
    "batch_size",
    "lr",
    "optimizer",
    "precision",
    "loss",
    "lr_schedule",
    "val_fraction",
    "patience",
)


def default_latent_dim(autoencoder: str) -> int:
    """The code size an autoencoder uses when none is given (its config's default)."""
    config_cls = AUTOENCODERS[autoencoder][0]
    return next(f.default for f in dataclasses.fields(config_cls) if f.name == "latent_dim")


def make_estimator(config: RunConfig, n_clusters: int, **kwargs):
    """The estimator of ``config.model``: a joint method by name, else AEClusterer with that
    autoencoder. Settings left as None take the estimator's default, and are then filled
    into ``config`` so that config.yaml is fully resolved."""
    check_choice("model", config.model,
                 [*sorted(AUTOENCODERS), *sorted(METHODS), *sorted(GENERATIVE)])  # fmt: skip
    common = {k: getattr(config, k) for k in TRAINING if getattr(config, k) is not None}
    common.update(
        n_clusters=None if n_clusters == "auto" else n_clusters,
        autoencoder_params=config.autoencoder_params or None,
        optimizer_params=config.optimizer_params or None,
        device=config.device,
        random_state=config.seed,
        **kwargs,
    )
    if config.model in METHODS or config.model in GENERATIVE:
        unused = {  # setting: the values that mean "not used"
            "encoder_weights": (None,), "augment": (None, "none"), "clusterer": ("gmm",),
            "reducer": ("umap", None), "clusterer_params": ({},), "reducer_params": ({},),
        }  # fmt: skip
        if config.model in GENERATIVE:  # these cluster their codes like the autoencoders
            for key in ("clusterer", "reducer", "clusterer_params", "reducer_params"):
                common[key] = getattr(config, key) or None
            unused = {k: v for k, v in unused.items() if k not in common}
        for key, off in unused.items():
            if getattr(config, key) not in off:
                why = ("which clusters inside the network" if config.model in METHODS
                       else "which trains on the images as given")  # fmt: skip
                raise ConfigError(
                    f"{key} applies to the autoencoder models, not to {config.model!r}, "
                    f"{why}; drop it."
                )
        cls = METHODS.get(config.model) or GENERATIVE[config.model]
        accepted = cls().get_params()
        for key in [k for k in common if k not in accepted]:  # e.g. the shallow ACRBM's loss
            if key in TRAINING or common[key] is not None:
                raise ConfigError(f"{key} does not apply to {config.model!r}; drop it.")
            del common[key]
        both = sorted(set(config.model_params) & set(common))
        if both:
            raise ConfigError(
                f"{both} given twice, as a run setting and in model_params (--param); "
                "keep one, e.g. --epochs rather than --param epochs=..."
            )
        own = sorted(set(accepted) - set(common) - {"verbose", "checkpoint"})
        check_names(f"model {config.model!r} (model_params / --param)", config.model_params, own)
        est = cls(**common, **config.model_params)
    else:
        if common.get("latent_dim") is None:  # resolved, so config.yaml says what was used
            common["latent_dim"] = default_latent_dim(config.model)
        if config.model_params:
            raise ConfigError(
                f"model_params {sorted(config.model_params)} apply to the joint methods "
                f"({', '.join(sorted(METHODS))}), not to the autoencoder {config.model!r}; use "
                "autoencoder_params for the network, clusterer_params for the clusterer."
            )
        est = AEClusterer(
            autoencoder=config.model,
            clusterer=config.clusterer,
            reducer=config.reducer,
            clusterer_params=config.clusterer_params or None,
            reducer_params=config.reducer_params or None,
            encoder_weights=config.encoder_weights,
            augment=config.augment,
            **common,
        )
    for key in TRAINING:
        setattr(config, key, getattr(est, key, None))
    return est


def describe_clusterer(config: RunConfig) -> str:
    if config.model in METHODS:
        return f"{config.model} (joint)"
    return config.clusterer + (f" after {config.reducer}" if config.reducer else "")


def run(config: RunConfig, progress: bool = True, resume: bool = False) -> tuple[Path, dict]:
    """Run the pipeline of ``config``; returns the run directory and the metrics.

    ``resume``: continue the killed run headed for ``config.out`` from the checkpoints in
    its staging directory (``config`` is then that run's, see :func:`resume_config`).
    """
    distributed.setup(config.device)
    out, problem = None, None
    if distributed.is_main():  # one process checks and decides; the others follow it
        out = Path(config.out) if config.out else default_out(config)
        try:
            check_out_dir(out, config.overwrite, [config.data])
            if not resume:
                check_no_killed_run(out, config.overwrite)
        except ConfigError as exc:
            problem = exc
    out, problem = distributed.broadcast((out, problem))
    if problem is not None:
        raise problem
    if config.k == "auto" and config.model not in GENERATIVE:
        raise ConfigError(
            f"k=auto takes K from HDBSCAN, which the generative models do "
            f"({', '.join(GENERATIVE)}); give --k a number for {config.model!r}, or "
            "--clusterer hdbscan, which finds K itself."
        )
    if isinstance(config.k, str) and config.k != "auto":
        raise ConfigError(f"k must be a whole number or auto; got {config.k!r}.")
    data = load_data(config)
    k = config.k
    if k is None:
        k = len(np.unique(data.y)) if data.y is not None else 10
        log.info(
            "k not given: using %d (%s)",
            k,
            "the number of classes" if data.y is not None else "default",
        )
    config.k, config.out = k, str(out)
    try:
        if not distributed.is_main():  # trains its share, writes nothing
            return out, _run_in(staging_path(out), config, data, k, False, resume)
        with staged_dir(out, resumable=True) as stage:
            return out, _run_in(stage, config, data, k, progress, resume)
    except KeyboardInterrupt as exc:  # the staging directory stays, to be resumed
        exc.resume_command = f"aeclust run --resume {out}"
        raise


def _run_in(stage: Path, config: RunConfig, data: ImageSet, k: int, progress, resume) -> dict:
    """Train, score and write the outputs of ``config`` into ``stage``; returns the metrics.
    With several processes, all train and only rank 0 scores and writes."""
    checkpoints = stage / "checkpoints"
    est = make_estimator(config, k, verbose=progress, checkpoint=str(checkpoints))
    main = distributed.is_main()
    if main:
        write_yaml(config, stage / "config.yaml")
    est.fit(data.X, data.y, resume=checkpoints if resume and checkpoints.is_dir() else None)
    t0 = time.perf_counter()
    Z = encode_all(est, data, stage / "embeddings.npy")
    if not main:
        if has_reference(est, config):  # its training needs every rank
            fit_reference(est, data, {}, False, checkpoints / "reference")
        return {}
    metrics = evaluate(data.y, est.labels_, Z, random_state=config.seed)
    metrics.update(
        dataset=data.name,
        n_samples=len(data),
        model=config.model,
        clusterer=describe_clusterer(config),
        date=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        timings={**est.timings_, "score": time.perf_counter() - t0},
        processes=distributed.world_size(),
        versions=versions(),
    )
    if hasattr(est, "cluster_info_"):
        metrics["clustering"] = est.cluster_info_
    if getattr(est, "confidence_", None) is not None:  # the ACRBM's mean max h (Fig. 9)
        metrics["confidence"] = est.confidence_
    if config.model in GENERATIVE:  # every latent group, in the thesis' format
        metrics["groups"] = group_scores(data.y, est.group_labels_, est.group_silhouette_)
        metrics["rollbacks"] = est.rollbacks_
        metrics["divergences"] = [
            {"epoch": h["epoch"], "rollbacks": h["rollbacks"], "reasons": h["diverged"],
             "lr_scale": h["lr_scale"]}
            for h in est.history_ if "diverged" in h
        ]  # fmt: skip
    est.set_params(checkpoint=None)  # the staging path dies; a refit writes nowhere
    reference = None
    if has_reference(est, config):
        reference = fit_reference(est, data, metrics, progress, checkpoints / "reference")
    write_outputs(stage, data, est, Z, metrics, config.seed, reference)
    return metrics


def encode_all(est, data: ImageSet, path: Path):
    """The codes of all images on rank 0 (None on the other ranks): those ``fit`` computed
    (``est.embedding_``) where the estimator keeps them, else ``est.transform``. Under
    several processes an estimator that encodes shards (:class:`AEClusterer`) has every
    rank write the codes of its own rows into ``path`` (an ``.npy`` that rank 0 sizes
    first), which rank 0 then reads."""
    if not (distributed.active() and hasattr(est, "transform_shard")):
        if not distributed.is_main():
            return None
        return est.embedding_ if hasattr(est, "embedding_") else est.transform(data.X)
    codes, start = est.embedding_, est.shard_[0]  # the codes fit clustered, its first row
    shape = (len(data), *codes.shape[1:])
    if distributed.is_main():
        with open(path, "wb") as f:
            write_npy_header(f, shape, codes.dtype)
            f.truncate(f.tell() + int(np.prod(shape)) * codes.dtype.itemsize)
    distributed.broadcast(None)  # the file exists, at its full size
    with open(path, "r+b") as f:
        read_header(f)
        f.seek(f.tell() + start * int(np.prod(shape[1:])) * codes.dtype.itemsize)
        f.write(np.ascontiguousarray(codes).tobytes())
    distributed.broadcast(None)  # every rank has written its rows
    return np.load(path) if distributed.is_main() else None


def has_reference(est, config: RunConfig) -> bool:
    """Whether the run also trains ``est``'s network without its clustering loss."""
    return config.model in METHODS and config.compare and hasattr(est, "without_clustering_loss")


def check_no_killed_run(out: Path, overwrite: bool, command: str = "run") -> None:
    """Refuse to start a run for ``out`` over the staging directory of a killed one (its
    training would be lost) unless ``overwrite`` says to discard it; ``command`` is the
    ``aeclust`` command that resumes it."""
    stage = staging_path(out)
    if not stage.is_dir():
        return
    if not overwrite:
        raise ConfigError(
            f"A run for '{out}' was killed or interrupted and left '{stage}' "
            f"({dir_size(stage) / 1e6:.1f} MB). Continue it with `aeclust {command} --resume "
            f"{out}`, "
            "or pass --overwrite to discard it and start afresh."
        )
    log.info("discarding the killed run's staging directory %s (--overwrite)", stage)
    shutil.rmtree(stage)


def resume_config(out: str | Path, cls: type = RunConfig):
    """The settings (a ``cls``) of the killed run headed for ``out``, from its staging
    directory."""
    out = Path(out)
    stage = staging_path(out)
    settings = stage / "config.yaml"
    if not settings.is_file():
        found = "" if not out.is_dir() else f" ('{out}' exists: that run finished)"
        raise ConfigError(
            f"No killed run of '{out}' to resume: '{settings}' does not exist{found}. "
            "Give the --out of the killed run (`aeclust runs --stale` lists them)."
        )
    return make_config(settings, cls)


def fit_reference(est, data: ImageSet, metrics: dict, progress: bool, checkpoint: Path):
    """Train ``est``'s network without its clustering loss (same seed and settings), then
    k-means; adds its scores to ``metrics``. Returns its (codes, clusters)."""
    log.info("training the same network without the clustering loss, for comparison")
    t0 = time.perf_counter()
    ref = est.without_clustering_loss().set_params(verbose=progress, checkpoint=str(checkpoint))
    ref.fit(data.X, resume=checkpoint if checkpoint.is_dir() else None)
    ref.set_params(checkpoint=None)
    if not distributed.is_main():
        return None
    Z = ref.transform(data.X)
    metrics["timings"]["reference"] = time.perf_counter() - t0
    metrics["without_clustering_loss"] = {
        "model": f"{ref.network_label()} + k-means, {ref.epochs} epoch{'s' * (ref.epochs != 1)} "
        "of reconstruction loss",
        **evaluate(data.y, ref.labels_),
    }
    return Z, ref.labels_


def write_outputs(
    stage: Path, data: ImageSet, est: AEClusterer, Z, metrics: dict, seed: int, reference=None
):
    from . import figures  # matplotlib is slow to import; only runs need it

    est.save(stage)
    np.save(stage / "embeddings.npy", Z)
    (stage / "history.json").write_text(json.dumps(est.history_, indent=1))
    write_assignments(stage / "assignments.csv", est.labels_, data)
    t0 = time.perf_counter()
    figures.run_figures(stage, data, est, Z, seed, reference)
    metrics["timings"]["figures"] = time.perf_counter() - t0
    (stage / "metrics.json").write_text(json.dumps(metrics, indent=1))
    write_report(stage)
