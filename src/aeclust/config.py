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
    # model
    model: str = (
        "conv"  # autoencoder (conv | mlp | dcae) or joint method (dcae-kmeans | dec | idec | dcec)
    )
    # training; None = the default of the model's estimator (AEClusterer: 8 epochs of
    # batch 64, lr 1e-3, MSE; dcae-kmeans: 50 epochs of batch 100, BCE, as in the paper)
    latent_dim: int | None = None
    loss: str | None = None  # mse | bce
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    lr_schedule: str | None = None  # constant | cosine | step
    val_fraction: float | None = None
    patience: int | None = None
    # clustering
    clusterer: str = "gmm"  # kmeans | minibatch-kmeans | gmm | agglomerative | hdbscan
    k: int | None = None  # number of clusters; None = number of classes if labelled, else 10
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
    out: str | None = None  # run directory; default runs/<dataset>-<model>-<clusterer>-<time>
    overwrite: bool = False  # replace an existing non-empty run directory

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


FIELDS = {f.name for f in dataclasses.fields(RunConfig)}


def check_keys(values: dict, source: str) -> None:
    """Raise :class:`ConfigError` naming the first key that RunConfig does not have."""
    check_names(source, values, sorted(FIELDS), noun="setting")


def read_yaml(path: str | os.PathLike) -> dict:
    """The settings in a YAML file, checked against :class:`RunConfig`."""
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
    check_keys(values, str(path))
    return values


def make_config(yaml_path=None, **overrides) -> RunConfig:
    """YAML values, then ``overrides`` that are not None (CLI flags win over the file)."""
    values = read_yaml(yaml_path) if yaml_path else {}
    check_keys(overrides, "the arguments")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(values.get("reducer"), str) and values["reducer"].lower() in ("none", ""):
        values["reducer"] = None
    for key in ("autoencoder_params", "model_params", "clusterer_params", "reducer_params"):
        if values.get(key) is None:
            values[key] = {}
        elif not isinstance(values[key], dict):
            raise ConfigError(f"'{key}' must be a mapping, e.g. {{n_init: 10}}.")
    return RunConfig(**values)


def write_yaml(config: RunConfig, path: str | os.PathLike) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
