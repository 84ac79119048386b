"""How close does training come to the CPU's (or GPU's) full speed?

For every registered autoencoder (or ``--models``), trains through aeclust's Trainer on
images of the size the README's jobs use (28x28 grey, as Fashion-MNIST; 32x32 RGB for the
histology zoo models with ``--zoo-tiles``), and prints one JSON line per setting:

- ``matmul_gflops``: a 2048^3 fp32 matmul measured right before and right after the model
  (the machine is shared and noisy; the fraction is taken against their mean);
- ``samples_per_s``: training throughput after a warm-up, in steady state;
- ``gflop_per_sample``: forward + backward FLOPs of one sample (torch's FLOP counter);
- ``gflops`` = samples/s x FLOPs, and ``fraction`` = gflops / matmul rate.

Settings compared on ``--tune`` models: batch size, channels-last memory, the fused Adam,
torch.compile, and precision fp32 / bf16. Run from the repository root with nothing else
running:

    python bench/throughput.py | tee -a bench/results/throughput.jsonl

Never run by the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from aeclust.losses import mse
from aeclust.nn import AUTOENCODERS, build_autoencoder
from aeclust.training import Callback, LossStep, TrainConfig, Trainer

MATMUL_N = 2048


def matmul_gflops(device: torch.device, repeats: int = 8) -> float:
    a = torch.randn(MATMUL_N, MATMUL_N, device=device)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * MATMUL_N**3 / best / 1e9


def flops_per_sample(model, shape, batch: int = 8) -> float:
    x = torch.rand(batch, *shape)
    with FlopCounterMode(display=False) as counter:
        out = model(x).output
        mse(out, x).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


class StepClock(Callback):
    """Times the steps after ``warmup`` of them."""

    def __init__(self, warmup: int):
        self.warmup, self.times = warmup, []

    def on_batch_end(self, trainer, logs):
        self.times.append(time.perf_counter())


def loss_fn(model, batch):
    return mse(model(batch.x).output, batch.x)


def measure(name, shape, batch, steps, channels_last, fused, compile_, precision, device):
    torch.manual_seed(0)
    model = build_autoencoder(name, shape)
    flops = flops_per_sample(model, shape)
    X = torch.rand(batch * steps, *shape)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        X = X.contiguous(memory_format=torch.channels_last)
    net = torch.compile(model) if compile_ else model
    clock = StepClock(warmup=max(3, steps // 5))
    cfg = TrainConfig(epochs=1, batch_size=batch, device=str(device), precision=precision,
                      optimizer_params={"fused": True} if fused else None)  # fmt: skip
    before = matmul_gflops(device)
    Trainer(net, LossStep(loss_fn), cfg, [clock]).fit(X)
    after = matmul_gflops(device)
    t = clock.times[clock.warmup :]
    rate = (len(t) - 1) * batch / (t[-1] - t[0])
    reference = (before + after) / 2
    return {
        "bench": "throughput", "model": name, "input": list(shape), "batch_size": batch,
        "channels_last": channels_last, "fused_adam": fused, "compile": compile_,
        "precision": precision, "device": str(device), "threads": torch.get_num_threads(),
        "matmul_gflops": [round(before, 1), round(after, 1)],
        "samples_per_s": round(rate, 1), "gflop_per_sample": round(flops / 1e9, 4),
        "gflops": round(rate * flops / 1e9, 1),
        "fraction": round(rate * flops / 1e9 / reference, 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=sorted(AUTOENCODERS))
    parser.add_argument("--tune", nargs="*", default=["conv"], help="models to tune settings on")
    parser.add_argument("--seconds", type=float, default=8.0, help="rough time per setting")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    for name in args.models:
        shape = (
            (3, 32, 32)
            if name in ("conv-pool", "conv-nopool", "alexnet", "resnet")
            else (1, 28, 28)
        )
        grid = [(64, False, False, False), (256, False, False, False)]
        if name in args.tune:
            options = itertools.product((64, 256), (False, True), (False, True), (False, True))
            grid += [(b, cl, fu, co) for b, cl, fu, co in options if cl or fu or co]
        # steps per setting from a short probe, so that each takes about --seconds
        probe = measure(name, shape, 64, 12, False, False, False, "fp32", device)
        for batch, cl, fused, comp in grid:
            steps = max(12, int(args.seconds * probe["samples_per_s"] / batch))
            for precision in ("fp32", "bf16"):
                try:
                    row = measure(name, shape, batch, steps, cl, fused, comp, precision, device)
                except Exception as exc:  # noqa: BLE001 - a setting this machine lacks
                    error = f"{type(exc).__name__}: {exc}"[:300]
                    row = {"bench": "throughput", "model": name, "batch_size": batch,
                           "channels_last": cl, "fused_adam": fused, "compile": comp,
                           "precision": precision, "error": error}  # fmt: skip
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
