"""One training loop for every model: Adam over index mini-batches of in-memory tensors.

The loop knows nothing about autoencoders or clustering. A model is trained by a
``loss_fn(model, batch) -> Tensor | dict`` and observed or steered by callbacks (progress
bar, checkpoints, early stopping, and later e.g. the per-epoch centre update of DCAE).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, check_choice

log = logging.getLogger(__name__)

LR_SCHEDULES = ("constant", "cosine", "step")


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = (
        "constant"  # constant | cosine (to 0 over all epochs) | step (x0.1 at 1/2, 3/4)
    )
    val_fraction: float = 0.0  # held-out share for the validation loss (and early stopping)
    patience: int | None = None  # stop after this many epochs without a better val loss
    seed: int = 0  # shuffling and the held-out split
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # augment(x, generator) -> x: applied to every training batch, never to evaluation
    # batches (e.g. aeclust.training.augment.RandomAffine)
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError(
                f"Need epochs >= 0, batch_size >= 1 and lr > 0; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, lr={self.lr}."
            )
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1); got {self.val_fraction}.")
        if self.patience is not None and self.val_fraction == 0:
            raise ConfigError(
                "Early stopping (patience) needs a held-out set: set val_fraction > 0."
            )


class Batch(NamedTuple):
    x: Tensor  # (B, C, H, W) on the training device
    index: Tensor  # (B,) positions of the samples in the training data, for per-sample state


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` is the first CUDA device when one is present, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"Unknown device '{device}'; use auto, cpu or cuda.") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device='{device}' but no CUDA GPU is available; use 'auto' or 'cpu'.")
    return dev


def batch_bounds(n: int, size: int, training: bool = True) -> list[tuple[int, int]]:
    """(start, stop) of each batch of ``n`` samples; in training, a last batch of a single
    sample joins the one before it."""
    starts = list(range(0, n, size))
    if training and len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], n], strict=True))


class Callback:
    """Hooks called by :class:`Trainer`; override the ones you need.

    ``logs`` is the dict of the epoch's averaged losses (and ``val_loss``); a callback may
    add entries to it (they enter the history) or set ``trainer.stop = True``, which ends
    training after the current batch.
    """

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_batch_end(self, trainer: Trainer, logs: dict) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict) -> None: ...
    def on_train_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Train ``model`` on ``X`` (N, C, H, W) by minimising ``loss_fn``.

    ``loss_fn(model, batch)`` returns a scalar tensor or a dict with a ``"loss"`` tensor
    and other scalars to log. ``fit`` returns the history: one dict per epoch with
    ``epoch``, ``loss``, ``val_loss`` (if held out), ``lr``, ``seconds`` and the extras.
    """

    def __init__(self, model: nn.Module, loss_fn, config: TrainConfig, callbacks=()):
        config.validate()
        self.model, self.loss_fn, self.config = model, loss_fn, config
        self.callbacks = list(callbacks)
        self.device = resolve_device(config.device)
        self.history: list[dict] = []
        self.stop = False
        self.epoch = 0

    def fit(self, X: np.ndarray | Tensor) -> list[dict]:
        cfg = self.config
        X = torch.as_tensor(X, dtype=torch.float32)
        generator = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(X), generator=generator)
        n_val = int(round(cfg.val_fraction * len(X)))
        self.val_index, self.train_index = order[:n_val], order[n_val:]
        if cfg.epochs and not len(self.train_index):
            raise ConfigError(
                f"No samples are left to train on: val_fraction={cfg.val_fraction} holds out "
                f"{n_val} of {len(X)}; lower val_fraction or give more data."
            )
        self.X = X
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        scheduler = self._scheduler()
        self.stop = False
        self._call("on_train_start")
        for epoch in range(1, cfg.epochs + 1):
            self.epoch = epoch
            self._call("on_epoch_start", epoch)
            start = time.perf_counter()
            logs = self._train_epoch(generator)
            if n_val:
                logs["val_loss"] = self.evaluate(self.val_index)
            logs = {"epoch": epoch, **logs, "lr": self.optimizer.param_groups[0]["lr"]}
            if scheduler is not None:
                scheduler.step()
            logs["seconds"] = time.perf_counter() - start
            self._call("on_epoch_end", epoch, logs)
            self.history.append(logs)
            if self.stop:
                break
        self._call("on_train_end")
        return self.history

    def batches(self, index: Tensor, shuffle: bool, generator=None):
        """Yield :class:`Batch` es of ``self.X`` at ``index``, moved to the device.

        When shuffling (training), a last batch of a single sample joins the one before it:
        batch normalisation cannot train on one sample.
        """
        if shuffle:
            index = index[torch.randperm(len(index), generator=generator)]
        for start, stop in batch_bounds(len(index), self.config.batch_size, shuffle):
            idx = index[start:stop]
            yield Batch(self.X[idx].to(self.device, non_blocking=True), idx)

    def _train_epoch(self, generator) -> dict:
        self.model.train()
        sums: dict[str, float] = {}
        n = 0
        for batch in self.batches(self.train_index, True, generator):
            if self.config.augment is not None:
                batch = Batch(self.config.augment(batch.x, generator), batch.index)
            out = self.loss_fn(self.model, batch)
            out = out if isinstance(out, dict) else {"loss": out}
            self.optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            self.optimizer.step()
            values = {k: float(v.detach()) for k, v in out.items()}
            if not math.isfinite(values["loss"]):
                raise FloatingPointError(
                    f"The loss became {values['loss']} in epoch {self.epoch}; lower the "
                    "learning rate (lr) or check the input scale."
                )
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v * len(batch.x)
            n += len(batch.x)
            self._call("on_batch_end", values)
            if self.stop:  # a callback may end training mid-epoch (e.g. DEC's convergence test)
                break
        return {k: v / max(n, 1) for k, v in sums.items()}

    @torch.no_grad()
    def evaluate(self, index: Tensor) -> float:
        """Mean of ``loss_fn`` over the samples at ``index`` in eval mode."""
        self.model.eval()
        total = 0.0
        for batch in self.batches(index, False):
            out = self.loss_fn(self.model, batch)
            total += float(out["loss"] if isinstance(out, dict) else out) * len(batch.x)
        self.model.train()
        return total / max(len(index), 1)

    def _scheduler(self):
        cfg, opt = self.config, self.optimizer
        if cfg.lr_schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
        if cfg.lr_schedule == "step":
            milestones = sorted({max(1, cfg.epochs // 2), max(1, 3 * cfg.epochs // 4)})
            return torch.optim.lr_scheduler.MultiStepLR(opt, milestones, gamma=0.1)
        return None

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)
