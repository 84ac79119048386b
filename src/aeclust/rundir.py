"""Run directories, shared by ``run``, ``compare`` and ``predict``: checking ``--out``,
staging a directory that appears only when the job succeeded, loading the data a config
names, the versions to record, and ``assignments.csv``.
"""

from __future__ import annotations

import csv
import fcntl
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

from .data import ImageSet, load_dataset
from .errors import ConfigError
from .training.launch import note_stage

MARKER = ".aeclust"  # written into every output directory; --overwrite replaces only these
LOCK = ".lock"  # held in a resumable staging directory by the run writing it

log = logging.getLogger(__name__)


def check_out_dir(out: Path, overwrite: bool, inputs=()) -> None:
    """Raise unless ``out`` can become an output directory: new, empty, or (with
    ``overwrite``) an earlier aeclust output that holds none of the paths ``inputs`` (the
    data, a run; None entries and dataset names are ignored)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out '{out}' is a file; give a directory path for the run.")
    target = out.resolve()
    if target == Path.cwd() or target in Path.cwd().parents:
        raise ConfigError(
            f"--out '{out}' is the current directory or holds it; give a new sub-directory, "
            "e.g. --out runs/first."
        )
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not overwrite:
        raise ConfigError(
            f"The run directory '{out}' exists and is not empty; choose another --out or "
            "pass --overwrite to replace it."
        )
    for path in (Path(p) for p in inputs if p):
        if path.exists() and (path.resolve() == target or target in path.resolve().parents):
            raise ConfigError(
                f"--overwrite would delete '{out}', which holds the input '{path}'; choose "
                "another --out."
            )
    if not (out / MARKER).is_file():
        raise ConfigError(
            f"'{out}' was not written by aeclust (it has no {MARKER} file), so --overwrite "
            "will not delete it; choose another --out, or empty it yourself."
        )


def staging_path(out: Path) -> Path:
    """Where a resumable job stages ``out``: ``.<name>.partial`` beside it."""
    return out.parent / f".{out.name}.partial"


@contextmanager
def staged_dir(out: Path, resumable: bool = False, command: str = "run"):
    """Yield a staging directory that becomes ``out`` if the block succeeds.

    A plain staging directory is new and private to this job, and removed on any failure.
    A ``resumable`` one is :func:`staging_path` (created, or reused by a resumed job) and
    survives an interrupt (Ctrl-C) and, being on disk, a kill, so the job can continue from
    its checkpoints (``aeclust <command> --resume out``); it is removed on other errors.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = None
    if resumable:
        stage = staging_path(out)
        stage.mkdir(exist_ok=True)
        lock = lock_stage(stage, out)
        note_stage(stage, out, command)  # the launcher of several processes cleans up
    else:
        stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield stage
        (stage / MARKER).write_text(f"written by aeclust {version('aeclust')}\n")
        stage.chmod(0o755)  # mkdtemp makes it private (0o700), unlike a normal directory
    except KeyboardInterrupt:
        if not resumable:
            shutil.rmtree(stage, ignore_errors=True)
        raise
    except BaseException:
        if resumable and has_checkpoints(stage):  # hours of training are not thrown away
            log.warning(
                "kept %s with the run's checkpoints: fix the problem, then `aeclust %s "
                "--resume %s`, or remove it", stage, command, out,
            )  # fmt: skip
        else:
            shutil.rmtree(stage, ignore_errors=True)
        if resumable:
            note_stage(None, out, command)  # dealt with: the launcher need not
        raise
    finally:
        if lock is not None:
            lock.close()  # releases it
            (stage / LOCK).unlink(missing_ok=True)
    if out.exists():
        shutil.rmtree(out)
    os.replace(stage, out)


def lock_stage(stage: Path, out: Path):
    """Hold an exclusive lock on ``stage`` for as long as this process lives (the kernel
    drops it when the process dies, even by SIGKILL); refuse if another run holds it."""
    lock = open(stage / LOCK, "w")  # noqa: SIM115 - held until the run ends
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ConfigError(
            f"Another aeclust run is writing '{out}' right now ('{stage}' is locked); wait "
            "for it to finish or stop it first."
        ) from None
    return lock


def is_locked(stage: Path) -> bool:
    """True while a live run holds ``stage`` (see :func:`lock_stage`)."""
    if not (stage / LOCK).is_file():
        return False
    with open(stage / LOCK) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
    return False


def dir_size(path: Path) -> int:
    """Bytes in the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def has_checkpoints(stage: Path) -> bool:
    folder = stage / "checkpoints"
    return folder.is_dir() and any(folder.rglob("*.safetensors"))


def load_data(config) -> ImageSet:
    """The images a RunConfig or CompareConfig names (data or dataset, split, size, colour)."""
    return load_dataset(
        config.data or config.dataset,
        split=config.split,
        image_size=config.image_size,
        color=config.color,
        skip_bad=config.skip_bad,
        stream=getattr(config, "stream", False),
        workers=getattr(config, "workers", 0),
    )


def versions() -> dict:
    return {p: version(p) for p in ("aeclust", "torch", "scikit-learn", "numpy")}


def write_assignments(path: Path, clusters, data: ImageSet) -> None:
    """index, name (if known), cluster, label and its class name (if known) for every item."""
    header = ["index"] + (["name"] if data.names else []) + ["cluster"]
    header += ["label", "class"] if data.y is not None else []
    classes = data.label_names() if data.y is not None else []
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i, c in enumerate(clusters):
            row = [i] + ([data.names[i]] if data.names else []) + [int(c)]
            row += [int(data.y[i]), classes[data.y[i]]] if data.y is not None else []
            writer.writerow(row)
