"""Divergence: detected within one step, rolled back to the last good state at a lower
learning rate (adversarial training can blow up; Morais' thesis, section 4.3).

The :class:`~aeclust.training.trainer.Trainer` checks every step's logged values. A step
*diverged* when any value is not finite, or when its ``"loss"`` or another logged term
(an adversarial or a discriminator loss) is more than ``factor`` times that term's mean
over the last completed epoch (in absolute value; from the second epoch on, so that a
first epoch's falling loss is no reference). An epoch diverged too when the mean of one
of ``epoch_terms`` (the discriminators' loss) over it is more than ``epoch_factor`` times
its mean over the epoch before and above ``epoch_floor``: the slower oscillation of an
adversarial game, which no single step shows. On Fashion-MNIST with Adam's β1 = 0.9 the
discriminators' loss went from 0.55 to 7.3 (13x) in one epoch, its steps never 1000x, and
the reconstruction error ended four times higher; a relativistic discriminator at chance
scores log 2 = 0.69 per group, so a mean above ``epoch_floor`` = 2 means it is confidently
wrong, not merely less sure than before. The trainer then goes back to
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
    epoch_factor: float = 5.0  # an epoch mean of an epoch_terms term this many times the last
    epoch_floor: float = 2.0  # ... and above this is a divergence too
    epoch_terms: tuple[str, ...] = ("discriminator",)

    def __post_init__(self):
        if (self.max_rollbacks < 0 or not 0 < self.lr_factor < 1 or not self.factor > 1
                or not self.epoch_factor > 1):  # fmt: skip
            raise ValueError(
                f"need max_rollbacks >= 0, 0 < lr_factor < 1, factor > 1, epoch_factor > 1; {self}"
            )


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


def check_epoch(means: dict, history: list[dict], guard: DivergenceGuard, epoch: int):
    """Raise :class:`Diverged` when an epoch's mean of one of ``guard.epoch_terms`` jumped
    (see the module) against the epoch before."""
    last = history[-1] if history else {}
    for key in guard.epoch_terms:
        v, reference = means.get(key), last.get(key)
        if v is None or not isinstance(reference, float | int) or abs(v) <= guard.epoch_floor:
            continue
        if abs(v) > guard.epoch_factor * abs(reference):
            raise Diverged(
                f"{key}'s mean over epoch {epoch} jumped to {v:.4g}, more than "
                f"{guard.epoch_factor:g} x the epoch before ({reference:.4g})"
            )


def snapshot(state: dict) -> dict:
    """A copy of a trainer's state that later training does not change."""
    return copy.deepcopy(state)


def scale_lr(optimizers, factor: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] *= factor
