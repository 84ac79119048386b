"""Train a tiny autoencoder with the Trainer in every process torchrun started, and
report (from rank 0, as JSON on stdout) what each rank saw: ``torchrun --nproc-per-node 2
ddp_toy.py OUT_DIR``. Each rank's checkpoint callback is given its own path under OUT_DIR,
so the test sees which ranks wrote."""

import hashlib
import json
import sys
from pathlib import Path

import torch

from aeclust.losses import mse
from aeclust.nn import build_autoencoder
from aeclust.training import Callback, Checkpoint, TrainConfig, Trainer, distributed

out = Path(sys.argv[1])
distributed.setup("cpu")


class Seen(Callback):
    def __init__(self):
        self.batches = []

    def on_epoch_start(self, trainer, epoch):
        self.batches.append([])


seen = Seen()


def loss_fn(model, batch):
    if model.training:  # not the validation batches
        seen.batches[-1].append(batch.index.tolist())
    return mse(model(batch.x).output, batch.x)


torch.manual_seed(0)
model = build_autoencoder("conv", (1, 8, 8), latent_dim=3)
X = torch.rand(75, 1, 8, 8, generator=torch.Generator().manual_seed(1))
cfg = TrainConfig(epochs=2, batch_size=16, val_fraction=0.2, device="cpu")
ckpt = Checkpoint(out / f"ckpt-rank{distributed.rank()}.safetensors")
history = Trainer(model, loss_fn, cfg, [seen, ckpt]).fit(X)
weights = torch.cat([t.flatten().float() for t in model.state_dict().values()])
mine = {
    "weights": hashlib.sha256(weights.numpy().tobytes()).hexdigest(),
    "batches": seen.batches,
    "history": [{k: v for k, v in h.items() if k != "seconds"} for h in history],
}
everyone = distributed.gather(mine)
if distributed.is_main():
    print(json.dumps({"world": distributed.world_size(), "ranks": everyone}))
