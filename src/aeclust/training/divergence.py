"""Divergence: detected within one step, rolled back to the last good state at a lower
learning rate (adversarial training can blow up; Morais' thesis, section 4.3).

The :class:`~aeclust.training.trainer.Trainer` checks every step's logged values. A step
*diverged* when any value is not finite, or when its ``"loss"`` or another logged term
(an adversarial or a discriminator loss) is more than ``factor`` times that term's mean
over the last completed epoch (in absolute value; from the second epoch on, so that a
first epoch's falling loss is no reference). The trainer then goes back to
the state it had at the end of the last completed epoch (the state the checkpoint on disk
holds, kept in memory too), multiplies every optimizer's learning rate by ``lr_factor``,
and trains on; the epoch that follows records ``"diverged"`` (the reasons),
``"rollbacks"`` (how many) and ``"lr_scale"`` in the history. Restoring the RNGs replays
the same batches, so the run stays reproducible; a mid-epoch checkpoint carries the state
it would roll back to, so a resumed run does too. After ``max_rollbacks`` rollbacks the
next divergence ends the fit with :class:`TrainingDiverged`; with ``max_rollbacks = 0``
the first one does.
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


def check_step(values: dict, history: list[dict], guard: DivergenceGuard, where: str):
    """Raise :class:`Diverged` when the step's ``values`` diverged (see the module): any
    value not finite, or any term (the loss, and each term a step logs beside it, such as
    an adversarial or a discriminator loss) more than ``guard.factor`` times its mean over
    the last completed epoch."""
    for key, v in values.items():
        if not math.isfinite(v):
            raise Diverged(f"{key} became {v} {where}")
    last = history[-1] if history else {}
    for key, v in values.items():
        reference = last.get(key)
        if not isinstance(reference, float | int) or abs(reference) < 1e-12:
            continue
        if abs(v) > guard.factor * abs(reference):
            raise Diverged(
                f"{key} jumped to {v:.4g} {where}, more than {guard.factor:g} x the last "
                f"epoch's mean ({reference:.4g})"
            )


def snapshot(state: dict) -> dict:
    """A copy of a trainer's state that later training does not change."""
    return copy.deepcopy(state)


def scale_lr(optimizers, factor: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] *= factor
