"""``aeclust runs``: the run directories under some folders, and the staging folders that
killed or interrupted runs left behind, with their size and how far they got."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from .errors import ModelFileError
from .rundir import MARKER, dir_size, is_locked
from .training.checkpoint import read_header

STAGE_SUFFIX = ".partial"
MAX_DEPTH = 4  # runs/<dataset>/<name> and the like; deeper folders are not searched


def find_runs(dirs) -> tuple[list[Path], list[Path]]:
    """(finished run directories, staging folders of killed runs) under ``dirs``."""
    finished, stale = [], []
    for root in map(Path, dirs):
        base = len(root.parts)
        for path, subdirs, files in os.walk(root):
            here = Path(path)
            if is_stage(here):
                stale.append(here)
                subdirs[:] = []
            elif MARKER in files:
                finished.append(here)
                subdirs[:] = []
            elif len(here.parts) - base >= MAX_DEPTH:
                subdirs[:] = []
    return sorted(finished), sorted(stale)


def is_stage(path: Path) -> bool:
    """A staging folder: ``.<name>.partial`` (resumable) or ``.<name>.partial-XXXX`` (an
    older or a non-resumable job's), not yet completed."""
    name = path.name
    return name.startswith(".") and (
        name.endswith(STAGE_SUFFIX) or STAGE_SUFFIX + "-" in name
    ) and not (path / MARKER).exists()  # fmt: skip


def target_of(stage: Path) -> Path:
    """The run directory a staging folder was headed for."""
    name = stage.name[1:]
    return stage.parent / name[: name.rindex(STAGE_SUFFIX)]


def progress_of(stage: Path) -> str:
    """How far the killed run's training got, from its checkpoints' headers."""
    parts = []
    for ckpt in sorted((stage / "checkpoints").glob("*.safetensors")):
        try:
            state = json.loads(read_header(ckpt)["state"])
        except (ModelFileError, KeyError, ValueError):
            continue
        epoch, position = state.get("epoch"), state.get("position")
        if position:  # interrupted within that epoch
            parts.append(f"{ckpt.stem}: epoch {epoch} stopped after batch {position['batch']}")
        else:
            parts.append(f"{ckpt.stem}: {epoch} epoch{'s' * (epoch != 1)} done")
    return ", ".join(parts) or "no checkpoint yet"


def format_runs(finished: list[Path], stale: list[Path]) -> str:
    lines = []
    for run in finished:
        metrics = run / "metrics.json"
        info = ""
        if metrics.is_file():
            m = json.loads(metrics.read_text())
            acc = f", acc {m['acc']:.4f}" if isinstance(m.get("acc"), float) else ""
            info = f"  {m.get('dataset')}, {m.get('model')}, {m.get('date')}{acc}"
        lines.append(f"{run}{info}")
    if stale:
        lines.append(f"{len(stale)} staging folder(s) of killed, interrupted or running runs:")
    for stage in stale:
        when = dt.datetime.fromtimestamp(stage.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        lines.append(f"  {stage}  {dir_size(stage) / 1e6:.1f} MB, {when}, {progress_of(stage)}")
        if is_locked(stage):
            lines.append("    still running (a live aeclust run holds it)")
        elif stage.name.endswith(STAGE_SUFFIX) and (stage / "config.yaml").is_file():
            lines.append(f"    resume: aeclust run --resume {target_of(stage)}")
        else:
            lines.append("    not resumable (written by an older aeclust or by compare)")
        lines.append(f"    remove: rm -r {stage}")
    return "\n".join(lines) or "no runs and no staging folders found"
