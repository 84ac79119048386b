import io
import re

import numpy as np
import pytest
import torch

from aeclust.errors import ConfigError
from aeclust.losses import bce, mse
from aeclust.nn import build_autoencoder
from aeclust.progress import progress
from aeclust.training import (
    Callback,
    Checkpoint,
    EarlyStopping,
    ProgressBar,
    TrainConfig,
    Trainer,
    read_state,
)


def toy_images(n=128, seed=0):
    """Images that are mixtures of 3 fixed patterns: learnable with a tiny code."""
    rng = np.random.default_rng(seed)
    patterns = rng.random((3, 1, 8, 8)).astype(np.float32)
    weights = rng.random((n, 3)).astype(np.float32)
    return np.einsum("nk,kchw->nchw", weights, patterns) / 3


def recon(model, batch):
    return mse(model(batch.x).output, batch.x)


def test_loss_decreases():
    torch.manual_seed(0)
    model = build_autoencoder("mlp", (1, 8, 8), latent_dim=3, hidden=(32,))
    history = Trainer(model, recon, TrainConfig(epochs=15, batch_size=16, lr=3e-3)).fit(
        toy_images()
    )
    assert len(history) == 15
    assert history[-1]["loss"] < 0.2 * history[0]["loss"]
    assert {"epoch", "loss", "lr", "seconds"} <= set(history[0])


def test_same_seed_same_weights():
    def train():
        torch.manual_seed(1)
        model = build_autoencoder("conv", (1, 8, 8), latent_dim=2)
        Trainer(model, recon, TrainConfig(epochs=2, batch_size=32, seed=5)).fit(toy_images())
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(train(), train())


def test_batches_cover_data_once_with_indices():
    seen = []

    def loss_fn(model, batch):
        seen.append(batch.index.clone())
        assert torch.equal(batch.x, X[batch.index])
        return model(batch.x).mean() * 0 + model.weight.sum() ** 2

    X = torch.rand(50, 1, 2, 2)
    model = torch.nn.Linear(2, 2)
    Trainer(model, loss_fn, TrainConfig(epochs=1, batch_size=7)).fit(X)
    assert sorted(torch.cat(seen).tolist()) == list(range(50))


def test_dict_loss_logged_and_callbacks_called():
    calls = []

    class Spy(Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            calls.append(epoch)
            logs["extra"] = 1.0

    def loss_fn(model, batch):
        loss = recon(model, batch)
        return {"loss": loss, "half": loss / 2}

    model = build_autoencoder("mlp", (1, 8, 8), latent_dim=2, hidden=(8,))
    history = Trainer(model, loss_fn, TrainConfig(epochs=3, batch_size=32), [Spy()]).fit(
        toy_images()
    )
    assert calls == [1, 2, 3]
    assert history[0]["half"] == pytest.approx(history[0]["loss"] / 2)
    assert history[-1]["extra"] == 1.0


def test_early_stopping_restores_best(tmp_path):
    torch.manual_seed(0)
    model = build_autoencoder("mlp", (1, 8, 8), latent_dim=2, hidden=(8,))
    cfg = TrainConfig(epochs=40, batch_size=32, lr=0.5, val_fraction=0.25, patience=2)
    stopper = EarlyStopping(2)
    ckpt = tmp_path / "ckpt.safetensors"
    history = Trainer(model, recon, cfg, [stopper, Checkpoint(ckpt)]).fit(toy_images())
    assert len(history) < 40 and history[-1].get("early_stop")
    best = min(h["val_loss"] for h in history)
    trainer = Trainer(model, recon, TrainConfig(epochs=0, val_fraction=0.25))
    trainer.fit(toy_images())  # same seed -> same held-out split
    assert trainer.evaluate(trainer.val_index) == pytest.approx(best, rel=1e-5)
    saved = read_state(ckpt)  # the whole state, its model at the best epoch
    assert saved["stop"] and saved["epoch"] == len(history)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in saved["model"].items())


def test_lr_schedules():
    for schedule, last in [("cosine", 0.0), ("step", 1e-5)]:
        model = torch.nn.Linear(1, 1)
        cfg = TrainConfig(epochs=4, lr=1e-3, lr_schedule=schedule)

        def loss_fn(m, batch):
            return m(batch.x.flatten(1)).pow(2).mean()

        history = Trainer(model, loss_fn, cfg).fit(torch.rand(8, 1, 1, 1))
        assert history[0]["lr"] == pytest.approx(1e-3)
        assert history[-1]["lr"] < 1e-3
        assert last <= history[-1]["lr"]


def test_bce_from_logits_matches_naive():
    out, x = torch.randn(4, 1, 3, 3), torch.rand(4, 1, 3, 3)
    p = torch.sigmoid(out)
    naive = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).mean()
    assert torch.allclose(bce(out, x), naive, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr_schedule": "linear"}, "lr_schedule"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"patience": 3}, "val_fraction > 0"),
        ({"batch_size": 0}, "batch_size"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(torch.nn.Linear(1, 1), recon, TrainConfig(**kwargs))


def test_a_last_batch_of_one_joins_the_previous_one():
    """BatchNorm cannot train on one sample: 5 samples in batches of 2 train as 2 + 3."""
    nn = torch.nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 4))
    sizes = []

    def loss_fn(m, batch):
        sizes.append(len(batch.x))
        return ((m(batch.x) - batch.x.flatten(1)) ** 2).mean()

    X = np.random.default_rng(0).random((5, 1, 2, 2)).astype(np.float32)
    Trainer(model, loss_fn, TrainConfig(epochs=1, batch_size=2, device="cpu")).fit(X)
    assert sorted(sizes) == [2, 3]


def test_no_samples_left_to_train_on_fails_before_the_first_step():
    def loss_fn(model, batch):
        raise AssertionError("training started")

    config = TrainConfig(epochs=1, val_fraction=0.99, device="cpu")
    with pytest.raises(ConfigError, match="No samples are left to train on.*val_fraction"):
        Trainer(torch.nn.Linear(1, 1), loss_fn, config).fit(np.zeros((20, 1, 1, 1), np.float32))


class Terminal(io.StringIO):
    def isatty(self):
        return True


def fit_toy(stream, epochs=3):
    model = build_autoencoder("mlp", (1, 8, 8), 3, hidden=(16,))
    config = TrainConfig(epochs=epochs, batch_size=32, device="cpu")
    Trainer(model, recon, config, [ProgressBar("toy", stream=stream)]).fit(toy_images())


def test_progress_in_a_log_file_is_one_line_per_epoch():
    stream = io.StringIO()
    fit_toy(stream)
    text = stream.getvalue()
    lines = text.splitlines()
    assert "\r" not in text and len(lines) == 3
    pattern = r"toy epoch 1/3: loss [0-9.e-]+, [0-9,]+ samples/s, \d\d:\d\d left"
    assert re.fullmatch(pattern, lines[0]), lines[0]
    assert lines[-1].startswith("toy epoch 3/3") and lines[-1].endswith(" 00:00 left")


def test_progress_in_a_terminal_is_a_bar():
    stream = Terminal()
    fit_toy(stream)
    assert "\r" in stream.getvalue() and "samples/s" not in stream.getvalue()


def test_progress_helper_writes_lines_without_a_terminal(capsys):
    assert list(progress(range(5), desc="reading", unit="img")) == list(range(5))
    err = capsys.readouterr().err
    assert "\r" not in err and err.strip().splitlines()[-1].startswith("reading: 100%")
