"""One training loop for every model: a step over index mini-batches of in-memory tensors.

The loop knows nothing about autoencoders, clustering or optimizers. What happens to a
mini-batch is the job of a :class:`~aeclust.training.steps.Step` (``LossStep(loss_fn)``
minimises one loss with one optimizer; a GAN's step updates two); callbacks observe and
steer training (progress bar, checkpoints, early stopping, DCAE's centre update, DEC's
target update). Everything training changes (weights, optimizer and schedule states, epoch
and step counters, the shuffling generator, the history, the step's and each callback's
own state) is in :meth:`Trainer.state_dict`, so a run resumes bit for bit.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from . import distributed
from .config import TrainConfig, resolve_device
from .divergence import (
    Diverged,
    TrainingDiverged,
    check_epoch,
    check_step,
    scale_lr,
    snapshot,
)
from .inference import read_batches
from .steps import LossStep, Step

log = logging.getLogger(__name__)


class Batch(NamedTuple):
    x: Tensor  # (B, C, H, W) on the training device
    index: Tensor  # (B,) positions of the samples in the training data, for per-sample state
    weight: Tensor | None = None  # (B,) per-sample loss weights, when the step keeps them


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during :meth:`Trainer.fit`: training stopped at the end of a batch,
    after the callbacks' ``on_checkpoint(trainer, "interrupt")`` (a :class:`Checkpoint`
    writes the state there); ``epoch`` is the epoch that was interrupted."""

    def __init__(self, epoch: int):
        super().__init__(f"training interrupted in epoch {epoch}")
        self.epoch = epoch


def batch_bounds(
    n: int, size: int, training: bool = True, processes: int = 1
) -> list[tuple[int, int]]:
    """(start, stop) of each batch of ``n`` samples; in training, a last batch too small to
    give each of the ``processes`` two samples (one sample, for one process) joins the one
    before it."""
    starts = list(range(0, n, size))
    if training and len(starts) > 1 and n - starts[-1] < 2 * processes:
        starts.pop()
    return list(zip(starts, [*starts[1:], n], strict=True))


class Callback:
    """Hooks called by :class:`Trainer`; override the ones you need.

    ``logs`` is the dict of the epoch's averaged losses (and ``val_loss``); a callback may
    add entries to it (they enter the history) or set ``trainer.stop = True``, which ends
    training after the current batch. ``on_checkpoint`` comes when the whole state is
    consistent: after an epoch is recorded (``"epoch"``), at Ctrl-C (``"interrupt"``) and
    at the end (``"end"``). What a callback changes during training belongs in its
    ``state_dict()``, restored by ``load_state_dict`` before ``on_train_start`` on resume
    (``trainer.resumed`` is then True, and ``on_train_start`` must not reset it).
    """

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, logs: dict) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None: ...
    def on_checkpoint(self, trainer: Trainer, reason: str) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None: ...


class Trainer:
    """Train ``model`` on ``X`` (N, C, H, W), an array or a
    :class:`~aeclust.data.MappedImages` read batch by batch, with ``step`` (a
    :class:`Step`, or a plain ``loss_fn(model, batch)``, which becomes
    ``LossStep(loss_fn)``).

    ``fit`` returns the history: one dict per epoch with ``epoch``, the step's losses,
    ``val_loss`` (if held out), ``lr``, ``seconds`` and what callbacks add. ``fit(X,
    state=trainer.state_dict())`` continues a run from that state, with the same result as
    if it had not stopped.

    In a process group (:mod:`aeclust.training.distributed`) ``trainer.model`` is the
    module wrapped in ``DistributedDataParallel`` (``trainer.module`` is the module itself),
    every rank trains on its contiguous part of each batch of the shared, seeded order
    (``batch_size`` is the batch of all ranks together, so the steps and the learning rate
    are those of one process), and the logged losses are averaged over all ranks.
    """

    def __init__(self, model: nn.Module, step, config: TrainConfig, callbacks=()):
        config.validate()
        self.model = self.module = model
        self.config = config
        self.step = step if isinstance(step, Step) else LossStep(step)
        self.callbacks = list(callbacks)
        self.device = distributed.local_device(resolve_device(config.device))
        self.history: list[dict] = []
        self.stop = False
        self.epoch = self.global_step = 0
        self.position: dict | None = None  # where an interrupted epoch stopped
        self.rollbacks, self.lr_scale = 0, 1.0  # divergences rolled back; lr x lr_scale
        self.diverged: list[str] | None = None  # reasons of rollbacks, for the next epoch's log
        self.good: dict | None = None  # the state after the last completed epoch (rollback)

    def fit(self, X: np.ndarray | Tensor, state: dict | None = None) -> list[dict]:
        cfg = self.config
        if not hasattr(X, "chunks"):  # in memory; a MappedImages stays on disk
            X = torch.as_tensor(X, dtype=torch.float32)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(X), generator=self.generator)
        n_val = int(round(cfg.val_fraction * len(X)))
        self.val_index, self.train_index = order[:n_val], order[n_val:]
        if cfg.epochs and not len(self.train_index):
            raise ConfigError(
                f"No samples are left to train on: val_fraction={cfg.val_fraction} holds out "
                f"{n_val} of {len(X)}; lower val_fraction or give more data."
            )
        self.X = X
        self.rank, self.processes = distributed.rank(), distributed.world_size()
        distributed.check_batch_size(cfg.batch_size)
        if 0 < n_val < self.processes:
            raise ConfigError(
                f"val_fraction={cfg.val_fraction} holds out {n_val} sample(s), fewer than the "
                f"{self.processes} processes; hold out at least one per process."
            )
        # augmentation draws from the shuffling generator in one process (as always); with
        # several, each rank draws its own, so that the shared order stays the same on all
        self.augment_generator = self.generator
        if self.processes > 1:
            self.augment_generator = torch.Generator().manual_seed(cfg.seed + 7919 * self.rank)
            # and torch's global stream (prior samples, the beta-VAE's noise, dropout), which
            # would otherwise draw the same numbers on every rank: the discriminators would
            # see one batch-share of prior samples repeated once per process
            torch.manual_seed(cfg.seed + 7919 * self.rank + 1)
        self.module.to(self.device)
        self.channels_last = cfg.precision == "bf16" and X.ndim == 4
        if self.channels_last:  # oneDNN's fast bf16 convolutions want NHWC
            self.module.to(memory_format=torch.channels_last)
        self.step.configure(self.module, cfg)
        self.history, self.stop, self.epoch, self.global_step = [], False, 0, 0
        self.position, self.rollbacks, self.lr_scale, self.diverged = None, 0, 1.0, None
        self.resumed = state is not None  # callbacks keep their loaded state then
        if state is not None:
            self.load_state_dict(state)
        self.model = self.module
        if self.processes > 1:  # after loading: DDP starts every rank from rank 0's weights
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.module,
                device_ids=[self.device] if self.device.type == "cuda" else None,
                find_unused_parameters=getattr(self.module, "unused_parameters", False),
            )
        self._call("on_train_start")
        self.good = None
        if cfg.divergence:  # a mid-epoch checkpoint carries its epoch's start
            self.good = (state or {}).get("good") or snapshot(self.state_dict())
        with self._sigint_at_batch_end():
            while not self.stop and (self.position is not None or self.epoch < cfg.epochs):
                try:
                    self._run_epoch(n_val)
                except Diverged as exc:
                    self._roll_back(exc.reason)
        self._call("on_train_end")
        self._call("on_checkpoint", "end")
        return self.history

    def _run_epoch(self, n_val: int) -> None:
        if self.position is None:
            self.epoch += 1
        epoch = self.epoch
        self._call("on_epoch_start", epoch)
        start = time.perf_counter()
        logs = self._train_epoch()
        if self.config.divergence:  # the means are those of all ranks: all agree
            check_epoch(logs, self.history, self.config.divergence, epoch)
        if self.processes > 1:  # batch-norm statistics drift apart: all take rank 0's
            distributed.broadcast_buffers(self.module)
        if n_val:
            logs["val_loss"] = self.evaluate(self.val_index)
        logs = {"epoch": epoch, **logs, "lr": self.step.lr()}
        if self.diverged:
            logs.update(diverged="; ".join(self.diverged), rollbacks=len(self.diverged),
                        lr_scale=self.lr_scale)  # fmt: skip
            self.diverged = None
        self.step.end_epoch()
        logs["seconds"] = time.perf_counter() - start
        self._call("on_epoch_end", epoch, logs)
        self.history.append(logs)
        stop = self._sigint  # a Ctrl-C during the epoch's end, on any rank: all stop here
        if self.processes > 1:
            flag = torch.tensor([float(stop)], dtype=torch.float64)
            stop = bool(distributed.all_reduce_sum(flag)[0] > 0)
        self._call("on_checkpoint", "epoch")
        if self.config.divergence:
            self.good = snapshot(self.state_dict())
        if stop:
            raise TrainingInterrupted(epoch)

    def batches(self, index: Tensor):
        """Yield :class:`Batch` es of ``self.X`` at ``index``, in order, moved to the device
        (for evaluation; training walks its own shuffled order in ``_train_epoch``)."""
        bounds = batch_bounds(len(index), self.config.batch_size, training=False)
        idxs = [index[start:stop] for start, stop in bounds]
        for idx, rows in zip(idxs, read_batches(self.X, idxs), strict=True):
            yield Batch(self._on_device(rows), idx)

    def _train_epoch(self) -> dict:
        """Train on one epoch's batches (from where an interrupted epoch stopped); a last
        batch of a single sample (per process) joins the one before it (batch normalisation
        cannot train on one sample)."""
        self.model.train()
        if self.position is None:
            shuffle = torch.randperm(len(self.train_index), generator=self.generator)
            self.position = {"order": self.train_index[shuffle], "batch": 0, "sums": {}, "n": 0}
        pos = self.position
        self.position = None
        order, sums, n = pos["order"], dict(pos["sums"]), pos["n"]
        bounds = batch_bounds(len(order), self.config.batch_size, processes=self.processes)
        idxs = [order[start:stop] for start, stop in bounds[pos["batch"] :]]
        if self.processes > 1:  # this rank's part of every batch
            idxs = [idx.tensor_split(self.processes)[self.rank] for idx in idxs]
        batches = zip(
            range(pos["batch"], len(bounds)), idxs, read_batches(self.X, idxs), strict=True
        )
        for i, idx, rows in batches:
            batch = Batch(self._on_device(rows), idx)
            if self.config.augment is not None:
                batch = batch._replace(x=self.config.augment(batch.x, self.augment_generator))
            values = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
                      for k, v in self.step(self, batch).items()}  # fmt: skip
            size, stop = len(idx), self._sigint  # read once: a signal may come at any time
            if self.processes > 1:
                values, size, stop = self._reduce(values, size, stop)
            self.global_step += 1
            if self.config.divergence:
                where = f"at step {self.global_step} (epoch {self.epoch})"
                check_step(values, self.history, self.config.divergence, where)
            elif not math.isfinite(values["loss"]):
                raise FloatingPointError(
                    f"The loss became {values['loss']} in epoch {self.epoch}; lower the "
                    "learning rate (lr) or check the input scale."
                )
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v * size
            n += size
            self._call("on_batch_end", values)
            if self.stop:  # a callback may end training mid-epoch (e.g. DEC's convergence test)
                break
            if stop and i + 1 < len(bounds):
                self.position = {"order": order, "batch": i + 1, "sums": sums, "n": n}
                self._call("on_checkpoint", "interrupt")
                raise TrainingInterrupted(self.epoch)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def _roll_back(self, reason: str) -> None:
        """Back to the state after the last completed epoch, at a lower learning rate
        (:mod:`aeclust.training.divergence`); :class:`TrainingDiverged` when the guard has
        no rollback left."""
        guard = self.config.divergence
        if self.rollbacks >= guard.max_rollbacks:
            raise TrainingDiverged(
                f"Training diverged: {reason}, after {self.rollbacks} rollback(s) to a lower "
                f"learning rate (now x{self.lr_scale:g}). Lower lr, the adversarial weight or "
                "the number of latent groups, or check the input scale."
            )
        rollbacks, lr_scale = self.rollbacks + 1, self.lr_scale * guard.lr_factor
        reasons = [*(self.diverged or []), reason]  # several in one epoch: all are logged
        self.load_state_dict(snapshot(self.good))
        scale_lr(self.step.optimizers.values(), lr_scale / self.lr_scale)
        self.rollbacks, self.lr_scale, self.diverged = rollbacks, lr_scale, reasons
        log.warning("%s: rolled back to epoch %d, learning rate x%g (rollback %d of %d)",
                    reason, self.epoch, lr_scale, rollbacks, guard.max_rollbacks)  # fmt: skip

    def _on_device(self, rows: Tensor) -> Tensor:
        """A batch of images (read by :func:`read_batches`) on the training device."""
        rows = rows.to(self.device, non_blocking=True)
        return rows.contiguous(memory_format=torch.channels_last) if self.channels_last else rows

    def _reduce(self, values: dict, size: int, stop: bool) -> tuple[dict, int, bool]:
        """The batch's losses averaged over all ranks, weighted by their samples, and
        whether any rank got a Ctrl-C (then all stop after this batch)."""
        keys = list(values)
        local = torch.tensor([values[k] * size for k in keys] + [size, float(stop)],
                             dtype=torch.float64)  # fmt: skip
        total = distributed.all_reduce_sum(local)
        size = int(total[-2])
        return {k: float(total[j]) / size for j, k in enumerate(keys)}, size, bool(total[-1] > 0)

    @torch.no_grad()
    def evaluate(self, index: Tensor) -> float:
        """Mean loss of the step over the samples at ``index``, in eval mode (each rank
        evaluates its share)."""
        wrapped, self.model = self.model, self.module  # no collectives in a rank's share
        self.model.eval()
        total = 0.0
        try:
            for batch in self.batches(index[self.rank :: self.processes]):
                total += float(self.step.evaluate(self, batch)["loss"]) * len(batch.x)
        finally:
            self.model.train()
            self.model = wrapped
        if self.processes > 1:
            total = float(distributed.all_reduce_sum(torch.tensor([total], dtype=torch.float64)))
        return total / max(len(index), 1)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """Everything training has changed; tensors are the live ones (copy before keeping)."""
        state = {
            "model": self.module.state_dict(),
            "step": self.step.state_dict(),
            "callbacks": {key: cb.state_dict() for key, cb in self._stateful_callbacks().items()},
            "epoch": self.epoch,
            "global_step": self.global_step,
            "stop": self.stop,
            "history": self.history,
            "position": self.position,
            "rollbacks": self.rollbacks,
            "lr_scale": self.lr_scale,
            "diverged": self.diverged,
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        if self.position is not None and self.good is not None:
            state["good"] = self.good  # mid-epoch: where a divergence would roll back to
        if self.processes > 1:  # each rank's own random streams, collected on every rank
            own = {
                "torch_rng": torch.get_rng_state(),
                "augment": self.augment_generator.get_state(),
            }
            state["ranks"] = distributed.gather(own)
        return state

    def load_state_dict(self, state: dict) -> None:
        callbacks = self._stateful_callbacks()
        if set(state["callbacks"]) != set(callbacks):
            raise ConfigError(
                f"The saved training state has the callbacks {sorted(state['callbacks'])}, this "
                f"trainer {sorted(callbacks)}; resume with the settings of the saved run."
            )
        self.module.load_state_dict(state["model"])
        self.step.load_state_dict(state["step"])
        for key, cb in callbacks.items():
            cb.load_state_dict(state["callbacks"][key])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.stop, self.history = bool(state["stop"]), list(state["history"])
        self.position = state["position"]
        self.rollbacks, self.lr_scale = int(state.get("rollbacks", 0)), state.get("lr_scale", 1.0)
        self.diverged = state.get("diverged")
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        if self.processes > 1:
            own = state["ranks"][self.rank]
            torch.set_rng_state(own["torch_rng"])
            self.augment_generator.set_state(own["augment"])

    def _stateful_callbacks(self) -> dict[str, Callback]:
        """The callbacks that keep a state, by class name (``Name.2`` for a second one)."""
        out: dict[str, Callback] = {}
        for cb in self.callbacks:
            if type(cb).state_dict is not Callback.state_dict:
                name = type(cb).__name__
                n = sum(k.split(".")[0] == name for k in out)
                out[name if not n else f"{name}.{n + 1}"] = cb
        return out

    @contextmanager
    def _sigint_at_batch_end(self):
        """A first Ctrl-C ends training at the end of the batch (after a checkpoint, see
        :class:`TrainingInterrupted`); a second one interrupts at once."""
        self._sigint = False  # set by the handler; acted on only where all ranks agree
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._sigint:
                raise KeyboardInterrupt
            self._sigint = True
            log.warning("Ctrl-C: stopping at the end of this batch (again to stop at once)")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)
