"""Several processes with PyTorch's own distributed engine (``torch.distributed``).

``torchrun --nproc-per-node N -m aeclust run ...`` (or ``aeclust run --nproc N``) starts N
processes with ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`setup` joins them
into one group (gloo on CPU, NCCL on CUDA). The :class:`~aeclust.training.Trainer` then
wraps the model in ``DistributedDataParallel`` and gives every rank its part of every
batch. Without these variables everything here is a no-op, so one process runs as before.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import time

import torch
import torch.distributed as dist

from ..errors import ConfigError


def launched() -> bool:
    """True in a process that torchrun started as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: str = "auto") -> None:
    """Join the process group torchrun prepared (once; a no-op in a single process)."""
    if not launched() or dist.is_initialized():
        return
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=dt.timedelta(minutes=30))
    # leave the group before the interpreter exits: a gloo group still alive at exit can
    # abort the process ("terminate called without an active exception", exit -6)
    atexit.register(teardown)


def teardown() -> None:
    """Leave the process group (a no-op when there is none), after waiting for every rank:
    a rank that leaves while rank 0 still writes the outputs can be aborted by gloo."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.barrier()
        except Exception:  # noqa: BLE001 - a process that failed has left (launch.fail)
            pass
        finally:
            dist.destroy_process_group()
            _wait_for_idle_gloo_threads()


def _wait_for_idle_gloo_threads(timeout: float = 2.0) -> None:
    """Return once gloo's worker threads sleep, waiting for work (at most ``timeout`` s).

    ``destroy_process_group`` does not stop them, and a worker frees a finished collective
    a moment after the caller saw it complete; the last barrier keeps the collective before
    it (``gather``'s tensors, which belong to Python) until then. Freeing a Python tensor
    needs the interpreter lock, and a thread that asks for it while the interpreter shuts
    down is ended from inside a C++ destructor: "terminate called without an active
    exception", exit -6, about one run in twenty on a loaded machine (a core dump showed
    exactly this). Sleeping releases the lock, so a worker that waits for it finishes;
    two polls 5 ms apart that find every worker asleep mean it has. Linux only (it reads
    ``/proc``); elsewhere it sleeps 50 ms.
    """
    tasks = "/proc/self/task"
    if not os.path.isdir(tasks):
        time.sleep(0.05)
        return
    deadline, idle_polls = time.monotonic() + timeout, 0
    while idle_polls < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
        idle_polls = idle_polls + 1 if _gloo_workers_asleep(tasks) else 0


def _gloo_workers_asleep(tasks: str) -> bool:
    for tid in os.listdir(tasks):
        try:
            with open(f"{tasks}/{tid}/stat") as f:
                stat = f.read()
        except OSError:  # the thread has ended
            continue
        name, state = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2]
        if name == "pt_gloo_runloop" and state != "S":
            return False
    return True


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """The process that writes files and shows progress (rank 0)."""
    return rank() == 0


def local_device(device: torch.device) -> torch.device:
    """A rank's own GPU (``cuda:LOCAL_RANK``) when training on CUDA."""
    if active() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``values`` over all ranks (``values`` itself alone)."""
    if active():
        values = values.clone()
        dist.all_reduce(values)
    return values


def broadcast(obj):
    """Rank 0's ``obj`` on every rank (any picklable value among processes of one run;
    nothing is written to disk)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn):
    """``fn()`` computed by rank 0 and handed to every rank; an error on rank 0 is raised
    on all of them (instead of leaving the others waiting for a result)."""
    if not active():
        return fn()
    result, error = None, None
    if is_main():
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised on every rank below
            error = exc
    result, error = broadcast((result, error))
    if error is not None:
        raise error
    return result


def gather(obj) -> list:
    """``obj`` of every rank, in rank order, on every rank."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every rank."""
    if active():
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def check_batch_size(batch_size: int) -> None:
    """Every rank needs at least two samples of a batch (batch normalisation)."""
    if batch_size < 2 * world_size():
        raise ConfigError(
            f"batch_size={batch_size} is too small for {world_size()} processes: each needs "
            f"at least 2 samples of every batch; use batch_size >= {2 * world_size()}."
        )
