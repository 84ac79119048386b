"""The training engine: steps, optimizers by name, per-sample weights, saved state and
resuming (in process; the killed-process tests are in test_resume.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from aeclust import AEClusterer, DCAEKMeans
from aeclust.errors import ConfigError
from aeclust.losses import mse
from aeclust.nn import build_autoencoder
from aeclust.training import (
    Callback,
    Checkpoint,
    LossStep,
    Step,
    TrainConfig,
    Trainer,
    TrainingInterrupted,
    build_optimizer,
    read_state,
    write_state,
)
from aeclust.training.trainer import batch_bounds


def images(n=90, seed=0):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


def recon(model, batch):
    return mse(model(batch.x).output, batch.x)


def weights(model) -> torch.Tensor:
    return torch.cat([t.flatten().float() for t in model.state_dict().values()])


def old_loop(model, X, epochs, batch_size, lr, seed):
    """The loop as it was before steps (Adam built in fit, one backward per batch), written
    out plainly: the engine must give the same bits on any machine."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(X), generator=generator)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        index = order[torch.randperm(len(order), generator=generator)]
        for start, stop in batch_bounds(len(index), batch_size):
            x = X[index[start:stop]]
            loss = mse(model(x).output, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def test_loss_step_gives_the_bits_of_the_old_loop():
    X = images()
    torch.manual_seed(0)
    a = build_autoencoder("conv", (1, 8, 8), latent_dim=3)
    b = build_autoencoder("conv", (1, 8, 8), latent_dim=3)
    b.load_state_dict(a.state_dict())
    old_loop(a, X, epochs=3, batch_size=16, lr=1e-3, seed=7)
    Trainer(b, LossStep(recon), TrainConfig(epochs=3, batch_size=16, seed=7)).fit(X)
    assert torch.equal(weights(a), weights(b))


class AdversarialStep(Step):
    """A tiny GAN-like pair: a generator (the model's "g") trained n times per batch to fool
    a discriminator ("d") trained m times, each with its own optimizer."""

    def __init__(self, n=1, m=2):
        self.n, self.m = n, m

    def configure(self, model, config):
        self.optimizers = {
            "g": build_optimizer(model["g"].parameters(), "adam", lr=1e-2, betas=[0.5, 0.9]),
            "d": build_optimizer(model["d"].parameters(), "rmsprop", lr=1e-2),
        }
        self.schedulers = {}

    def losses(self, model, x):
        fake = model["g"](torch.randn(len(x), 2))
        real_score, fake_score = model["d"](x.flatten(1)), model["d"](fake)
        d_loss = nn.functional.softplus(fake_score - real_score).mean()
        return d_loss, nn.functional.softplus(real_score.detach() - fake_score).mean()

    def __call__(self, trainer, batch):
        for _ in range(self.m):
            d_loss, _ = self.losses(trainer.model, batch.x)
            self.optimizers["d"].zero_grad()
            d_loss.backward()
            self.optimizers["d"].step()
        for _ in range(self.n):
            _, g_loss = self.losses(trainer.model, batch.x)
            self.optimizers["g"].zero_grad()
            g_loss.backward()
            self.optimizers["g"].step()
        return {"loss": d_loss + g_loss, "d": d_loss, "g": g_loss}

    def evaluate(self, trainer, batch):
        d_loss, g_loss = self.losses(trainer.model, batch.x)
        return {"loss": d_loss + g_loss}


def adversarial_pair(seed=0):
    torch.manual_seed(seed)
    return nn.ModuleDict({"g": nn.Linear(2, 64), "d": nn.Linear(64, 1)})


def test_two_optimizers_train_and_resume_from_a_checkpoint(tmp_path):
    X = images(64)
    cfg = TrainConfig(epochs=4, batch_size=16)
    straight = adversarial_pair()
    history = Trainer(straight, AdversarialStep(), cfg).fit(X)
    assert {"d", "g"} <= set(history[0]) and len(history) == 4
    # two epochs, saved to disk; then two more from the file, in a new trainer
    half = adversarial_pair()
    ckpt = tmp_path / "gan.safetensors"
    Trainer(half, AdversarialStep(), TrainConfig(epochs=2, batch_size=16), [Checkpoint(ckpt)]).fit(
        X
    )
    state = read_state(ckpt)
    assert set(state["step"]["optimizers"]) == {"g", "d"}
    assert state["step"]["optimizers"]["g"]["param_groups"][0]["betas"] == (0.5, 0.9)
    resumed = adversarial_pair(seed=99)  # other initial weights: all must come from the file
    torch.manual_seed(1234)  # and another global RNG state (the generator's noise uses it)
    Trainer(resumed, AdversarialStep(), cfg).fit(X, state=state)
    assert torch.equal(weights(resumed), weights(straight))


class InterruptAt(Callback):
    """Acts as Ctrl-C would, after global step ``at``."""

    def __init__(self, at):
        self.at = at

    def on_batch_end(self, trainer, logs):
        if trainer.global_step == self.at:
            trainer._sigint = True


BF16 = torch.ops.mkldnn._is_mkldnn_bf16_supported()


@pytest.mark.parametrize(
    "at, precision",
    [(3, "fp32"), (5, "fp32"),  # within epoch 1 (of 5 batches), and at its end
     pytest.param(3, "bf16", marks=pytest.mark.skipif(not BF16, reason="no bf16 on this CPU"))],
)  # fmt: skip
def test_interrupted_mid_epoch_resumes_bit_for_bit(tmp_path, at, precision):
    """bf16 adds channels-last weights and the fused Adam, whose moments must come back in
    the weights' memory layout."""
    X = images()
    cfg = TrainConfig(epochs=3, batch_size=16, lr_schedule="cosine", val_fraction=0.1,
                      precision=precision)  # fmt: skip

    def model():
        torch.manual_seed(3)
        return build_autoencoder("conv", (1, 8, 8), latent_dim=3)

    def augment(x, generator):  # draws from the trainer's generator, as RandomAffine does
        return x + 0.01 * torch.rand(x.shape, generator=generator)

    cfg.augment = augment
    a = model()
    history = Trainer(a, recon, cfg).fit(X)
    b, ckpt = model(), tmp_path / "ckpt.safetensors"
    with pytest.raises(TrainingInterrupted):
        Trainer(b, recon, cfg, [InterruptAt(at), Checkpoint(ckpt)]).fit(X)
    state = read_state(ckpt)
    assert (state["position"] is None) == (at == 5)
    c = model()
    resumed = Trainer(c, recon, cfg, [InterruptAt(-1), Checkpoint(ckpt)]).fit(X, state=state)
    assert torch.equal(weights(c), weights(a))
    assert [h["loss"] for h in resumed] == [h["loss"] for h in history]
    assert read_state(ckpt)["epoch"] == 3


def test_checkpoint_of_other_settings_or_data_is_refused_by_name(tmp_path, digits_small):
    X = digits_small[0][:80]
    fast = dict(epochs=1, batch_size=32, n_clusters=3, random_state=0)
    AEClusterer(**fast, checkpoint=str(tmp_path)).fit(X)
    with pytest.raises(ConfigError, match=r"params\.lr: 0\.001 there, 0\.01 here"):
        AEClusterer(**fast, lr=0.01).fit(X, resume=tmp_path)
    with pytest.raises(ConfigError, match=r"data\.sha256"):
        AEClusterer(**fast).fit(X[::-1].copy(), resume=tmp_path)
    with pytest.raises(ConfigError, match="estimator: 'AEClusterer' there, 'DCAEKMeans'"):
        DCAEKMeans(n_clusters=3, epochs=1, batch_size=32, random_state=0).fit(X, resume=tmp_path)
    with pytest.raises(ConfigError, match="Nothing to resume"):
        AEClusterer(**fast).fit(X, resume=tmp_path / "missing")
    again = AEClusterer(**fast).fit(X, resume=tmp_path)  # same settings: the finished phase
    assert len(again.history_) == 1  # is not trained again


def test_optimizers_by_name_and_their_settings():
    X = images()

    def train(**cfg):
        torch.manual_seed(0)
        model = build_autoencoder("mlp", (1, 8, 8), latent_dim=2, hidden=(8,))
        Trainer(model, recon, TrainConfig(epochs=2, batch_size=16, **cfg)).fit(X)
        return weights(model)

    adam = train()
    assert torch.equal(adam, train(optimizer="adam"))
    assert not torch.equal(adam, train(optimizer="adamw", weight_decay=0.1))
    for name, params in [("sgd", {"momentum": 0.9}), ("rmsprop", {"alpha": 0.9})]:
        assert not torch.equal(adam, train(optimizer=name, optimizer_params=params))
    with pytest.raises(
        ConfigError, match="optimizer 'sgd' has no setting 'betas'; its settings are momentum"
    ):
        train(optimizer="sgd", optimizer_params={"betas": (0.9, 0.99)})
    with pytest.raises(ConfigError, match="optimizer"):
        train(optimizer="lbfgs")


def test_per_sample_weights_reach_the_loss_and_are_saved(tmp_path):
    X = images(40)
    seen = []

    def weighted(model, batch):
        seen.append((batch.index.clone(), batch.weight.clone()))
        per_sample = (model(batch.x).output - batch.x).pow(2).flatten(1).mean(1)
        return (batch.weight * per_sample).mean()

    w = torch.linspace(0, 1, 40)
    step = LossStep(weighted, sample_weight=w)
    model = build_autoencoder("mlp", (1, 8, 8), latent_dim=2, hidden=(8,))
    Trainer(model, step, TrainConfig(epochs=1, batch_size=8)).fit(X)
    assert all(torch.equal(weight, w[index]) for index, weight in seen)
    write_state(tmp_path / "s.safetensors", {"step": step.state_dict()})
    assert torch.equal(read_state(tmp_path / "s.safetensors")["step"]["sample_weight"], w)


def test_state_files_round_trip_what_json_cannot_hold(tmp_path):
    state = {1: (np.arange(3), float("inf")), "g": torch.Generator().get_state(), "n": None}
    write_state(tmp_path / "x.safetensors", state)
    back = read_state(tmp_path / "x.safetensors")
    assert list(back) == [1, "g", "n"] and back["n"] is None
    assert np.array_equal(back[1][0], np.arange(3)) and back[1][1] == float("inf")
    assert torch.equal(back["g"], state["g"])


def test_idec_and_dcec_share_decs_parameters_with_their_own_defaults():
    from aeclust import DCEC, DEC, IDEC

    dec, idec, dcec = DEC().get_params(), IDEC().get_params(), DCEC().get_params()
    assert set(idec) == set(dec) | {"gamma"} and set(dcec) == set(idec)
    assert (idec["gamma"], dcec["autoencoder"], idec["autoencoder"]) == (0.1, "conv", "mlp")
    assert {**dcec, "autoencoder": "mlp"} == idec
    assert IDEC(gamma=0.5, n_clusters=3).get_params()["n_clusters"] == 3
    with pytest.raises(TypeError, match="DCEC\\(\\): got an unexpected keyword argument 'lam'"):
        DCEC(lam=0.2)


def test_estimators_pass_the_optimizer_to_training(digits_small):
    X = digits_small[0][:64]
    fast = dict(epochs=1, batch_size=32, n_clusters=3, random_state=0)
    adam = AEClusterer(**fast).fit(X).transform(X)
    sgd = AEClusterer(**fast, optimizer="sgd", optimizer_params={"momentum": 0.9}).fit(X)
    assert not np.array_equal(adam, sgd.transform(X))
    with pytest.raises(ConfigError, match="has no setting 'momentum'"):
        DCAEKMeans(n_clusters=3, optimizer_params={"momentum": 0.9}).fit(X)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_a_memory_map_trains_as_the_same_images_in_memory_and_is_read_in_batches(
    tmp_path, monkeypatch, dtype
):
    from sklearn.datasets import load_digits

    from aeclust import DEC
    from aeclust.data import MappedImages, load_array, mapped

    d = load_digits()
    X = (d.images[:1500] / 16)[:, None]
    X = (X * 255).astype(np.uint8) if dtype == "uint8" else X.astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    in_memory = load_array(tmp_path / "x.npy").X  # uint8 / 255, as the file loader reads it
    reads = []
    original = MappedImages.__getitem__
    monkeypatch.setattr(mapped, "CHUNK_BYTES", 300 * 64 * 4)  # streaming passes: 300 rows
    monkeypatch.setattr(MappedImages, "__getitem__", lambda s, i: reads.append(
        len(original(s, i))) or original(s, i))  # fmt: skip
    settings = dict(n_clusters=3, pretrain_epochs=1, epochs=1, batch_size=64, n_init=1,
                    loss="bce", autoencoder_params={"hidden": [32]}, random_state=0)  # fmt: skip
    a = DEC(**settings).fit(in_memory)
    b = DEC(**settings, checkpoint=str(tmp_path / "ckpt")).fit(MappedImages(tmp_path / "x.npy"))
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_)
    assert max(reads) <= 1024 < len(X)  # batches, encoding chunks and passes; never all


def test_bf16_autocasts_the_training_step_only():
    X = images()
    seen = []

    def loss_fn(model, batch):
        out = model(batch.x).output
        seen.append((model.training, out.dtype))
        return mse(out.float(), batch.x)

    torch.manual_seed(0)
    model = build_autoencoder("conv", (1, 8, 8), latent_dim=3)
    cfg = TrainConfig(epochs=1, batch_size=32, val_fraction=0.2, precision="bf16")
    try:
        history = Trainer(model, loss_fn, cfg).fit(X)
    except ConfigError as exc:  # a CPU without bf16 refuses it up front
        assert "no bfloat16" in str(exc)
        return
    assert (True, torch.bfloat16) in seen and (False, torch.float32) in seen  # val in fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    assert np.isfinite(history[0]["loss"]) and np.isfinite(history[0]["val_loss"])
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp16").validate()


def test_a_fresh_fit_clears_old_phases_and_an_unseeded_fit_cannot_resume(tmp_path, digits_small):
    X = digits_small[0][:64]
    fast = dict(epochs=1, batch_size=32, n_clusters=3)
    DCAEKMeans(**fast, warmup_epochs=1, random_state=0, checkpoint=str(tmp_path)).fit(X)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "autoencoder.safetensors",
        "clustering.safetensors",
    ]
    (tmp_path / "notes.safetensors").write_bytes(b"not ours")  # left alone
    DCAEKMeans(**fast, random_state=0, checkpoint=str(tmp_path)).fit(X)  # no warm-up phase
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clustering.safetensors",
        "notes.safetensors",
    ]
    (tmp_path / "notes.safetensors").unlink()
    AEClusterer(**fast, checkpoint=str(tmp_path / "a")).fit(X)  # random_state=None: a seed
    with pytest.raises(ConfigError, match="seed: "):  # is drawn, and another one next time
        AEClusterer(**fast).fit(X, resume=tmp_path / "a")
