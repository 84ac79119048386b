import pytest
import torch

from aeclust.errors import ConfigError
from aeclust.nn import AUTOENCODERS, autoencoder_config, build_autoencoder

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8), (3, 50, 50), (2, 13, 9), (1, 1, 7)]
CODE_SET_BY_SHAPE = {"bottleneck-cae"}  # its code is its bottleneck (size, compression)


@pytest.mark.parametrize("name", sorted(AUTOENCODERS))
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes(name, shape):
    own_code = name in CODE_SET_BY_SHAPE
    model = build_autoencoder(name, shape, latent_dim=None if own_code else 4)
    x = torch.rand(3, *shape)
    h = model.encode(x)
    assert h.shape == (3, model.config.latent_dim if own_code else 4)
    assert model.decode(h).shape == x.shape
    assert model(x).output.shape == x.shape


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
    with pytest.raises(
        ConfigError,
        match="choose one of alexnet, bottleneck-cae, conv, conv-nopool"
        ", conv-pool, dcae, fc, hrwae, mlp, resnet. "
        "Did you mean 'conv'",
    ):
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


def test_dcae_paper_sizes():
    model = build_autoencoder("dcae", (1, 28, 28))
    assert model.feature == (4, 12, 12)  # 28 -9+1-> 20 -9+1-> 12
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    deconvs = [m for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.kernel_size for c in convs] == [(9, 9), (9, 9)]
    assert [c.out_channels for c in convs] == [8, 4]
    assert [d.kernel_size for d in deconvs] == [(12, 12), (17, 17)]
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(576, 250), (250, 10), (10, 250)]
    assert all(float(m.bias.abs().sum()) == 0 for m in linears)  # biases start at 0


def test_dcae_too_small_image():
    with pytest.raises(ConfigError, match="too small"):
        build_autoencoder("dcae", (1, 3, 3), kernel=3)


def test_latent_discriminator_scores_each_code_and_rebuilds_from_its_spec():
    import torch

    from aeclust.nn import LatentDiscriminator, LatentDiscriminatorConfig, build_module, module_spec

    disc = LatentDiscriminator(LatentDiscriminatorConfig(latent_dim=6, hidden=(8, 4)))
    scores = disc(torch.randn(5, 6))
    assert scores.shape == (5,)
    spec = module_spec(disc)
    assert spec == {"registry": "latent-discriminator", "config": {
        "latent_dim": 6, "hidden": [8, 4], "batch_norm": True, "negative_slope": 0.2}}  # fmt: skip
    again = build_module(spec["registry"], spec["config"])
    again.load_state_dict(disc.state_dict())
    disc.eval(), again.eval()
    z = torch.randn(3, 6)
    assert torch.equal(disc(z), again(z))
    with pytest.raises(ValueError, match="latent_dim"):
        LatentDiscriminator(LatentDiscriminatorConfig(latent_dim=0))
