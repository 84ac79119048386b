import numpy as np
import pytest
import torch

from aeclust import AEClusterer
from aeclust.errors import ConfigError
from aeclust.training import RandomAffine, TrainConfig, Trainer, build_augment


def dot(h=12, w=12, at=(5, 5)):
    x = torch.zeros(1, 1, h, w)
    x[0, 0, at[0], at[1]] = 1.0
    return x


def test_zero_settings_leave_images_unchanged():
    x = torch.rand(4, 3, 10, 7)
    out = RandomAffine(shift=0, rotation=0)(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5)


def test_hflip_mirrors_and_shift_moves_within_bounds():
    flip = RandomAffine(shift=0, rotation=0, hflip=True)
    x = torch.rand(64, 1, 6, 6)
    out = flip(x, torch.Generator().manual_seed(1))
    mirrored = torch.isclose(out, x.flip(-1), atol=1e-5).flatten(1).all(1)
    same = torch.isclose(out, x, atol=1e-5).flatten(1).all(1)
    assert (mirrored | same).all() and 10 < mirrored.sum() < 54

    # a shift of up to 0.25 of 12 pixels moves a dot by at most 3 pixels per axis
    shifted = RandomAffine(shift=0.25, rotation=0)(dot().repeat(200, 1, 1, 1))
    for img in shifted[:, 0]:
        r, c = np.unravel_index(int(img.argmax()), img.shape)
        assert abs(r - 5) <= 3 and abs(c - 5) <= 3
    moved = shifted[:, 0].flatten(1).argmax(1)
    assert len(torch.unique(moved)) > 10  # and it does move


def test_rotation_keeps_the_centre_and_the_mass():
    x = torch.zeros(50, 1, 15, 15)
    x[:, :, 4:11, 6:9] = 1.0  # a bar through the centre
    out = RandomAffine(shift=0, rotation=30)(x, torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, 0, 7, 7], torch.ones(50))
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)), rtol=0.15)
    assert not torch.allclose(out, x)


def test_same_generator_seed_same_batch():
    x = torch.rand(8, 1, 9, 9)
    aug = RandomAffine(hflip=True)
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "spec, shape, expected",
    [
        (None, (1, 28, 28), None),
        ("none", (1, 28, 28), None),
        ("auto", (1, 28, 28), RandomAffine()),
        ("auto", (3, 8, 8), RandomAffine()),
        ("auto", (1, 1, 64), None),  # flat vectors
        ("auto", (1, 4, 4), None),
        ("affine", (1, 4, 4), RandomAffine()),
        ({"rotation": 0, "hflip": True}, (3, 50, 50), RandomAffine(rotation=0, hflip=True)),
    ],
)
def test_build_augment(spec, shape, expected):
    assert build_augment(spec, shape) == expected


@pytest.mark.parametrize(
    "spec, shape, match",
    [
        ("affine", (1, 1, 64), "1x64"),
        ("rotate", (1, 28, 28), "Unknown augment 'rotate'"),
        ({"shfit": 0.1}, (1, 28, 28), "shfit"),
        ({"shift": 1.5}, (1, 28, 28), "shift < 1"),
        ({"padding": "wrap"}, (1, 28, 28), "padding"),
    ],
)
def test_bad_augment(spec, shape, match):
    with pytest.raises(ConfigError, match=match):
        build_augment(spec, shape)


def test_trainer_augments_training_batches_only():
    X = torch.rand(20, 1, 8, 8)
    seen = {"train": [], "eval": []}

    def loss_fn(model, batch):
        key = "train" if model.training else "eval"
        seen[key].append(torch.equal(batch.x, X[batch.index]))
        return (model.weight * batch.x.mean()).sum() ** 2

    model = torch.nn.Linear(1, 1)
    config = TrainConfig(epochs=2, batch_size=8, val_fraction=0.2, augment=RandomAffine())
    Trainer(model, loss_fn, config).fit(X)
    assert seen["train"] and not any(seen["train"])
    assert seen["eval"] and all(seen["eval"])


def test_estimator_with_augmentation_is_reproducible_and_differs_from_none():
    rng = np.random.default_rng(0)
    X = rng.random((40, 1, 10, 10)).astype(np.float32)

    def codes(augment):
        est = AEClusterer(n_clusters=2, epochs=2, batch_size=16, augment=augment, random_state=0)
        return est.fit(X).transform(X)

    assert np.array_equal(codes("auto"), codes("auto"))
    assert not np.allclose(codes("auto"), codes(None))
    with pytest.raises(ConfigError, match="Unknown augment"):
        AEClusterer(n_clusters=2, epochs=1, augment="flip").fit(X)
