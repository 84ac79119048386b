"""Model files: ``model.safetensors`` (every array) and ``model.json`` (the rest), no pickle.

A model file holds any number of named modules, each as (registry name, config, weights):
``model.json``'s ``"modules"`` maps a name to ``{"registry": ..., "config": ...}`` (see
:func:`aeclust.nn.module_spec`), and the module's weights are the tensors ``<name>.<key>``.
Beside them: the estimator's class and parameters, the image shape, the history, and what
the estimator adds (cluster centres, the clusterer's state, class labels).

Format version 2 introduced ``"modules"``; version 1 files (one autoencoder under
``"autoencoder"``, or DenseNet's config under ``"network"``) are read as the same thing.
"""

from __future__ import annotations

import json
import math
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from sklearn.utils.validation import check_is_fitted

from ..errors import ConfigError, ModelFileError
from ..nn import build_module, module_spec
from ..training import resolve_device
from ..weights import write_safetensors

FORMAT = "aeclust-model"
FORMAT_VERSION = 2
WEIGHTS_FILE, META_FILE = "model.safetensors", "model.json"
ESTIMATORS: dict[str, type] = {}  # class name -> class, for load()


def aeclust_version() -> str:
    try:
        return version("aeclust")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


class ModelFileMixin:
    """``save(path)`` and ``load(path)`` through named modules, for every estimator.

    A subclass names its trained modules in ``_named_modules()`` and takes them back in
    ``_restore_modules(modules)``; ``_extra_state() -> (meta, arrays)`` and
    ``_restore_extra(meta, arrays)`` carry the rest. Subclasses are registered by class
    name, so :meth:`load` on any of them (or :func:`aeclust.load`) finds the right class.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        ESTIMATORS[cls.__name__] = cls

    def _named_modules(self) -> dict[str, torch.nn.Module]:
        raise NotImplementedError

    def _restore_modules(self, modules: dict[str, torch.nn.Module]) -> None:
        raise NotImplementedError

    def _extra_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        return {}, {}

    def _restore_extra(self, meta: dict, arrays: dict[str, np.ndarray]) -> None:
        pass

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``model.safetensors`` (all arrays) and ``model.json`` (the rest) into ``path``.

        ``path`` is a directory, created if needed. Loading runs no pickled code.
        """
        check_is_fitted(self)
        tensors, specs = {}, {}
        for name, module in self._named_modules().items():
            specs[name] = module_spec(module)
            for k, v in module.state_dict().items():
                tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
        extra_meta, arrays = self._extra_state()
        for k, v in arrays.items():
            tensors[k] = torch.from_numpy(np.ascontiguousarray(v))
        meta = {
            "estimator": type(self).__name__,
            "params": jsonable(self.get_params()),
            "image_shape": list(self.image_shape_),
            "modules": specs,
            "history": jsonable(self.history_),
            **extra_meta,
        }
        return write_model_files(path, tensors, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", networks_only: bool = False):
        """Load an estimator written by :meth:`save` (any format version); it predicts and
        transforms as the saved one did. ``networks_only`` restores the networks alone,
        not the clusterer (whose UMAP is refitted on loading): enough to encode,
        reconstruct or generate, and quick."""
        meta, tensors = read_model_files(path)
        name = meta.get("estimator")
        est_cls = ESTIMATORS.get(name)
        if est_cls is None or not issubclass(est_cls, cls):
            raise ModelFileError(f"'{path}' holds a {name} model, not a {cls.__name__}.")
        try:
            known = est_cls().get_params()
            params = {k: v for k, v in meta["params"].items() if k in known}
            est = est_cls(**{**params, "device": device})
            est.image_shape_ = tuple(meta["image_shape"])
            est.n_features_in_ = math.prod(est.image_shape_)
            est.device_ = resolve_device(device)
            modules = {}
            for mod_name, spec in meta["modules"].items():
                module = build_module(spec["registry"], spec["config"])
                prefix = mod_name + "."
                module.load_state_dict(
                    {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                )
                modules[mod_name] = module.to(est.device_).eval()
            est._restore_modules(modules)
            est.history_ = meta.get("history", [])
            if not networks_only:
                est._restore_extra(meta, {k: v.numpy() for k, v in tensors.items()})
        except (KeyError, RuntimeError, TypeError, ValueError, ConfigError) as exc:
            raise inconsistent_model_files(path, exc) from exc
        return est


def write_model_files(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict
) -> Path:
    """Write ``tensors`` to ``model.safetensors`` and ``meta`` to ``model.json`` in ``path``.

    ``path`` is a directory, created if needed; ``meta`` gets the format header first. Each
    file is written to a temporary name and renamed, so neither is ever half-written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"'{path}' is a file; save() needs a directory path.")
    path.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aeclust_version": aeclust_version(),
        **meta,
    }
    tmp_m = path / (META_FILE + ".tmp")
    tmp_m.write_text(json.dumps(meta, indent=1))
    write_safetensors(tensors, path / WEIGHTS_FILE, metadata={"format": FORMAT})
    os.replace(tmp_m, path / META_FILE)
    return path


def inconsistent_model_files(path: str | os.PathLike, exc: Exception) -> ModelFileError:
    """The error for model files that read well but do not fit together (``exc`` says how)."""
    return ModelFileError(
        f"The model files in '{path}' are inconsistent ({exc}); they were not written "
        "by this version of aeclust or were modified. Re-run the training."
    )


def read_model_files(path: str | os.PathLike) -> tuple[dict, dict[str, torch.Tensor]]:
    """Read and check ``model.json`` and ``model.safetensors`` in directory ``path``; the
    header comes in the current format's shape whatever version wrote it."""
    path = Path(path)
    if path.is_file() and path.name in (WEIGHTS_FILE, META_FILE):
        path = path.parent
    weights, meta_file = path / WEIGHTS_FILE, path / META_FILE
    for f in (weights, meta_file):
        if not f.is_file():
            raise ModelFileError(
                f"No {f.name} in '{path}'. Give the directory that save() or `aeclust run` wrote."
            )
    try:
        meta = json.loads(meta_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(
            f"'{meta_file}' is not valid JSON ({exc}); the file is truncated or not ours."
        ) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"'{meta_file}' was not written by aeclust (no '{FORMAT}' marker).")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"'{meta_file}' has format version {meta['format_version']}, newer than this "
            f"aeclust understands ({FORMAT_VERSION}); upgrade aeclust."
        )
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFileError(
            f"'{weights}' cannot be read ({exc}); the file is truncated or not a safetensors "
            "file written by aeclust. Re-run the training or restore the file."
        ) from exc
    return upgrade(meta), tensors


def upgrade(meta: dict) -> dict:
    """A version 1 header in the version 2 shape: its one network as a named module."""
    if meta.get("format_version", 1) >= 2 or "modules" in meta:
        return meta
    meta = dict(meta)
    if isinstance(meta.get("autoencoder"), dict):  # the deep clusterers
        ae = meta.pop("autoencoder")
        meta["modules"] = {"autoencoder": {"registry": ae.get("name"), "config": ae.get("config")}}
    elif isinstance(meta.get("network"), dict):  # DenseNetClassifier
        meta["modules"] = {"network": {"registry": "densenet", "config": meta.pop("network")}}
    return meta


def jsonable(obj):
    """Convert numpy scalars/arrays and tuples so json.dumps accepts them."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
