"""Reading batches (ahead of the model, for images on disk) and applying a model to many
samples in batches, without gradients."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.mapped import one_thread
from ..errors import AeclustError


class _Batches(Dataset):
    """Item i is ``X[indices[i]]`` as a float32 tensor (read in a DataLoader worker)."""

    def __init__(self, X, indices):
        self.X, self.indices = X, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        try:
            rows = np.ascontiguousarray(self.X[self.indices[i]])
        except AeclustError as exc:  # handed over, to be raised as said (not wrapped)
            return exc
        return torch.as_tensor(rows, dtype=torch.float32)


def read_batches(X, indices):
    """Yield ``X[idx]`` for every ``idx`` of ``indices`` (index tensors, arrays or slices),
    in order, as float32 tensors. Images on disk (:class:`~aeclust.data.mapped.DiskImages`)
    whose ``workers`` > 0 are read that many batches ahead in DataLoader worker processes
    (decoding PNGs, reading a memory map), while the caller computes on the current one;
    everything else is read here, when asked for."""
    workers = int(getattr(X, "workers", 0) or 0) if hasattr(X, "chunks") else 0
    if workers <= 0 or len(indices) < 2:
        for idx in indices:
            rows = X[idx]
            yield rows if torch.is_tensor(rows) else torch.as_tensor(rows, dtype=torch.float32)
        return
    loader = DataLoader(
        _Batches(X, indices), batch_size=None, shuffle=False, num_workers=workers,
        prefetch_factor=2, worker_init_fn=one_thread,
    )  # fmt: skip
    for batch in loader:
        if isinstance(batch, AeclustError):  # a bad file, a changed .npy
            raise batch
        yield batch


INFER_BYTES = 32 << 20  # at most this much input per inference batch (float32)


def inference_batch(batch_size: int, X) -> int:
    """``batch_size``, capped so that a batch of X holds at most :data:`INFER_BYTES` of
    float32 input: 1,024 tiles of 250x250x3 would take 768 MB, and the network's
    activations several times that (44 rows there; batches of small images are not capped
    below 1,024 rows up to 64x64x2)."""
    row = 4 * int(np.prod(X.shape[1:])) if len(X.shape) > 1 else 4
    return max(1, min(int(batch_size), INFER_BYTES // max(row, 1)))


@torch.no_grad()
def apply_batched(fn, model: nn.Module, X: np.ndarray, batch_size: int, device) -> np.ndarray:
    """``fn(model, x_batch) -> Tensor`` over ``X`` (N, ...) in eval mode; the results, one
    row per sample.

    They are written into one array made at the first batch, not kept per batch and
    concatenated: small arrays that outlive each batch, allocated between its large
    short-lived activations, pin the allocator's heap, which then grows with every batch
    (measured: encoding 50,000 tiles of 250x250 took the process from 1.0 to 4.3 GB; on
    10,000 tiles, ``malloc_trim`` after every batch or one array both kept it flat)."""
    was_training = model.training
    model.eval()
    out, start = None, 0
    batch_size = inference_batch(batch_size, X)
    slices = [slice(start, start + batch_size) for start in range(0, len(X), batch_size)]
    for x in read_batches(X, slices):
        rows = fn(model, x.to(device)).cpu().numpy()
        if out is None:
            out = np.empty((len(X), *rows.shape[1:]), dtype=rows.dtype)
        out[start : start + len(rows)] = rows
        start += len(rows)
        del x, rows  # before the next batch is read
    model.train(was_training)
    return out if out is not None else np.zeros((0,), dtype=np.float32)
