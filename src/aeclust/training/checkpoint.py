"""Training state on disk: one safetensors file per training phase, no pickle.

A state (:meth:`Trainer.state_dict`: nested dicts and lists of tensors, numpy arrays,
numbers and strings) is split into its tensors, stored as safetensors, and the rest, stored
as JSON in the same file's header, so one ``os.replace`` makes a new checkpoint appear
whole: a run killed at any moment leaves the previous checkpoint or the new one, never a
mixture. The header also keeps the run's identity (its settings and a hash of its data),
and a checkpoint is refused for a run whose identity differs, with the difference named.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

from ..data.mapped import chunks
from ..errors import ConfigError, ModelFileError
from ..weights import write_safetensors
from . import distributed
from .trainer import Callback, Trainer

FORMAT = "aeclust-checkpoint"


def flatten(obj, tensors: dict, path: str = "s"):
    """A JSON-able copy of ``obj`` in which every tensor (and numpy array) is moved to
    ``tensors`` under a path-like key and replaced by a reference to it."""
    if torch.is_tensor(obj):
        tensors[path] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": path}
    if isinstance(obj, np.ndarray):
        tensors[path] = torch.from_numpy(np.ascontiguousarray(obj).copy())
        return {"__array__": path}
    if isinstance(obj, dict):
        items = [(k, flatten(v, tensors, f"{path}.{k}")) for k, v in obj.items()]
        if all(isinstance(k, str) for k, _ in items):
            return dict(items)
        return {"__items__": [[k, v] for k, v in items]}  # e.g. an optimizer's int keys
    if isinstance(obj, tuple):
        return {"__tuple__": [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [flatten(v, tensors, f"{path}.{i}") for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def unflatten(obj, tensors: dict):
    """The inverse of :func:`flatten`."""
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__array__" in obj:
        return tensors[obj["__array__"]].numpy()
    if "__tuple__" in obj:
        return tuple(unflatten(v, tensors) for v in obj["__tuple__"])
    if "__items__" in obj:
        return {k: unflatten(v, tensors) for k, v in obj["__items__"]}
    return {k: unflatten(v, tensors) for k, v in obj.items()}


def write_state(path: str | os.PathLike, state: dict, identity: dict | None = None) -> None:
    """Write ``state`` atomically to ``path`` (safetensors, JSON header)."""
    tensors: dict = {}
    tree = flatten(state, tensors)
    meta = {"format": FORMAT, "identity": json.dumps(identity or {}, default=repr),
            "state": json.dumps(tree)}  # fmt: skip
    write_safetensors(tensors, path, metadata=meta)


def read_state(path: str | os.PathLike, identity: dict | None = None) -> dict:
    """The state in ``path``; with ``identity``, raise a ConfigError unless the file was
    written by a run with the same identity, naming what differs."""
    meta, tensors = _read(path, identity, with_tensors=True)
    return unflatten(json.loads(meta["state"]), tensors)


def _read(path, identity: dict | None, with_tensors: bool) -> tuple[dict, dict]:
    """The header (and the tensors) of a checkpoint, its identity checked."""
    meta = read_header(path)
    if identity is not None:
        check_identity(json.loads(meta["identity"]), identity, path)
    tensors = {}
    if with_tensors:
        with safe_open(str(path), framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    return meta, tensors


def read_header(path) -> dict:
    """The header of a checkpoint (format, identity and the state's JSON, without reading
    a tensor); a ModelFileError for a file that is unreadable or not one."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ModelFileError(
            f"The checkpoint '{path}' cannot be read ({exc}); remove it to start afresh."
        ) from exc
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"'{path}' is not an aeclust checkpoint.")
    return meta


def is_checkpoint(path) -> bool:
    try:
        read_header(path)
    except ModelFileError:
        return False
    return True


def check_identity(saved: dict, current: dict, path) -> None:
    """Raise unless the identity of a checkpoint equals the current run's."""
    current = json.loads(json.dumps(current, default=repr))  # as saved: tuples as lists
    diffs = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{key}.{k}: {a.get(k)!r} there, {b.get(k)!r} here"
                      for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]  # fmt: skip
        elif a != b:
            diffs.append(f"{key}: {a!r} there, {b!r} here")
    if diffs:
        raise ConfigError(
            f"The checkpoint '{path}' belongs to another run: " + "; ".join(diffs) + ". Resume "
            "with the data and settings of that run, or start a new one."
        )


def data_identity(X) -> dict:
    """Shape, dtype and SHA-256 of the images as training sees them (float32), read in
    chunks, so that a memory map stays on disk and hashes as the same images in memory."""
    if hasattr(X, "identity"):  # images on disk: a folder's files, a .npy's stored bytes
        return X.identity()
    if torch.is_tensor(X):
        X = X.numpy()
    elif not hasattr(X, "chunks"):  # a MappedImages reads float32 rows itself
        X = np.asarray(X)
    h = hashlib.sha256()
    for _, rows in chunks(X):
        h.update(np.ascontiguousarray(rows).tobytes())
    return {"shape": list(X.shape), "dtype": str(X.dtype), "sha256": h.hexdigest()[:32]}


class Checkpoint(Callback):
    """Write the trainer's whole state to ``path`` whenever it is consistent: after every
    epoch, at Ctrl-C and at the end (see :class:`Callback`). ``identity`` (e.g. the run's
    settings and :func:`data_identity`) goes with it and is checked on resume."""

    def __init__(self, path: str | os.PathLike, identity: dict | None = None):
        self.path, self.identity = Path(path), identity

    def on_checkpoint(self, trainer: Trainer, reason: str) -> None:
        state = trainer.state_dict()  # on every rank: it collects the ranks' random streams
        if distributed.is_main():  # one writer
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_state(self.path, state, self.identity)


class CheckpointDir:
    """The checkpoints of one fit, one file per training phase (``<phase>.safetensors``,
    e.g. ``autoencoder`` then ``clustering``), each tagged with the run's ``identity``.

    ``write_to``: where the phases write their state (None: nowhere). ``resume_from``: where
    a killed fit left its states; a phase whose file is there continues from it (and a
    finished phase is not trained again), a phase without one starts afresh.
    """

    def __init__(self, write_to=None, resume_from=None, identity: dict | None = None):
        self.write_to = Path(write_to) if write_to else None
        self.resume_from = Path(resume_from) if resume_from else None
        self.identity = identity or {}
        if self.write_to is not None and self.resume_from is None and self.write_to.is_dir():
            for path in self.write_to.glob("*.safetensors"):  # a fresh fit: no old phases
                if is_checkpoint(path):
                    path.unlink()
        if self.resume_from is not None:
            if not self.resume_from.is_dir():
                raise ConfigError(
                    f"Nothing to resume: '{self.resume_from}' is not a directory of "
                    "checkpoints (give the estimator's checkpoint directory)."
                )
            for path in sorted(self.resume_from.glob("*.safetensors")):  # all of one run
                _read(path, self.identity, with_tensors=False)

    def path(self, phase: str) -> Path | None:
        return None if self.write_to is None else self.write_to / f"{phase}.safetensors"

    def callbacks(self, phase: str) -> list[Callback]:
        path = self.path(phase)
        return [] if path is None else [Checkpoint(path, self.identity)]

    def state(self, phase: str) -> dict | None:
        """The saved state of ``phase`` to resume from, or None."""
        if self.resume_from is None:
            return None
        path = self.resume_from / f"{phase}.safetensors"
        return read_state(path, self.identity) if path.is_file() else None
