"""``aeclust run --nproc N``: the same command in N processes on this machine, and what
happens when one of them fails.

:func:`launch` (in the user's process) starts ``python -m aeclust.training.launch N ...``,
PyTorch's elastic agent (what ``torchrun --standalone`` runs), which starts the N
processes. A process that fails calls :func:`fail`: it leaves at once, without waiting
for the others (they may be waiting for it inside a collective, and would wait for the
30-minute timeout), and the agent then stops the rest. Its message goes to a folder the
agent made for the purpose; when all have ended, the agent prints the message worth
reading (the user's error, said once even when every process hit it; else the first
traceback) in place of its own report, and exits with the failed process's status.

Under a ``torchrun`` that the user started (several machines), :func:`fail` prints the
message itself, naming the process when it is not rank 0, and leaves at once likewise.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ERRORS_ENV = "AECLUST_ERRORS"  # the folder where failing processes leave their message


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
    proc = subprocess.Popen([sys.executable, "-m", __name__, str(nproc), *rest])
    while True:
        try:
            return 130 if proc.wait() < 0 else proc.returncode
        except KeyboardInterrupt:  # the processes got it too; wait for their checkpoint
            continue


def fail(message: str, code: int):
    """End this process of several now with ``code``, leaving ``message`` (an error line
    or a traceback) for the agent, or printing it without one. Never returns."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    folder = os.environ.get(ERRORS_ENV)
    if folder and Path(folder).is_dir():
        record = {"rank": rank, "time": time.time(), "user": code != 1, "text": message}
        tmp = Path(folder) / f".{rank}.json"
        tmp.write_text(json.dumps(record))
        tmp.replace(Path(folder) / f"{rank}.json")
    else:
        where = "" if rank == 0 else f"[process {rank} of {world}] "
        print(where + message.rstrip("\n"), file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # no exit handlers: they wait for the other processes


def note_stage(stage: Path, out: Path, command: str) -> None:
    """Tell the agent, when there is one, where rank 0 stages its run: if the processes
    fail, the agent removes it (nothing half-written stays) unless it holds checkpoints,
    since rank 0 may have been stopped before it could clean up itself."""
    folder = os.environ.get(ERRORS_ENV)
    if folder and Path(folder).is_dir():
        note = {"stage": str(stage.resolve()), "out": str(out), "command": command}
        (Path(folder) / "stage.note").write_text(json.dumps(note))


def _agent(nproc: int, rest: list[str]) -> int:
    """The elastic agent of ``python -m aeclust.training.launch N ARGS``; see the module."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per process (torchrun's choice)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="aeclust-errors-") as folder:
        os.environ[ERRORS_ENV] = folder
        args = ["--standalone", f"--nproc-per-node={nproc}", "-m", "aeclust", *rest]
        try:
            run(parse_args(args))
            return 0
        except ChildFailedError as exc:
            rank, failure = exc.get_first_failure()
            print(_report(Path(folder), rank, failure, nproc), file=sys.stderr)
            _clean_stage(Path(folder) / "stage.note")
            return failure.exitcode if failure.exitcode > 0 else 1
        except SignalException:  # Ctrl-C or a kill: the processes say what they did
            return 130


def _report(folder: Path, rank: int, failure, nproc: int) -> str:
    """What to print when processes failed: the users' error lines, once each, in rank
    order; else the earliest traceback; else how the first process ended."""
    records = sorted((json.loads(p.read_text()) for p in folder.glob("[0-9]*.json")),
                     key=lambda r: r["rank"])  # fmt: skip
    user = list(dict.fromkeys(r["text"].rstrip("\n") for r in records if r["user"]))
    if user:
        return "\n".join(user)
    if records:
        first = min(records, key=lambda r: r["time"])
        return f"[process {first['rank']} of {nproc}] " + first["text"].rstrip("\n")
    if failure.exitcode < 0:
        how = f"signal {failure.signal_name()}"
        if failure.signal_name() == "SIGKILL":
            how += " (killed for lack of memory? see `dmesg`)"
    else:
        how = f"exit status {failure.exitcode}"
    return f"aeclust: error: process {rank} of {nproc} ended with {how}; the others were stopped."


def _clean_stage(note: Path) -> None:
    """Remove the failed run's staging directory, or say why it stays (its checkpoints)."""
    from ..rundir import has_checkpoints

    if not note.is_file():
        return
    note = json.loads(note.read_text())
    stage = Path(note["stage"])
    if not stage.is_dir():
        return
    if has_checkpoints(stage):
        print(f"aeclust: kept {stage} with the run's checkpoints: fix the problem, then "
              f"`aeclust {note['command']} --resume {note['out']}`, or remove it.",
              file=sys.stderr)  # fmt: skip
    else:
        shutil.rmtree(stage, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(_agent(int(sys.argv[1]), sys.argv[2:]))
