"""The generative pieces of Morais' thesis: the HRWAE network, its losses, the adversarial
step (n/m updates, α warm-up) and the divergence guard with its rollback."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from aeclust.errors import ConfigError
from aeclust.losses import gaussian_kl, layer_matching_loss, per_sample
from aeclust.nn import LatentDiscriminator, LatentDiscriminatorConfig, build_autoencoder
from aeclust.nn.adversarial import AdversarialAE
from aeclust.nn.hrwae import LOG_SIGMA_BOUND, depth, soft_clamp
from aeclust.training import (
    Callback,
    DivergenceGuard,
    LossStep,
    TrainConfig,
    Trainer,
    TrainingDiverged,
)
from aeclust.training.adversarial import AdversarialStep
from aeclust.training.divergence import Diverged, check_epoch
from aeclust.training.trainer import Batch
from test_engine import weights


def hrwae(shape, L=1, d=4, seed=0, **params):
    torch.manual_seed(seed)
    return build_autoencoder("hrwae", shape, d, latent_groups=L, channels=4, **params)


def adversarial(shape=(1, 8, 8), L=1, d=3, seed=0):
    gen = hrwae(shape, L, d, seed)
    discs = [LatentDiscriminator(LatentDiscriminatorConfig(d, hidden=(8,))) for _ in range(L)]
    return AdversarialAE(gen, discs)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (2, 13, 9), (1, 16, 16)])
@pytest.mark.parametrize("L", [1, 2, 3])
def test_every_group_has_a_code_and_the_output_has_the_input_shape(shape, L):
    model = hrwae(shape, L).eval()
    x = torch.rand(3, *shape)
    out = model(x)
    assert out.output.shape == x.shape
    assert [c.shape for c in out.codes] == [(3, 4)] * L
    assert len(out.priors) == len(out.matches) == L - 1
    for (f, u), (mu, log_sigma) in zip(out.matches, out.priors, strict=True):
        assert f.shape == u.shape and mu.shape == log_sigma.shape == (3, 4)
    assert model.encode_groups(x).shape == (L, 3, 4)
    assert torch.equal(model.encode(x), out.codes[0])
    assert model.generate(5).shape == (5, *shape)
    assert model.decode(out.codes[0]).shape == x.shape
    # decoding the encoder's own lower codes gives the reconstruction back
    assert torch.allclose(model.decode(out.codes[0], out.codes[1:]), out.output, atol=1e-5)


def test_depth_ends_at_2x2_also_when_the_size_is_not_a_power_of_two():
    assert depth(32, 32) == 4 and depth(28, 28) == 4 and depth(8, 8) == 2 and depth(64, 64) == 5
    assert hrwae((1, 28, 28)).sizes == [(28, 28), (14, 14), (7, 7), (4, 4), (2, 2)]
    with pytest.raises(ConfigError, match="latent_groups=3 needs at least 3 cells"):
        hrwae((1, 8, 8), L=3)
    with pytest.raises(ConfigError, match="one latent group"):
        hrwae((1, 16, 16), L=2, variational=True)


def test_the_prior_cells_spread_stays_bounded_when_their_weights_blow_up():
    model = hrwae((1, 16, 16), L=2).eval()
    with torch.no_grad():
        for p in model.prior.parameters():
            p.mul_(1e4)  # what a diverging update does to an unbounded log sigma
    _, priors = model.latents(torch.rand(4, 1, 16, 16))
    log_sigma = priors[0][1]
    assert log_sigma.abs().max() > 2.9 and log_sigma.abs().max() <= LOG_SIGMA_BOUND
    samples = model.generate(8)
    assert torch.isfinite(samples).all()
    # near 0 the bound is the identity, so small spreads learn as before
    assert torch.allclose(soft_clamp(torch.tensor([0.01, -0.2]), 3.0), torch.tensor([0.01, -0.2]),
                          atol=1e-3)  # fmt: skip


def test_non_reducing_layers_are_added_per_cell():
    plain, deeper = hrwae((1, 16, 16)), hrwae((1, 16, 16), encoder_layers=1, decoder_layers=2)
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) for net in (plain, deeper)]
    assert convs[1] - convs[0] == 3 * plain.n_cells
    assert deeper(torch.rand(2, 1, 16, 16)).output.shape == (2, 1, 16, 16)


def test_the_variational_top_group_samples_in_training_and_encodes_its_mean():
    model = hrwae((1, 8, 8), variational=True)
    x = torch.rand(4, 1, 8, 8)
    out = model.train()(x)
    assert out.logvar.shape == (4, 4) and not torch.equal(out.codes[0], out.code)
    model.eval()
    assert torch.equal(model(x).codes[0], model.encode(x))


def test_kl_matches_its_closed_form_and_a_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g) * 0.5
    var = logvar.exp()
    closed = 0.5 * (var + mu**2 - 1 - torch.log(var)).sum(1).mean()
    assert torch.isclose(gaussian_kl(mu, logvar), closed)
    q = torch.distributions.Normal(mu, var.sqrt())
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    z = q.sample((200_000,))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean()
    assert abs(float(mc) - float(closed)) < 0.02 * float(closed)
    assert gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3)) == 0


def test_layer_matching_is_cosine_dissimilarity_summed_over_pairs():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [2.0, 2.0]])  # orthogonal (1), parallel (0)
    assert torch.isclose(layer_matching_loss([(a, b)]), torch.tensor(0.5))
    assert torch.isclose(layer_matching_loss([(a, b), (a, a)]), torch.tensor(0.5))
    assert layer_matching_loss([]) == 0


def test_per_sample_reconstruction_sums_the_pixels_of_each_image():
    out, x = torch.zeros(2, 1, 2, 2), torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 1, 2, 2)
    assert torch.allclose(per_sample("mse", out, x), torch.tensor([0.0, 4.0]))
    assert torch.allclose(per_sample("bce", out, x), torch.full((2,), 4 * math.log(2)))


class Counting(AdversarialStep):
    """Counts the updates of each optimizer."""

    def configure(self, model, config):
        super().configure(model, config)
        self.counts = {"autoencoder": 0, "discriminator": 0}
        for name, opt in self.optimizers.items():
            opt.register_step_post_hook(lambda *_, n=name: self.counts.__setitem__(
                n, self.counts[n] + 1))  # fmt: skip


def test_n_and_m_updates_per_batch_with_a_first_phase():
    X = torch.rand(40, 1, 8, 8)
    step = Counting(updates=(2, 1), first_updates=(1, 3), first_epochs=1)
    history = Trainer(adversarial(), step, TrainConfig(epochs=2, batch_size=10)).fit(X)
    # 4 batches per epoch: epoch 1 with (1, 3), epoch 2 with (2, 1)
    assert step.counts == {"autoencoder": 4 * 1 + 4 * 2, "discriminator": 4 * 3 + 4 * 1}
    assert {"reconstruction", "adversarial", "discriminator", "alpha"} <= set(history[0])


def test_alpha_warms_up_step_by_step_to_its_value():
    step = AdversarialStep(alpha=2.0, warmup_steps=4)
    assert [step.alpha_at(t) for t in range(6)] == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert AdversarialStep(alpha=3.0).alpha_at(0) == 3.0
    X = torch.rand(40, 1, 8, 8)
    history = Trainer(adversarial(), step, TrainConfig(epochs=2, batch_size=10)).fit(X)
    assert history[0]["alpha"] == pytest.approx((0.5 + 1 + 1.5 + 2) / 4)
    assert history[1]["alpha"] == 2.0


def test_hierarchical_training_learns_every_group_and_the_priors():
    X = torch.rand(32, 1, 16, 16)
    model = adversarial((1, 16, 16), L=2)
    before = [p.clone() for p in model.generator.prior.parameters()]
    step = AdversarialStep(loss="mse", layer_matching=1.0)
    history = Trainer(model, step, TrainConfig(epochs=2, batch_size=16)).fit(X)
    assert "layer_matching" in history[0]
    after = list(model.generator.prior.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


class NaNAt(Counting):
    """Puts a NaN into a weight of the generator after its update at the given global
    steps: the next step's losses are NaN (a forced divergence)."""

    def __init__(self, at, **kw):
        super().__init__(**kw)
        self.at = set(at)

    def __call__(self, trainer, batch):
        logs = super().__call__(trainer, batch)
        if trainer.global_step in self.at:
            self.at.discard(trainer.global_step)
            with torch.no_grad():
                next(trainer.module.generator.parameters()).view(-1)[0] = float("nan")
        return logs


class HalveAfter(Callback):
    """Halves every learning rate at the end of one epoch: what a rollback to that epoch
    does, written out."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            for opt in trainer.step.optimizers.values():
                for group in opt.param_groups:
                    group["lr"] *= 0.5


def test_a_nan_rolls_back_to_the_last_epoch_at_a_lower_learning_rate():
    X = torch.rand(40, 1, 8, 8)
    guard = DivergenceGuard(max_rollbacks=3, lr_factor=0.5)
    cfg = TrainConfig(epochs=3, batch_size=10, divergence=guard)
    step = NaNAt({5})  # in epoch 2 (steps 4..7): step 6 sees the NaN weight
    trainer = Trainer(adversarial(), step, cfg)
    history = trainer.fit(X)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert "diverged" not in history[0] and "became nan at step 7" in history[1]["diverged"]
    assert history[1]["rollbacks"] == 1 and history[1]["lr_scale"] == 0.5
    assert [o.param_groups[0]["lr"] for o in step.optimizers.values()] == [5e-4, 5e-4]
    assert trainer.rollbacks == 1 and trainer.global_step == 12
    # the same as epoch 1 at lr, then epochs 2 and 3 at lr / 2 from epoch 1's state
    reference = adversarial()
    Trainer(reference, Counting(), TrainConfig(epochs=3, batch_size=10), [HalveAfter(1)]).fit(X)
    assert torch.isfinite(weights(trainer.module)).all()
    assert torch.equal(weights(trainer.module), weights(reference))


def test_an_exploding_loss_is_a_divergence_and_too_many_stop_the_fit():
    X = torch.rand(40, 1, 8, 8)

    class Explodes(AdversarialStep):
        def __call__(self, trainer, batch):
            logs = super().__call__(trainer, batch)
            if trainer.epoch == 2:  # every step of epoch 2, whatever the learning rate
                logs["loss"] = logs["loss"] * 1e6
            return logs

    cfg = TrainConfig(epochs=3, batch_size=10, divergence=DivergenceGuard(max_rollbacks=2))
    with pytest.raises(TrainingDiverged, match="after 2 rollback.*x0.25.*Lower lr"):
        Trainer(adversarial(), Explodes(), cfg).fit(X)
    cfg = TrainConfig(epochs=1, batch_size=10, divergence=DivergenceGuard(max_rollbacks=0))
    with pytest.raises(TrainingDiverged, match="became nan at step 4 .* after 0 rollback"):
        Trainer(adversarial(), NaNAt({2}), cfg).fit(X)


def test_an_epoch_whose_discriminator_loss_jumps_is_rolled_back_though_no_step_exploded():
    X = torch.rand(40, 1, 8, 8)

    class Oscillates(AdversarialStep):  # epoch 2 goes wrong once, at the first learning rate
        def __call__(self, trainer, batch):
            logs = super().__call__(trainer, batch)
            if trainer.epoch == 2 and not trainer.rollbacks:
                logs["discriminator"] = logs["discriminator"] * 20  # 20x: a step allows 1000x
            return logs

    cfg = TrainConfig(epochs=3, batch_size=10, divergence=DivergenceGuard())
    trainer = Trainer(adversarial(), Oscillates(), cfg)
    history = trainer.fit(X)
    assert [h["epoch"] for h in history] == [1, 2, 3] and trainer.rollbacks == 1
    assert "discriminator's mean over epoch 2 jumped to" in history[1]["diverged"]
    assert history[1]["lr_scale"] == 0.5 and "diverged" not in history[2]
    guard, last = DivergenceGuard(), [{"discriminator": 0.5, "loss": 1.0}]
    check_epoch({"discriminator": 2.4, "loss": 100.0}, last, guard, 2)  # 4.8x; loss: no term
    check_epoch({"discriminator": 1.9}, [{"discriminator": 0.01}], guard, 2)  # below the floor
    check_epoch({"discriminator": 9.0}, [], guard, 1)  # no epoch before
    with pytest.raises(Diverged, match="more than 5 x the epoch before"):
        check_epoch({"discriminator": 2.6}, last, guard, 2)


def test_without_a_guard_a_nan_loss_still_stops_with_the_old_advice():
    X = torch.rand(20, 1, 8, 8)

    def nan_loss(model, batch):
        return model(batch.x).output.sum() * float("nan")

    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        Trainer(hrwae((1, 8, 8)), LossStep(nan_loss), TrainConfig(epochs=1, batch_size=10)).fit(X)


@pytest.mark.parametrize("interrupt, nan_after_resume", [(9, ()), (5, (6,))])
def test_an_interrupted_hierarchical_run_with_noise_weights_and_a_rollback_resumes_bit_for_bit(
    tmp_path, interrupt, nan_after_resume
):
    """Interrupted after the rollback (step 9), or before it in the same epoch (step 5):
    the checkpoint then carries the epoch's start, where the resumed run rolls back to."""
    from aeclust.training import Checkpoint, TrainingInterrupted, read_state
    from aeclust.training.noise_attention import NoiseAttention
    from test_engine import InterruptAt

    X = torch.rand(40, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    guard = DivergenceGuard()
    cfg = TrainConfig(epochs=3, batch_size=10, divergence=guard, lr_schedule="cosine")

    def run(callbacks, state=None, nan_at=(6,)):
        model = adversarial((1, 16, 16), L=2)
        step = NaNAt(set(nan_at), updates=(1, 2), warmup_steps=5, layer_matching=0.5)
        noise = NoiseAttention(1, 0.5, lambda: np.arange(40) % 3 == 0)
        trainer = Trainer(model, step, cfg, [noise, *callbacks])
        return model, trainer, trainer.fit(X, state=state)

    a, _, history = run([])
    assert "diverged" in history[1]
    ckpt = tmp_path / "ckpt.safetensors"
    with pytest.raises(TrainingInterrupted):
        run([InterruptAt(interrupt), Checkpoint(ckpt)])
    state = read_state(ckpt)
    assert ("good" in state) == (state["position"] is not None)
    b, _, resumed = run([Checkpoint(ckpt)], state=state, nan_at=nan_after_resume)
    assert torch.equal(weights(b), weights(a))
    assert [h["loss"] for h in resumed] == [h["loss"] for h in history]


class ShiftedCodes(torch.nn.Module):
    """A stand-in generator whose codes are N(3, 0.1²), far from the prior N(0, I)."""

    def latents(self, x):
        return [3 + 0.1 * torch.randn(len(x), 3)], []


def test_the_discriminator_sees_where_the_codes_sit_and_how_wide_they_spread():
    torch.manual_seed(0)
    model = AdversarialAE(ShiftedCodes(), [LatentDiscriminator(LatentDiscriminatorConfig(3))])
    opt = torch.optim.Adam(model.discriminators.parameters(), lr=1e-3)
    from aeclust.losses import relativistic_d_loss

    for _ in range(60):
        _, (real,), (fake,) = model(torch.zeros(64, 1), part="discriminator")
        loss = relativistic_d_loss(real, fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss < 0.05  # one batch of both: batch norm keeps the difference in mean and scale


def test_each_update_changes_only_its_own_networks():
    X, index = torch.rand(16, 1, 16, 16), torch.arange(16)
    model = adversarial((1, 16, 16), L=2).train()
    seen = []

    class Watch(AdversarialStep):
        def _discriminator_loss(self, trainer, batch):  # right after the generator's update
            seen.append([p.grad for p in model.discriminators.parameters()])
            return super()._discriminator_loss(trainer, batch)

    trainer = Trainer(model, Watch(loss="mse"), TrainConfig(epochs=0, batch_size=16))
    step = trainer.step
    step.configure(model, trainer.config)
    step(trainer, Batch(X, index))
    assert all(g is None for g in seen[0])  # the generator's backward left them alone
    gen = {k: v.clone() for k, v in model.generator.state_dict().items()}
    dis = {k: v.clone() for k, v in model.discriminators.state_dict().items()}
    d_loss = step._discriminator_loss(trainer, Batch(X, index))
    step.optimizers["discriminator"].zero_grad()
    d_loss.backward()
    step.optimizers["discriminator"].step()
    # the generator's weights and batch-norm statistics are as they were
    assert all(torch.equal(v, model.generator.state_dict()[k]) for k, v in gen.items())
    assert any(not torch.equal(v, model.discriminators.state_dict()[k]) for k, v in dis.items())


def test_per_sample_weights_scale_each_images_reconstruction():
    X = torch.rand(8, 1, 8, 8)
    model = adversarial().eval()
    trainer = Trainer(model, AdversarialStep(loss="mse"), TrainConfig(epochs=0, batch_size=8))
    trainer.step.configure(model, trainer.config)
    plain = trainer.step._generator_losses(trainer, Batch(X, torch.arange(8)), 1.0)
    weight = torch.tensor([1.0, 2, 1, 1, 1, 1, 1, 3])
    weighted = trainer.step._generator_losses(trainer, Batch(X, torch.arange(8), weight), 1.0)
    per_image = per_sample("mse", model.generator(X).output, X)
    assert torch.isclose(weighted["reconstruction"], (per_image * weight).mean())
    assert torch.isclose(plain["reconstruction"], per_image.mean())
