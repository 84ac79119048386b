"""The training step of WAE-GAN and HRWAE-GAN (Morais' thesis, section 4.3, Fig. 3.4).

Each mini-batch gives n updates of the autoencoder, then m of the discriminators, on the
same batch. The autoencoder minimises eq. 3.9,

    L = L_R + α_t · L_G + κ · L_I        (+ β · L_N through the per-sample weights)

- L_R: the reconstruction loss of each image summed over its pixels (BCE or MSE), averaged
  over the batch with the per-sample weights (1, or 1 + β for the points that noise
  attention marked; :mod:`aeclust.training.noise_attention`), which is L_R + β·L_N;
- L_G: the relativistic generator loss summed over the groups with weights α_l =
  ``group_decay`` ** l (eq. 3.6: decreasing, α_0 = 1 so that L = 1 is the plain WAE-GAN);
- L_I: layer matching (eq. 3.10), weighted by κ = ``layer_matching``;
- α_t = α · min(1, (t + 1) / ``warmup_steps``): the warm-up of section 4.3.3, rising at
  every step t (``trainer.global_step``) from about 0 to α.

The discriminators score prior samples and codes in one batch
(:class:`~aeclust.nn.adversarial.AdversarialAE`); their parameters take no gradient in the
autoencoder's updates, and the autoencoder's batch-norm statistics do not move in theirs.

The discriminators minimise eq. 3.5 with the same group weights. ``updates=(n, m)``;
``first_updates=(n1, m1)`` for the first ``first_epochs`` epochs gives the two-phase
schedule of section 4.3.2 (e.g. m1 > n1 so the discriminators learn first). The
discriminators have their own optimizer, of the same kind, with ``discriminator_lr``
(default: the autoencoder's learning rate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..losses import hierarchical_losses, layer_matching_loss, per_sample
from .optim import build_scheduler
from .steps import Step, autocast, optimizer_from_config

if TYPE_CHECKING:
    from .config import TrainConfig
    from .trainer import Batch, Trainer


class AdversarialStep(Step):
    """n autoencoder and m discriminator updates per batch of an
    :class:`~aeclust.nn.adversarial.AdversarialAE`; see the module's docstring."""

    def __init__(
        self,
        loss: str = "bce",
        alpha: float = 1.0,
        warmup_steps: int = 0,
        layer_matching: float = 0.0,
        updates: tuple[int, int] = (1, 1),
        first_updates: tuple[int, int] | None = None,
        first_epochs: int = 0,
        group_decay: float = 0.5,
        discriminator_lr: float | None = None,
    ):
        for name, pair in (("updates", updates), ("first_updates", first_updates or (1, 1))):
            if len(pair) != 2 or any(int(u) != u or u < 1 for u in pair):
                raise ValueError(f"{name} must be two positive integers (n, m); got {pair!r}")
        self.loss, self.alpha, self.warmup_steps = loss, float(alpha), int(warmup_steps)
        self.layer_matching, self.group_decay = float(layer_matching), float(group_decay)
        self.updates, self.first_updates = tuple(updates), tuple(first_updates or updates)
        self.first_epochs, self.discriminator_lr = int(first_epochs), discriminator_lr

    def configure(self, model: nn.Module, config: TrainConfig) -> None:
        self.precision = config.precision
        gen = optimizer_from_config(model.generator.parameters(), config)
        dis = optimizer_from_config(model.discriminators.parameters(), config)
        if self.discriminator_lr is not None:
            for group in dis.param_groups:
                group["lr"] = self.discriminator_lr
        self.optimizers = {"autoencoder": gen, "discriminator": dis}
        self.schedulers = {}
        for name, opt in self.optimizers.items():
            scheduler = build_scheduler(opt, config.lr_schedule, config.epochs)
            if scheduler is not None:
                self.schedulers[name] = scheduler
        self.group_alphas = [self.group_decay**g for g in range(len(model.discriminators))]

    def alpha_at(self, step: int) -> float:
        """α_t at global step ``step`` (0-based), the warm-up of section 4.3.3."""
        if self.warmup_steps <= 0:
            return self.alpha
        return self.alpha * min(1.0, (step + 1) / self.warmup_steps)

    def updates_at(self, epoch: int) -> tuple[int, int]:
        """(n, m) in ``epoch`` (1-based): ``first_updates`` up to ``first_epochs``."""
        return self.first_updates if epoch <= self.first_epochs else self.updates

    def _generator_losses(self, trainer: Trainer, batch: Batch, alpha: float) -> dict:
        with autocast(trainer, self.precision if trainer.model.training else "fp32"):
            out, d_real, d_fake = trainer.model(batch.x, part="generator")
            rec = per_sample(self.loss, out.output.float(), batch.x)
            rec = (rec * batch.weight).mean() if batch.weight is not None else rec.mean()
            _, adv = hierarchical_losses(d_real, d_fake, self.group_alphas)
            match = layer_matching_loss(out.matches)
        loss = rec + alpha * adv.float() + self.layer_matching * match.float()
        logs = {"loss": loss, "reconstruction": rec, "adversarial": adv.float()}
        if out.matches:
            logs["layer_matching"] = match.float()
        return logs

    def _discriminator_loss(self, trainer: Trainer, batch: Batch):
        with autocast(trainer, self.precision if trainer.model.training else "fp32"):
            _, d_real, d_fake = trainer.model(batch.x, part="discriminator")
            d_loss, _ = hierarchical_losses(d_real, d_fake, self.group_alphas)
        return d_loss.float()

    def __call__(self, trainer: Trainer, batch: Batch) -> dict:
        batch = self.weighted(batch)
        n, m = self.updates_at(trainer.epoch)
        alpha = self.alpha_at(trainer.global_step)
        gen, dis = self.optimizers["autoencoder"], self.optimizers["discriminator"]
        d_params = [p for g in dis.param_groups for p in g["params"]]
        for p in d_params:  # the generator's updates need no gradients of the discriminators
            p.requires_grad_(False)
        try:
            for _ in range(n):
                logs = self._generator_losses(trainer, batch, alpha)
                gen.zero_grad(set_to_none=True)
                logs["loss"].backward()
                gen.step()
        finally:
            for p in d_params:
                p.requires_grad_(True)
        for _ in range(m):
            d_loss = self._discriminator_loss(trainer, batch)
            dis.zero_grad(set_to_none=True)
            d_loss.backward()
            dis.step()
        return {**logs, "discriminator": d_loss, "alpha": alpha}

    @torch.no_grad()
    def evaluate(self, trainer: Trainer, batch: Batch) -> dict:
        """The losses at the α of the last step, comparable with the training losses."""
        logs = self._generator_losses(trainer, batch, self.alpha_at(trainer.global_step - 1))
        return {**logs, "discriminator": self._discriminator_loss(trainer, batch)}
