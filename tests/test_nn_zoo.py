"""The five autoencoders of Liu & Zhang (fc, conv-pool, conv-nopool, alexnet, resnet) and
loading encoder weights from a local file."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from aeclust.errors import ConfigError, ModelFileError
from aeclust.nn import build_autoencoder
from aeclust.nn.blocks import fit
from aeclust.weights import load_encoder_weights

PAPER_LATENT = {"fc": 64, "conv-pool": 256, "conv-nopool": 192, "alexnet": 512, "resnet": 256}
SMALL = {  # narrow versions so the tests run fast
    "fc": {"hidden": (32, 16)},
    "conv-pool": {"width": 1 / 16},
    "conv-nopool": {"width": 1 / 16},
    "alexnet": {"width": 1 / 8, "fc_width": 32},
    "resnet": {"width": 1 / 8},
}
NAMES = sorted(PAPER_LATENT)
CONV_NAMES = [n for n in NAMES if n != "fc"]


def small(name, shape, latent_dim=5, seed=0, **params):
    torch.manual_seed(seed)
    return build_autoencoder(name, shape, latent_dim, **{**SMALL[name], **params})


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 50, 50), (1, 8, 8), (3, 64, 64), (2, 13, 9)])
def test_shapes(name, shape):
    model = small(name, shape)
    x = torch.rand(2, *shape)
    h = model.encode(x)
    assert h.shape == (2, 5)
    assert model.decode(h).shape == x.shape
    assert model(x).output.shape == x.shape


@pytest.mark.parametrize("name", CONV_NAMES)
def test_1x1_images_are_refused(name):
    with pytest.raises(ConfigError, match=f"Cannot build autoencoder '{name}': 1x1 images"):
        small(name, (3, 1, 1))


@pytest.mark.parametrize("name", NAMES)
def test_paper_latent_dim_is_the_default(name):
    model = build_autoencoder(name, (1, 8, 8), **SMALL[name])
    assert model.config.latent_dim == PAPER_LATENT[name]
    assert model.encode(torch.rand(2, 1, 8, 8)).shape == (2, PAPER_LATENT[name])


@pytest.mark.parametrize("name", NAMES)
def test_loss_decreases(name):
    torch.manual_seed(0)
    x = torch.rand(6, 1, 16, 16)
    model = small(name, (1, 16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        loss = F.mse_loss(model(x).output, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("name", NAMES)
def test_encode_is_deterministic(name):
    x = torch.rand(4, 3, 20, 20)
    a, b = small(name, (3, 20, 20), seed=1).eval(), small(name, (3, 20, 20), seed=1).eval()
    with torch.no_grad():
        assert torch.equal(a.encode(x), a.encode(x))
        assert torch.equal(a.encode(x), b.encode(x))


def _sizes(model, shape):
    """Spatial size after every (transposed) convolution of one forward pass."""
    sizes = []
    hooks = [
        m.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)
    ]
    model.eval()(torch.rand(1, *shape))
    for h in hooks:
        h.remove()
    return sizes


def test_conv_pool_is_the_paper_at_50():
    model = build_autoencoder("conv-pool", (3, 50, 50))
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0]) for m in convs] == [
        (128, 3, 1, 0), (256, 5, 1, 1), (512, 4, 1, 1), (256, 3, 2, 2), (256, 2, 1, 0)
    ]  # fmt: skip
    assert _sizes(model, (3, 50, 50)) == [48, 22, 10, 4, 1, 2, 3, 6, 12, 25, 50]
    assert _sizes(build_autoencoder("conv-nopool", (3, 50, 50)), (3, 50, 50)) == [
        49, 24, 11, 4, 1, 2, 3, 6, 12, 25, 50
    ]  # fmt: skip


def test_resnet_is_the_paper_at_256():
    model = build_autoencoder("resnet", (3, 256, 256))
    linears = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    assert linears == [(512, 256), (256, 256), (256, 256), (256, 4096)]
    assert model.start == (4, 4)
    deconvs = [
        m.kernel_size[0] for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)
    ]
    assert deconvs == [4, 4, 7, 7, 4, 4, 5, 5, 4, 6]
    assert sum(isinstance(m, nn.Conv2d) for m in model.encoder.modules()) == 10


TORCHVISION_ALEXNET = {  # torchvision.models.alexnet().state_dict() shapes, 1000 classes
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}  # fmt: skip


@pytest.mark.parametrize("shape", [(3, 224, 224), (3, 50, 50), (3, 28, 28)])
def test_alexnet_encoder_has_torchvision_keys(shape):
    model = build_autoencoder("alexnet", shape, latent_dim=1000, fc_width=8)
    got = {k: tuple(v.shape) for k, v in model.encoder.state_dict().items()}
    assert got.keys() == TORCHVISION_ALEXNET.keys()
    for key, want in TORCHVISION_ALEXNET.items():
        if key.startswith("features"):
            assert got[key] == want
    assert got["classifier.1.weight"] == (8, 9216)


def test_fit_keeps_the_function():
    """A kernel with the taps that only meet padding dropped computes the same outputs."""
    torch.manual_seed(0)
    for n, k, s, p in itertools.product(range(1, 7), range(1, 8), (1, 2, 3), range(4)):
        if k > n + 2 * p:
            continue
        x, weight = torch.randn(1, 1, n), torch.randn(1, 1, k)
        k2, p2, out = fit(n, k, s, p)
        first = p - p2
        full = F.conv1d(x, weight, stride=s, padding=p)
        assert torch.allclose(full, F.conv1d(x, weight[..., first : first + k2], None, s, p2))
        assert full.shape[-1] == out
    assert fit(1, 4, 2, 1) == (1, 0, 1) and fit(5, 4, 2, 1) == (4, 1, 2)  # trimmed, untouched


# ---------------------------------------------------------------- load_encoder_weights
def _alexnet():
    return small("alexnet", (3, 32, 32), latent_dim=5)


def test_load_safetensors_round_trip(tmp_path):
    source, target = small("conv-nopool", (3, 32, 32), seed=1), small("conv-nopool", (3, 32, 32))
    state = {k: v.contiguous() for k, v in source.encoder.state_dict().items()}
    save_file(state, tmp_path / "enc.safetensors")
    report = load_encoder_weights(target, tmp_path / "enc.safetensors")
    assert report == {"loaded": list(state), "missing": []}
    for key, value in target.encoder.state_dict().items():
        assert torch.equal(value, state[key])


def test_load_torch_file_with_prefix_and_wrapper(tmp_path):
    source, target = small("resnet", (1, 28, 28), seed=1), small("resnet", (1, 28, 28))
    state = {f"encoder.{k}": v for k, v in source.encoder.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "enc.pt")
    load_encoder_weights(target, tmp_path / "enc.pt")
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(source.eval().encode(x), target.eval().encode(x))


def test_features_only_file_leaves_the_rest(tmp_path):
    source, target = _alexnet(), small("alexnet", (3, 32, 32), latent_dim=5, seed=1)
    before = {k: v.clone() for k, v in target.encoder.state_dict().items()}
    features = {k: v for k, v in source.encoder.state_dict().items() if k.startswith("features")}
    torch.save({"model": features}, tmp_path / "features.pth")
    report = load_encoder_weights(target, tmp_path / "features.pth")
    assert report["loaded"] == list(features)
    assert report["missing"] == [k for k in before if k.startswith("classifier")]
    state = target.encoder.state_dict()
    assert all(torch.equal(state[k], v) for k, v in features.items())
    assert all(torch.equal(state[k], before[k]) for k in report["missing"])


def test_wrong_shape_is_named(tmp_path):
    state = dict(_alexnet().encoder.state_dict())
    state["classifier.6.weight"] = torch.zeros(1000, 32)
    save_file(state, tmp_path / "alexnet.safetensors")
    with pytest.raises(ModelFileError, match="classifier.6.weight: file 1000x32, model 5x32") as e:
        load_encoder_weights(_alexnet(), tmp_path / "alexnet.safetensors")
    assert "Remove the classifier.* keys" in str(e.value) and "latent_dim=1000." in str(e.value)


def test_unknown_key_is_named(tmp_path):
    state = {"features.0.bias": torch.zeros(8), "features.99.weight": torch.zeros(2)}
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(ModelFileError, match="does not have: 'features.99.weight'"):
        load_encoder_weights(_alexnet(), tmp_path / "extra.pt")


class NotWeights:
    pass


@pytest.mark.parametrize(
    "content, match",
    [
        ([torch.zeros(2)], "does not hold a state dict"),
        ({"a": torch.zeros(2), "b": "text"}, "'b' is not a tensor"),
        (NotWeights(), "Cannot read weights"),  # weights_only refuses to unpickle it
        (None, "Cannot read weights"),  # not a torch file at all
    ],
)
def test_not_a_state_dict(tmp_path, content, match):
    path = tmp_path / "w.pt"
    if content is None:
        path.write_bytes(b"not a weights file")
    else:
        torch.save(content, path)
    with pytest.raises(ModelFileError, match=match):
        load_encoder_weights(_alexnet(), path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="No weights file at"):
        load_encoder_weights(_alexnet(), tmp_path / "nothing.safetensors")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are tiny: one thread is faster, and not slowed down by a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
