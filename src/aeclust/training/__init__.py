"""The generic training loop, its steps, callbacks, checkpoints and batched inference."""

from .augment import AUGMENTS, RandomAffine, build_augment
from .callbacks import EarlyStopping, EvalError, ProgressBar
from .checkpoint import Checkpoint, data_identity, read_state, write_state
from .config import TrainConfig, resolve_device
from .divergence import DivergenceGuard, TrainingDiverged
from .inference import apply_batched
from .optim import LR_SCHEDULES, OPTIMIZERS, build_optimizer, build_scheduler
from .steps import LossStep, Step
from .trainer import Batch, Callback, Trainer, TrainingInterrupted

__all__ = [
    "AUGMENTS",
    "RandomAffine",
    "build_augment",
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "LossStep",
    "Step",
    "TrainingInterrupted",
    "build_optimizer",
    "build_scheduler",
    "data_identity",
    "read_state",
    "write_state",
    "Batch",
    "Callback",
    "Checkpoint",
    "EarlyStopping",
    "EvalError",
    "ProgressBar",
    "TrainConfig",
    "DivergenceGuard",
    "TrainingDiverged",
    "Trainer",
    "apply_batched",
    "resolve_device",
]
