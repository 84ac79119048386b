"""The settings of one ``aeclust run``: a dataclass that YAML files and CLI flags fill in."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import ConfigError, check_names


@dataclass
class RunConfig:
    # data: a built-in dataset name, or a path (folder, .npy/.npz, IDX) in `data`
    dataset: str = "mnist5k"
    data: str | None = None  # a path; wins over `dataset`
    split: str | None = None  # fashion-mnist: all | train | test
    image_size: int | list[int] | None = None  # resize every image to this (H, W)
    color: str = "auto"  # auto | gray | rgb
    skip_bad: bool = False  # skip unreadable image files with a warning
    stream: bool = False  # read the images from disk batch by batch (larger than memory)
    workers: int = 0  # with stream: processes that read the next batches ahead
    # model
    model: str = (
        "conv"  # autoencoder (conv | mlp | dcae | fc | conv-pool | conv-nopool | alexnet |
        # resnet) or joint method (dcae-kmeans | dec | idec | dcec)
    )
    # training; None = the default of the model's estimator (AEClusterer: 8 epochs of
    # batch 64, lr 1e-3, MSE; dcae-kmeans: 50 epochs of batch 100, BCE, as in the paper)
    latent_dim: int | None = None
    loss: str | None = None  # mse | bce
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None  # constant | cosine | step
    optimizer: str | None = None  # adam (the default) | adamw | rmsprop | sgd
    optimizer_params: dict = field(default_factory=dict)  # e.g. {momentum: 0.9} for sgd
    precision: str | None = None  # fp32 (the default) | bf16 (autocast; CPUs with AMX/AVX512-BF16)
    # autoencoder models: random shifts/rotations of the training images; None = off
    # (AEClusterer's default); "auto" (on for images of 8x8 pixels or more), "affine",
    # "none" or a dict of RandomAffine's shift, rotation, hflip, padding
    augment: str | dict | None = None
    val_fraction: float | None = None
    patience: int | None = None
    encoder_weights: str | None = None  # a local state dict for the encoder (e.g. alexnet)
    # clustering
    clusterer: str = "gmm"  # kmeans | minibatch-kmeans | gmm | agglomerative | hdbscan
    # number of clusters; None = number of classes if labelled, else 10; "auto" = the number
    # HDBSCAN finds (generative models, Morais section 4.4)
    k: int | str | None = None
    reducer: str | None = "umap"  # umap | none
    autoencoder_params: dict = field(default_factory=dict)
    model_params: dict = field(default_factory=dict)  # of a joint method, e.g. {lam: 0.2}
    clusterer_params: dict = field(default_factory=dict)
    reducer_params: dict = field(default_factory=dict)
    # joint methods: also train the network on reconstruction alone and draw both maps
    compare: bool = True
    # run
    seed: int = 0
    device: str = "auto"
    nproc: int | None = None  # training processes on this machine (torchrun); None = as started
    out: str | None = None  # run directory; default runs/<dataset>-<model>-<clusterer>-<time>
    overwrite: bool = False  # replace an existing non-empty run directory

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class CompareConfig:
    """The settings of one ``aeclust compare`` (Liu & Zhang's Table 1 on any labelled data)."""

    # data, as for `aeclust run`
    dataset: str = "mnist5k"
    data: str | None = None
    split: str | None = None
    image_size: int | list[int] | None = None
    color: str = "auto"
    skip_bad: bool = False
    stream: bool = False
    workers: int = 0
    classes: list | str | None = None  # keep only these classes (names or ids): [0, 6] or "0,6"
    max_samples: int | None = None  # stratified sample of at most this many images
    # what to compare
    models: list | str = field(default_factory=lambda: list(PAPER_MODELS))  # or "fc,resnet"
    baselines: list | str = field(default_factory=lambda: ["kmeans", "densenet"])
    # protocol
    cv: int = 5  # folds
    group_folds: bool = True  # keep each group (patient) on one side, when groups are known
    cluster_on: str = "test"  # fit k-means on the held-out codes (test) or training codes
    k: int | None = None  # clusters; None = number of classes
    pos_label: str | int | None = None  # positive class of the binary F1; None = the second
    # autoencoders (paper: 70 epochs, Adam 1e-3, batch 1,000; AlexNet 300, ResNet 160)
    epochs: int = 70
    batch_size: int | None = None  # None = the paper's, capped to give >= 20 steps/epoch
    lr: float = 1e-3
    latent_dim: int | None = None  # None = each architecture's own (paper) size
    loss: str = "mse"  # the paper's L2 reconstruction loss
    augment: str | dict | None = "none"  # the paper trains on the tiles as given; or auto
    autoencoder_params: dict = field(default_factory=dict)  # {model: {width: 0.5}}
    encoder_weights: dict = field(default_factory=dict)  # {model: path of a state dict}
    # supervised DenseNet (paper: Adam 1e-4, 30 epochs)
    densenet_epochs: int = 30
    densenet_lr: float = 1e-4
    densenet_batch_size: int = 64
    densenet_params: dict = field(default_factory=dict)  # e.g. {growth_rate: 12}
    tsne_points: int = 2000  # held-out points per t-SNE map
    # run
    seed: int = 0
    device: str = "auto"
    out: str | None = None  # default runs/compare-<data>-<time>
    overwrite: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class SegmentConfig:
    """The settings of one ``aeclust segment`` (LOC, one-stage autoencoders section 2.2)."""

    # data, as for `aeclust run`; `masks` is a folder of true masks (same file names)
    dataset: str = "textured-shapes"
    data: str | None = None
    masks: str | None = None
    split: str | None = None
    image_size: int | list[int] | None = None
    color: str = "auto"
    skip_bad: bool = False
    # LOC (Table 4: rho 0.5, Adam 1e-3, 50 epochs, batch 64)
    rho: float = 0.5
    epochs: int = 50
    batch_size: int = 64
    lr: float = 1e-3
    width: int = 16
    observer_size: int = 3
    target_window: int = 7  # local mean and std over this window; 0 = the pixels
    polarity: str = "border"  # or none: the median rule as the paper writes it
    # the colour k-means baseline (Table 2's K-means row), scored beside LOC
    baseline: bool = True
    baseline_clusters: int = 2
    # run
    seed: int = 0
    device: str = "auto"
    out: str | None = None  # default runs/segment-<data>-<time>
    overwrite: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class BottleneckConfig:
    """The settings of one ``aeclust bottleneck`` ("Walking the tightrope": a grid of CAEs
    that differ only in the shape of their bottleneck)."""

    # data, as for `aeclust run`; the test images come from `test_data` / `test_split` or
    # else are a seeded random `test_fraction` of the data (the paper: 20%)
    dataset: str = "mnist5k"
    data: str | None = None
    split: str | None = None
    image_size: int | list[int] | None = None
    color: str = "auto"
    skip_bad: bool = False
    test_data: str | None = None  # a path or dataset name for the test images
    test_split: str | None = None  # a split of the same dataset, e.g. test
    test_fraction: float = 0.2
    max_train: int | None = None  # a seeded sample of N training images (CelebA: 10,000)
    max_test: int | None = None  # and of M test images (2,000)
    # the grid (eqs. 5 and 6)
    sizes: list | str = field(default_factory=lambda: [1, 2, 3])
    compressions: list | str = field(default_factory=lambda: ["1/64", "1/16", "1/4", "1"])
    levels: int = 5
    blocks: int = 2
    # training (the paper: 1,000 epochs, MSE; batch size and optimiser unstated)
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    eval_train: int = 2000  # fixed training images whose MSE is measured every epoch
    # analysis
    probe_folds: int = 5
    probe_weight_decay: float = 0.01  # the paper's weight decay of its linear models
    cluster: bool = True  # k-means and UMAP + GMM on the training codes (needs labels to score)
    k: int | None = None  # clusters; None = number of classes, else 10
    svcca_keep: float = 0.99
    svcca_images: int = 2000  # images per SVCCA comparison (the first of each set)
    # run
    seed: int = 0
    device: str = "auto"
    out: str | None = None  # default runs/bottleneck-<data>-<time>
    overwrite: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PAPER_MODELS = ("fc", "conv-pool", "conv-nopool", "alexnet", "resnet")
FIELDS = {f.name for f in dataclasses.fields(RunConfig)}


def check_keys(values: dict, source: str, cls: type = RunConfig) -> None:
    """Raise :class:`ConfigError` naming the first key that ``cls`` does not have."""
    fields = sorted(f.name for f in dataclasses.fields(cls))
    check_names(source, values, fields, noun="setting")


def read_yaml(path: str | os.PathLike, cls: type = RunConfig) -> dict:
    """The settings in a YAML file, checked against the fields of ``cls``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"The config file '{path}' does not exist.")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"'{path}' is not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"'{path}' must hold a mapping of settings (key: value).")
    values = {str(k).replace("-", "_"): v for k, v in values.items()}
    check_keys(values, str(path), cls)
    return values


def make_config(yaml_path=None, cls: type = RunConfig, **overrides):
    """A ``cls`` (RunConfig or CompareConfig) from YAML values, then ``overrides`` that are
    not None (CLI flags win over the file)."""
    values = read_yaml(yaml_path, cls) if yaml_path else {}
    check_keys(overrides, "the arguments", cls)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(values.get("reducer"), str) and values["reducer"].lower() in ("none", ""):
        values["reducer"] = None
    for f in dataclasses.fields(cls):
        if f.default_factory is dict and f.name in values:  # the mapping settings
            if values[f.name] is None:
                values[f.name] = {}
            elif not isinstance(values[f.name], dict):
                raise ConfigError(f"'{f.name}' must be a mapping, e.g. {{n_init: 10}}.")
        elif f.name in values:
            values[f.name] = coerce(f.name, values[f.name], f.type)
    return cls(**values)


TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
KIND_NAMES = {
    "int": "a whole number", "float": "a number", "bool": "true or false", "str": "a string",
    "list": "a list", "dict": "a mapping", "None": "empty",
}  # fmt: skip


def coerce(name: str, value, annotation: str):
    """``value`` as the type ``annotation`` (a field's type, e.g. "int | None") allows, or
    raise :class:`ConfigError`. YAML reads ``1e-3`` as a string, so numbers written as
    strings are accepted, as are "true"/"false"; 2.0 becomes 2 where a whole number is needed.
    """
    kinds = [k.strip().split("[")[0] for k in annotation.split("|")]
    for kind in kinds:
        ok, converted = _convert(kind, value)
        if ok:
            return converted
    wanted = " or ".join(KIND_NAMES.get(k, k) for k in kinds)
    raise ConfigError(f"The setting '{name}' must be {wanted}; got {value!r}.")


def _convert(kind: str, value) -> tuple[bool, object]:
    """(True, ``value`` as ``kind``), or (False, None) when it is not one."""
    if kind == "None":
        return value is None, None
    if kind == "bool":
        text = str(value).strip().lower()
        return text in TRUE + FALSE, text in TRUE
    if kind == "str" and isinstance(value, str | os.PathLike):
        return True, str(value)
    if kind == "list" and isinstance(value, list | tuple):
        return True, list(value)
    if kind == "dict" and isinstance(value, dict):
        return True, value
    if kind in ("int", "float") and isinstance(value, int | float | str):
        if isinstance(value, bool):  # YAML's true is not the number 1
            return False, None
        try:
            number = float(value)
        except ValueError:
            return False, None
        if kind == "float":
            return True, number
        if number.is_integer():
            return True, int(number)
    return False, None


def write_yaml(config, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
