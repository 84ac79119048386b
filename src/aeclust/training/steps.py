"""Training steps: what the one loop of :class:`~aeclust.training.trainer.Trainer` does
with each mini-batch.

A step owns its optimizers and their learning-rate schedules: :meth:`Step.configure`
builds them from the model and the :class:`TrainConfig`, and :meth:`Step.__call__` performs
one training step on a :class:`Batch` (its own ``zero_grad``/``backward``/``step``, as often
and on as many optimizers as the method needs: n generator and m discriminator updates, a
warm-up weight read from ``trainer.global_step``) and returns the scalars to log, among them
``"loss"``. Everything a step changes is in :meth:`Step.state_dict`, so a run can be saved
and resumed bit for bit.

:class:`LossStep` is the common case: one loss, one optimizer over all parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from .optim import build_optimizer, build_scheduler

if TYPE_CHECKING:
    from .config import TrainConfig
    from .trainer import Batch, Trainer

LossFn = Callable[[nn.Module, "Batch"], "Tensor | dict[str, Tensor]"]


class Step:
    """Base of the training steps. Subclasses set ``self.optimizers`` (name -> optimizer)
    and ``self.schedulers`` (name -> per-epoch schedule) in :meth:`configure` and implement
    :meth:`__call__` and :meth:`evaluate`."""

    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    sample_weight: Tensor | None = None  # (N,) per training sample, see set_sample_weight

    def set_sample_weight(self, weight) -> None:
        """One loss weight per training sample (N,), kept in the step's state; a step that
        uses it reads it as ``batch.weight`` (B,) through :meth:`weighted`."""
        self.sample_weight = torch.as_tensor(weight, dtype=torch.float32).clone()

    def weighted(self, batch: Batch) -> Batch:
        """``batch`` with its samples' weights, when the step keeps any."""
        if self.sample_weight is None:
            return batch
        return batch._replace(weight=self.sample_weight[batch.index].to(batch.x.device))

    def configure(self, model: nn.Module, config: TrainConfig) -> None:
        raise NotImplementedError

    def __call__(self, trainer: Trainer, batch: Batch) -> dict[str, Tensor | float]:
        raise NotImplementedError

    def evaluate(self, trainer: Trainer, batch: Batch) -> dict[str, Tensor | float]:
        """The losses on ``batch`` without updating anything (validation, in eval mode)."""
        raise NotImplementedError

    def lr(self) -> float:
        """The learning rate of the first optimizer, for the logs."""
        return next(iter(self.optimizers.values())).param_groups[0]["lr"]

    def end_epoch(self) -> None:
        """Advance the per-epoch learning-rate schedules."""
        for scheduler in self.schedulers.values():
            scheduler.step()

    def state_dict(self) -> dict:
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "sample_weight": self.sample_weight,
        }

    def load_state_dict(self, state: dict) -> None:
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
            match_layouts(o)
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        self.sample_weight = state.get("sample_weight")


def match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each loaded per-parameter state tensor (Adam's moments) its parameter's memory
    layout: a checkpoint stores them contiguous, and fused optimizers walk parameter and
    state memory in step, so a channels-last parameter needs channels-last moments."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            for key, v in st.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    st[key] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def optimizer_from_config(params, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer that ``config`` names, over ``params``; with bf16, Adam and AdamW
    default to their fused implementation (``optimizer_params`` may say otherwise)."""
    options = dict(config.optimizer_params or {})
    if config.precision == "bf16" and config.optimizer in ("adam", "adamw"):
        options.setdefault("fused", True)
    return build_optimizer(
        params, config.optimizer, lr=config.lr, weight_decay=config.weight_decay, **options
    )


def autocast(trainer: Trainer, precision: str):
    """The forward pass and loss in ``precision`` ("bf16": torch.autocast to bfloat16 on the
    trainer's device; "fp32": as they are). Steps wrap their forward passes in it."""
    return torch.autocast(trainer.device.type, torch.bfloat16, enabled=precision == "bf16")


class LossStep(Step):
    """Minimise ``loss_fn(model, batch)`` with one optimizer over all of the model's
    parameters, chosen by the config (Adam unless it says otherwise).

    ``loss_fn`` returns a scalar tensor or a dict with a ``"loss"`` tensor and other
    scalars to log. ``sample_weight`` (N,), one weight per training sample (kept in the
    step's state and settable between epochs with :meth:`set_sample_weight`), reaches the
    loss as ``batch.weight`` (B,); a loss that ignores it is unweighted.
    """

    def __init__(self, loss_fn: LossFn, sample_weight: Tensor | None = None):
        self.loss_fn = loss_fn
        if sample_weight is not None:
            self.set_sample_weight(sample_weight)

    def configure(self, model: nn.Module, config: TrainConfig) -> None:
        self.precision = config.precision
        opt = optimizer_from_config(model.parameters(), config)
        self.optimizers = {"model": opt}
        scheduler = build_scheduler(opt, config.lr_schedule, config.epochs)
        self.schedulers = {} if scheduler is None else {"model": scheduler}

    def _loss(self, trainer: Trainer, batch: Batch) -> dict:
        batch = self.weighted(batch)
        with autocast(trainer, self.precision if trainer.model.training else "fp32"):
            out = self.loss_fn(trainer.model, batch)
        out = out if isinstance(out, dict) else {"loss": out}
        return {k: v.float() if torch.is_tensor(v) else v for k, v in out.items()}

    def __call__(self, trainer: Trainer, batch: Batch) -> dict:
        out = self._loss(trainer, batch)
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        opt.step()
        return out

    def evaluate(self, trainer: Trainer, batch: Batch) -> dict:
        return self._loss(trainer, batch)
