"""Divergence: detected within one step, rolled back to the last good state at a lower
learning rate (adversarial training can blow up; Morais' thesis, section 4.3).

The :class:`~aeclust.training.trainer.Trainer` checks every step's logged values. A step
*diverged* when any value is not finite, or when its ``"loss"`` is more than ``factor``
times the mean loss of the last completed epoch (in absolute value; from the second epoch
on, so that a first epoch's falling loss is no reference). The trainer then goes back to
the state it had at the end of the last completed epoch (the state the checkpoint on disk
holds, kept in memory too), multiplies every optimizer's learning rate by ``lr_factor``,
and trains on; the epoch that follows records ``"diverged"`` (the reason) and
``"lr_scale"`` in the history. Restoring the RNGs replays the same batches, so the run
stays reproducible. After ``max_rollbacks`` rollbacks the next divergence ends the fit
with :class:`TrainingDiverged`. With ``max_rollbacks = 0`` the first one does.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass


class TrainingDiverged(FloatingPointError):
    """Training diverged more often than the guard allows; the message says what to do."""


class Diverged(Exception):
    """Raised inside an epoch by the trainer's check; ``reason`` names the value."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class DivergenceGuard:
    max_rollbacks: int = 3  # rollbacks allowed; the next divergence stops the fit
    lr_factor: float = 0.5  # learning rates x this at each rollback
    factor: float = 1000.0  # a loss this many times the last epoch's mean is a divergence

    def __post_init__(self):
        if self.max_rollbacks < 0 or not 0 < self.lr_factor < 1 or not self.factor > 1:
            raise ValueError(f"need max_rollbacks >= 0, 0 < lr_factor < 1, factor > 1; {self}")


def check_step(values: dict, history: list[dict], guard: DivergenceGuard | None, where: str):
    """Raise :class:`Diverged` when the step's ``values`` diverged (see the module)."""
    for key, v in values.items():
        if not math.isfinite(v):
            raise Diverged(f"{key} became {v} {where}")
    if guard is not None and history and "loss" in history[-1]:
        reference = abs(history[-1]["loss"])
        if reference > 0 and abs(values["loss"]) > guard.factor * reference:
            raise Diverged(
                f"the loss jumped to {values['loss']:.4g} {where}, more than "
                f"{guard.factor:g} x the last epoch's mean ({reference:.4g})"
            )


def snapshot(state: dict) -> dict:
    """A copy of a trainer's state that later training does not change."""
    return copy.deepcopy(state)


def scale_lr(optimizers, factor: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] *= factor
