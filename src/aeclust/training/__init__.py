"""The generic training loop, its callbacks and batched inference."""

from .augment import AUGMENTS, RandomAffine, build_augment
from .callbacks import Checkpoint, EarlyStopping, ProgressBar
from .inference import apply_batched
from .trainer import LR_SCHEDULES, Batch, Callback, TrainConfig, Trainer, resolve_device

__all__ = [
    "AUGMENTS",
    "RandomAffine",
    "build_augment",
    "LR_SCHEDULES",
    "Batch",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "ProgressBar",
    "TrainConfig",
    "Trainer",
    "apply_batched",
    "resolve_device",
]
