"""Apply a model to many samples in batches, without gradients."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def apply_batched(fn, model: nn.Module, X: np.ndarray, batch_size: int, device) -> np.ndarray:
    """``fn(model, x_batch) -> Tensor`` over ``X`` (N, ...) in eval mode; results concatenated."""
    was_training = model.training
    model.eval()
    outs = []
    for start in range(0, len(X), batch_size):
        x = torch.as_tensor(X[start : start + batch_size], dtype=torch.float32).to(device)
        outs.append(fn(model, x).cpu().numpy())
    model.train(was_training)
    return np.concatenate(outs) if outs else np.zeros((0,), dtype=np.float32)
