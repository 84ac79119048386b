"""Train a tiny WAE-GAN (an AdversarialAE with its AdversarialStep: two optimizers, parts
of the model per update) with the Trainer in every process torchrun started, and report
from rank 0, as JSON on stdout, each rank's weights and the prior samples it drew in its
first step: ``torchrun --nproc-per-node 2 ddp_adversarial.py``."""

import hashlib
import json

import torch

from aeclust.nn import (
    LatentDiscriminator,
    LatentDiscriminatorConfig,
    adversarial,
    build_autoencoder,
)
from aeclust.training import TrainConfig, Trainer, distributed
from aeclust.training.adversarial import AdversarialStep

distributed.setup("cpu")
drawn = []
prior_samples = adversarial.prior_samples


def recording(codes, priors):
    reals = prior_samples(codes, priors)
    drawn.append([r[:2].flatten().tolist() for r in reals])
    return reals


adversarial.prior_samples = recording
torch.manual_seed(0)
gen = build_autoencoder("hrwae", (1, 8, 8), 3, latent_groups=2, channels=4)
discs = [LatentDiscriminator(LatentDiscriminatorConfig(3, hidden=(8,))) for _ in range(2)]
model = adversarial.AdversarialAE(gen, discs)
X = torch.rand(64, 1, 8, 8, generator=torch.Generator().manual_seed(1))
cfg = TrainConfig(epochs=2, batch_size=16, val_fraction=0.0, device="cpu")
history = Trainer(model, AdversarialStep(loss="mse", warmup_steps=2), cfg).fit(X)
weights = torch.cat([t.flatten().float() for t in model.state_dict().values()])
mine = {
    "weights": hashlib.sha256(weights.numpy().tobytes()).hexdigest(),
    "first_prior_samples": drawn[0],
    "history": [{k: v for k, v in h.items() if k != "seconds"} for h in history],
}
everyone = distributed.gather(mine)
if distributed.is_main():
    print(json.dumps({"world": distributed.world_size(), "ranks": everyone}))
distributed.teardown()  # explicitly, before the interpreter shuts its threads down
