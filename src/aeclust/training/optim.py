"""Optimizers and learning-rate schedules chosen by name in :class:`TrainConfig`.

A step builds its optimizers with :func:`build_optimizer` (one per group of parameters it
updates separately, e.g. a generator and a discriminator) and their schedules with
:func:`build_scheduler`; the loop itself never names an optimizer.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable

import torch

from ..errors import ConfigError, check_choice

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}
LR_SCHEDULES = ("constant", "cosine", "step")


def build_optimizer(
    params: Iterable[torch.nn.Parameter],
    name: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    **options,
) -> torch.optim.Optimizer:
    """The optimizer ``name`` over ``params``; ``options`` are its own settings, e.g.
    ``betas=(0.5, 0.999)`` for Adam or ``momentum=0.9`` for SGD. A setting the optimizer
    does not have is a ConfigError that lists the ones it has."""
    cls = OPTIMIZERS[check_choice("optimizer", name, OPTIMIZERS)]
    if "betas" in options:
        options["betas"] = tuple(options["betas"])  # a JSON or YAML list
    try:
        return cls(params, lr=lr, weight_decay=weight_decay, **options)
    except TypeError as exc:
        known = [p for p in inspect.signature(cls).parameters if p not in ("params", "lr")]
        unknown = sorted(set(options) - set(known)) or sorted(options)
        raise ConfigError(
            f"optimizer '{name}' has no setting {', '.join(map(repr, unknown))}; its settings "
            f"are {', '.join(known)}."
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"Bad setting for optimizer '{name}': {exc}.") from exc


def build_scheduler(optimizer: torch.optim.Optimizer, schedule: str, epochs: int):
    """The per-epoch learning-rate schedule: "constant" (None), "cosine" (to 0 over all
    epochs) or "step" (× 0.1 at 1/2 and 3/4 of the epochs)."""
    check_choice("lr_schedule", schedule, LR_SCHEDULES)
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(epochs, 1))
    if schedule == "step":
        milestones = sorted({max(1, epochs // 2), max(1, 3 * epochs // 4)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=0.1)
    return None
