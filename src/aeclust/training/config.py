"""The settings of a training run (:class:`TrainConfig`) and the device it runs on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import ConfigError, check_choice
from .divergence import DivergenceGuard
from .optim import LR_SCHEDULES, OPTIMIZERS, build_optimizer


@dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"  # adam | adamw | rmsprop | sgd
    optimizer_params: dict | None = None  # the optimizer's own settings, e.g. {"momentum": 0.9}
    # constant | cosine (to 0 over all epochs) | step (x0.1 at 1/2, 3/4)
    lr_schedule: str = "constant"
    # fp32 | bf16: autocast of the training step's forward and loss to bfloat16 (CPUs with
    # AVX512-BF16 or AMX, and CUDA); encoding and evaluation stay fp32. bf16 also trains in
    # channels-last memory with the fused Adam, which only pay with it (BENCHMARKS.md)
    precision: str = "fp32"
    val_fraction: float = 0.0  # held-out share for the validation loss (and early stopping)
    patience: int | None = None  # stop after this many epochs without a better val loss
    seed: int = 0  # shuffling and the held-out split
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # augment(x, generator) -> x: applied to every training batch, never to evaluation
    # batches (e.g. aeclust.training.augment.RandomAffine)
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None
    # roll back to the last epoch's state at a lower learning rate when a step diverges
    # (aeclust.training.divergence); None: a non-finite loss ends training with an error
    divergence: DivergenceGuard | None = None

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ConfigError(
                f"Need epochs >= 0, batch_size >= 1 and lr > 0; got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, lr={self.lr}."
            )
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("precision", self.precision, PRECISIONS)
        if self.precision == "bf16":
            check_bf16(resolve_device(self.device))
        probe = [torch.zeros(1, requires_grad=True)]  # its settings, before any training
        build_optimizer(probe, self.optimizer, self.lr, self.weight_decay,
                        **(self.optimizer_params or {}))  # fmt: skip
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1); got {self.val_fraction}.")
        if self.patience is not None and self.val_fraction == 0:
            raise ConfigError(
                "Early stopping (patience) needs a held-out set: set val_fraction > 0."
            )


PRECISIONS = ("fp32", "bf16")


def check_bf16(device: torch.device) -> None:
    """Refuse bf16 where it would be emulated (slower than fp32) rather than computed."""
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise ConfigError("This GPU has no bfloat16 support; use precision='fp32'.")
    elif not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        raise ConfigError(
            "This CPU has no bfloat16 instructions (AVX512-BF16 or AMX), so bf16 would be "
            "slower than fp32; use precision='fp32'."
        )


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
