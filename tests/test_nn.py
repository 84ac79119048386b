import pytest
import torch

from aeclust.errors import ConfigError
from aeclust.nn import AUTOENCODERS, autoencoder_config, build_autoencoder

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8), (3, 50, 50), (2, 13, 9), (1, 1, 7)]


@pytest.mark.parametrize("name", sorted(AUTOENCODERS))
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes(name, shape):
    model = build_autoencoder(name, shape, latent_dim=4)
    x = torch.rand(3, *shape)
    h = model.encode(x)
    assert h.shape == (3, 4)
    assert model.decode(h).shape == x.shape
    assert model(x).shape == x.shape


def test_conv_default_bottleneck_28():
    model = build_autoencoder("conv", (1, 28, 28))
    assert model.bottleneck == (128, 4, 4)


def test_config_round_trip():
    model = build_autoencoder("mlp", (1, 8, 8), latent_dim=3, hidden=[16, 8])
    cfg = autoencoder_config(model)
    assert cfg["hidden"] == [16, 8]
    again = build_autoencoder("mlp", tuple(cfg.pop("input_shape")), **cfg)
    assert [p.shape for p in again.parameters()] == [p.shape for p in model.parameters()]


def test_unknown_name_lists_valid():
    with pytest.raises(ConfigError, match="choose one of conv, mlp. Did you mean 'conv'"):
        build_autoencoder("convv", (1, 8, 8))


def test_unknown_param_named():
    with pytest.raises(
        ConfigError,
        match="Unknown parameter 'widths' for autoencoder 'mlp'; valid parameters: hidden",
    ):
        build_autoencoder("mlp", (1, 8, 8), widths=(3,))


def test_bad_latent_dim():
    with pytest.raises(ConfigError, match="latent_dim"):
        build_autoencoder("conv", (1, 8, 8), latent_dim=0)
