"""Callbacks for :class:`~aeclust.training.trainer.Trainer`: progress and early stopping
(checkpoints: :mod:`aeclust.training.checkpoint`)."""

from __future__ import annotations

import logging
import sys
import time

from tqdm.auto import tqdm

from ..progress import interactive
from .trainer import Callback, Trainer, batch_bounds

log = logging.getLogger(__name__)


class ProgressBar(Callback):
    """Training progress where a person looks: in a terminal (or a notebook), a tqdm bar
    over all batches of all epochs with the running loss, and a logged line per epoch;
    elsewhere (a log file, CI) one line per epoch on ``stream`` instead (default stderr)
    with the losses (and the ``_mse`` of fixed image sets), samples/s and the time left, e.g.
    ``autoencoder epoch 3/30: loss 0.0213, 2,480 samples/s, 01:02 left``."""

    def __init__(self, desc: str = "training", stream=None):
        self.desc, self.stream = desc, stream
        self.bar = None

    def on_train_start(self, trainer: Trainer) -> None:
        cfg = trainer.config
        self.out = self.stream if self.stream is not None else sys.stderr
        self.started, self.epochs_done, self.bar = time.perf_counter(), 0, None
        if trainer.resumed:
            self.out.write(f"{self.desc}: resuming after epoch {trainer.epoch}\n")
        if interactive(self.out):
            per_epoch = len(batch_bounds(len(trainer.train_index), cfg.batch_size))
            total = per_epoch * cfg.epochs
            done = per_epoch * trainer.epoch + (trainer.position or {}).get("batch", 0)
            self.bar = tqdm(total=total, initial=min(done, total), desc=self.desc, unit="batch",
                            leave=False, file=self.out)  # fmt: skip

    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None:
        self.epoch_started, self.batches = time.perf_counter(), 0

    def on_batch_end(self, trainer: Trainer, logs: dict) -> None:
        self.batches += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=trainer.epoch, loss=f"{logs['loss']:.4f}", refresh=False)

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        losses = {k: f"{v:.4g}" for k, v in logs.items() if k.endswith(("loss", "_mse"))}
        total = trainer.config.epochs
        if self.bar is not None:
            log.info("epoch %d/%d %s", epoch, total, losses)
            return
        now = time.perf_counter()
        self.epochs_done += 1
        samples = min(self.batches * trainer.config.batch_size, len(trainer.train_index))
        rate = samples / max(now - self.epoch_started, 1e-9)
        left = (now - self.started) / self.epochs_done * (total - epoch)
        shown = ", ".join(f"{k} {v}" for k, v in losses.items())
        self.out.write(
            f"{self.desc} epoch {epoch}/{total}: {shown}, {rate:,.0f} samples/s, "
            f"{tqdm.format_interval(left)} left\n"
        )
        self.out.flush()

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()


class EarlyStopping(Callback):
    """Stop when ``val_loss`` has not improved for ``patience`` epochs; restore the best weights."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best, self.best_epoch, self.best_state = float("inf"), 0, None

    def on_train_start(self, trainer: Trainer) -> None:
        if not trainer.resumed:
            self.best, self.best_epoch, self.best_state = float("inf"), 0, None

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        if logs["val_loss"] < self.best - self.min_delta:
            self.best, self.best_epoch = logs["val_loss"], epoch
            self.best_state = {
                k: v.detach().clone() for k, v in trainer.module.state_dict().items()
            }
        elif epoch - self.best_epoch >= self.patience:
            log.info(
                "early stop at epoch %d; best val_loss %.4g at %d",
                epoch,
                self.best,
                self.best_epoch,
            )
            logs["early_stop"] = True
            trainer.stop = True

    def on_train_end(self, trainer: Trainer) -> None:
        if self.best_state is not None:
            trainer.module.load_state_dict(self.best_state)

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.best_state = state["best_state"]


class EvalError(Callback):
    """After every epoch, ``fn(model, x) -> (B,)`` per-sample errors averaged over fixed
    image sets, in eval mode, logged as ``<name>_<key>`` (e.g. ``test_mse``): the error
    of the weights at the epoch's end on the same images every epoch, where the logged
    ``loss`` is the running mean of a changing model over shuffled batches."""

    def __init__(self, sets: dict, fn, key: str = "mse", batch_size: int = 512):
        self.sets, self.fn, self.key, self.batch_size = sets, fn, key, batch_size

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None:
        from .inference import apply_batched

        for name, X in self.sets.items():
            errors = apply_batched(self.fn, trainer.module, X, self.batch_size, trainer.device)
            logs[f"{name}_{self.key}"] = float(errors.mean())
