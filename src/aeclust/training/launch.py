"""``aeclust run --nproc N``: the same command in N processes on this machine, and what
happens when one of them fails.

:func:`launch` (in the user's process) starts this file as a script, PyTorch's elastic
agent (what ``torchrun --standalone`` runs), which starts the N processes. The agent runs
with the standard library and torch only, not the aeclust package (``python -P FILE``:
its folder is not put on the import path), so it stays as small as torchrun's own.

A process that fails calls :func:`fail`: it leaves at once, without waiting for the
others (they may be waiting for it inside a collective, and would wait for the 30-minute
timeout), and the agent then stops the rest. Its message goes to a folder the agent made
for the purpose. When all have ended, the agent prints what is worth reading in place of
its own report: a process killed by a signal (out of memory?), else the user's error
(once, even when every process hit it), else the first traceback; it exits with the
status of that failure, and removes the run's staging directory unless it holds
checkpoints to resume from (or process 0 already dealt with it).

Under a ``torchrun`` that the user started (several machines), :func:`fail` prints the
message itself, naming the process when it is not rank 0, and leaves at once likewise.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ERRORS_ENV = "AECLUST_ERRORS"  # the folder where failing processes leave their message
NOTE = "stage.json"  # in that folder: where process 0 stages the run


def launch(nproc: int, argv: list[str]) -> int:
    """Run the command ``argv`` (``aeclust``'s arguments) in ``nproc`` processes; returns
    their exit status. ``--nproc`` is left out of their arguments (they learn the number
    from the launcher)."""
    rest, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            rest.append(arg)
    logging.getLogger(__name__).info("launching %d processes: aeclust %s", nproc, " ".join(rest))
    proc = subprocess.Popen([sys.executable, "-P", __file__, str(nproc), *rest])
    while True:
        try:
            return 130 if proc.wait() < 0 else proc.returncode
        except KeyboardInterrupt:  # the processes got it too; wait for their checkpoint
            continue


def fail(message: str, code: int):
    """End this process of several now with ``code`` (2: the user's mistake), leaving
    ``message`` (an error line or a traceback) for the agent, or printing it without one.
    Never returns."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        record = {"rank": rank, "time": time.time(), "code": code, "text": message}
        _write(os.environ.get(ERRORS_ENV), f"{rank}.json", record)
    except Exception:  # no agent (or no room to write): say it here
        where = "" if rank == 0 else f"[process {rank} of {world}] "
        print(where + message.rstrip("\n"), file=sys.stderr)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no exit handlers: they wait for the other processes


def note_stage(stage: Path, out: Path, command: str) -> None:
    """Tell the agent, when there is one, where process 0 stages its run (``None``: it
    has dealt with the staging directory itself, kept or removed it, and said so)."""
    note = None if stage is None else {"stage": str(stage.resolve()), "out": str(out),
                                       "command": command}  # fmt: skip
    try:
        _write(os.environ.get(ERRORS_ENV), NOTE, note)
    except OSError:
        pass  # no agent


def _write(folder: str | None, name: str, obj) -> None:
    """``obj`` as JSON into ``folder/name``, whole or not at all; OSError without a folder."""
    if not folder or not os.path.isdir(folder):
        raise FileNotFoundError(folder)
    tmp = Path(folder) / f".{name}"
    tmp.write_text(json.dumps(obj))
    tmp.replace(Path(folder) / name)


def _agent(nproc: int, rest: list[str]) -> int:
    """The elastic agent of ``python -P launch.py N ARGS``; see the module."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per process (torchrun's choice)
    for name in list(logging.root.manager.loggerDict):  # torch sets levels on each of them
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="aeclust-errors-") as folder:
        os.environ[ERRORS_ENV] = folder
        args = ["--standalone", f"--nproc-per-node={nproc}", "-m", "aeclust", *rest]
        try:
            run(parse_args(args))
            return 0
        except ChildFailedError as exc:
            text, code = _report(Path(folder), exc.failures, nproc)
            _clean_stage(Path(folder) / NOTE, text)
            return code
        except SignalException as exc:  # Ctrl-C or a kill: the processes say what they did
            text, _ = _report(Path(folder), {}, nproc)  # and errors met on the way out
            if text:
                print(text, file=sys.stderr)
            return 128 + int(exc.sigval)


def _report(folder: Path, failures: dict, nproc: int) -> tuple[str, int]:
    """(what to print, exit status) once processes failed; see the module."""
    killed = sorted((f.timestamp, rank, f) for rank, f in failures.items()
                    if f.exitcode < 0 and f.exitcode != -signal.SIGTERM)  # fmt: skip
    if killed:  # the agent stops the others with SIGTERM; any other signal came first
        _, rank, failure = killed[0]
        name = failure.signal_name()
        hint = " (out of memory? see `dmesg`)" if name == "SIGKILL" else ""
        return (f"aeclust: error: process {rank} of {nproc} was killed by {name}{hint}; the "
                "others were stopped.", 128 - failure.exitcode)  # fmt: skip
    records = sorted((json.loads(p.read_text()) for p in folder.glob("[0-9]*.json")),
                     key=lambda r: r["rank"])  # fmt: skip
    user = [r for r in records if r["code"] != 1]
    if user:
        return "\n".join(dict.fromkeys(r["text"].rstrip("\n") for r in user)), user[0]["code"]
    if records:
        first = min(records, key=lambda r: r["time"])
        return f"[process {first['rank']} of {nproc}] " + first["text"].rstrip("\n"), 1
    if failures:
        rank, failure = min(failures.items(), key=lambda item: item[1].timestamp)
        return (f"aeclust: error: process {rank} of {nproc} ended with exit status "
                f"{failure.exitcode}.", failure.exitcode or 1)  # fmt: skip
    return "", 1


def _clean_stage(note: Path, text: str) -> None:
    """Print ``text`` (the failure), then remove the failed run's staging directory, or
    say why it stays (its checkpoints). The same rules as ``aeclust.rundir.staged_dir``
    (the agent runs without the package): checkpoints are
    ``checkpoints/**/*.safetensors``, and a locked directory is in use."""
    if text:
        print(text, file=sys.stderr)
    note = json.loads(note.read_text()) if note.is_file() else None
    if note is None or not Path(note["stage"]).is_dir():
        return
    stage = Path(note["stage"])
    with open(stage / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # a process still writes it: leave it alone
    if any((stage / "checkpoints").rglob("*.safetensors")):
        print(f"aeclust: kept {stage} with the run's checkpoints: fix the problem, then "
              f"`aeclust {note['command']} --resume {note['out']}`, or remove it.",
              file=sys.stderr)  # fmt: skip
    else:
        shutil.rmtree(stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(_agent(int(sys.argv[1]), sys.argv[2:]))
