"""LOC, the local observer convolution (one-stage autoencoders, section 2.2)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.utils.estimator_checks import parametrize_with_checks

from aeclust import LOCSegmenter, load
from aeclust.cli import main
from aeclust.errors import ConfigError, DataError
from aeclust.losses.loc import loc_loss, relative_error
from aeclust.nn import build_module, module_spec
from aeclust.nn.loc import LOC, LOCConfig, round_ste

FAST = dict(epochs=2, batch_size=8, width=4, random_state=0)


@parametrize_with_checks([LOCSegmenter(**FAST)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_relative_error_and_the_rho_bound():
    v = torch.rand(3, 2, 5, 5)
    flat = v.mean((2, 3), keepdim=True).expand_as(v)
    assert torch.allclose(relative_error(v, flat), torch.ones(3))  # a flat colour leaves all
    assert torch.allclose(relative_error(v, v), torch.zeros(3))
    assert torch.allclose(relative_error(3 * v + 1, 3 * flat + 1), torch.ones(3))  # scale-free
    v_hat = (flat + 0.5 * (v - flat)).requires_grad_()  # leaves a quarter of the variance
    eps = relative_error(v, v_hat)
    assert torch.allclose(eps, torch.full((3,), 0.25), atol=1e-5)
    assert loc_loss(v, v_hat, rho=0.2).item() == pytest.approx(0.25, abs=1e-5)
    below = loc_loss(v, v_hat, rho=0.3)  # every image is within the bound: no loss, no gradient
    assert below.item() == 0.0
    below.backward()
    assert v_hat.grad.abs().max().item() == 0.0


def test_rho_bound_is_per_image():
    v = torch.rand(2, 1, 4, 4)
    flat = v.mean((2, 3), keepdim=True).expand_as(v)
    v_hat = torch.stack([v[0], flat[1]])  # image 0 explained, image 1 not at all
    assert loc_loss(v, v_hat, rho=0.5).item() == pytest.approx(0.5)  # (0 + 1) / 2


def test_round_ste():
    s = torch.tensor([0.2, 0.7, -1.6], requires_grad=True)
    r = round_ste(s)
    assert r.tolist() == [0.0, 1.0, -2.0]
    r.sum().backward()
    assert s.grad.tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("shape", [(1, 17, 23), (3, 32, 32), (4, 8, 8), (2, 5, 40), (1, 1, 6)])
@pytest.mark.parametrize("window", [0, 3])
def test_shapes(shape, window):
    net = LOC(LOCConfig(shape, width=4, target_window=window)).eval()
    out = net(torch.rand(2, *shape))
    c, h, w = shape
    assert out.field.shape == out.segments.shape == (2, 1, h, w)
    assert torch.equal(out.segments, out.segments.round())
    targets = 2 * c if window else c
    assert out.target.shape == out.reconstruction.shape == (2, targets, h, w)
    rebuilt = build_module("loc", module_spec(net)["config"])
    assert isinstance(rebuilt, LOC)


def test_bad_network_settings():
    with pytest.raises(ValueError, match="odd"):
        LOC(LOCConfig((1, 8, 8), observer_size=2))
    with pytest.raises(ValueError, match="odd"):
        LOC(LOCConfig((1, 8, 8), target_window=4))


def bands(n=24, size=16, seed=0):
    """Grey images of 4 horizontal bands at 4 well-separated levels, in a random order."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, 1, size, size), dtype=np.float32)
    for i in range(n):
        levels = rng.permutation([0.1, 0.4, 0.7, 1.0])
        X[i, 0] = np.repeat(levels, size // 4)[:, None]
    return np.clip(X + rng.normal(0, 0.01, X.shape).astype(np.float32), 0, 1)


def test_segments_follow_rho():
    """The network chooses how many segments an image gets, and ρ sets it: a tight bound
    needs the four bands apart, a loose one is met with fewer segments."""
    X = bands()
    counts = {}
    for rho in (0.02, 0.6):
        est = LOCSegmenter(rho=rho, epochs=40, batch_size=8, width=8, lr=1e-2,
                           target_window=0, random_state=0).fit(X)  # fmt: skip
        counts[rho] = est.history_[-1]["segments"]
        assert est.history_[-1]["error"] < max(rho, 0.1) + 0.1
    assert counts[0.02] > counts[0.6]
    assert counts[0.02] >= 3


def test_same_seed_same_segments_and_save_load(tmp_path):
    X = bands(12)
    a = LOCSegmenter(**FAST).fit(X)
    b = LOCSegmenter(**FAST).fit(X)
    assert np.array_equal(a.segment(X), b.segment(X))
    masks = a.predict(X)
    assert masks.dtype == bool and masks.shape == (12, 16, 16)
    a.save(tmp_path / "m")
    loaded = load(tmp_path / "m")
    assert isinstance(loaded, LOCSegmenter)
    assert np.array_equal(loaded.segment(X), a.segment(X))
    assert np.array_equal(loaded.predict(X), masks)
    assert loaded.get_params() == a.get_params()


def test_interrupted_fit_resumes_to_the_same_network(tmp_path, monkeypatch):
    from aeclust.estimators import loc
    from aeclust.training import TrainingInterrupted

    X = bands(12)
    params = {**FAST, "epochs": 3, "checkpoint": str(tmp_path / "ck")}
    full = LOCSegmenter(**FAST | {"epochs": 3}).fit(X)
    log_epoch = loc.SegmentLog.on_epoch_end

    def ctrl_c_after_epoch_1(self, trainer, epoch, logs):
        log_epoch(self, trainer, epoch, logs)
        trainer._sigint = epoch == 1

    monkeypatch.setattr(loc.SegmentLog, "on_epoch_end", ctrl_c_after_epoch_1)
    with pytest.raises(TrainingInterrupted):
        LOCSegmenter(**params).fit(X)
    monkeypatch.setattr(loc.SegmentLog, "on_epoch_end", log_epoch)
    resumed = LOCSegmenter(**params).fit(X, resume=str(tmp_path / "ck"))
    assert np.array_equal(resumed.field(X), full.field(X))
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]


@pytest.mark.parametrize(
    "params, match",
    [({"rho": 1}, "below 1"), ({"rho": -0.1}, "rho"), ({"rho": "a"}, "rho"),
     ({"observer_size": 2}, "odd"), ({"target_window": 4}, "odd"), ({"width": 0}, "width"),
     ({"polarity": "up"}, "polarity")],
)  # fmt: skip
def test_bad_settings_fail_before_training(params, match):
    with pytest.raises(ConfigError, match=match):
        LOCSegmenter(**{**FAST, **params}).fit(bands(4))


def test_tiny_images_are_refused():
    with pytest.raises(DataError, match="one pixel"):
        LOCSegmenter(**FAST).fit(np.random.rand(4, 1, 1, 1).astype(np.float32))


def write_folder(root, n=6, size=16):
    """A folder of RGB squares on a background, and a folder of their masks."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        m = np.zeros((size, size), dtype=bool)
        r, c = rng.integers(0, size // 2, 2)
        m[r : r + size // 2, c : c + size // 2] = True
        image = np.where(m[..., None], [220, 40, 40], [30, 90, 200]).astype(np.uint8)
        Image.fromarray(image).save(images / f"tile{i}.png")
        Image.fromarray((m * 255).astype(np.uint8)).save(masks / f"tile{i}.png")
    return images, masks


def test_cli_segment_end_to_end(tmp_path, capsys):
    images, masks = write_folder(tmp_path)
    out = tmp_path / "out"
    args = ["-q", "segment", "--data", str(images), "--masks", str(masks), "--out", str(out),
            "--epochs", "2", "--width", "4", "--batch-size", "4"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "LOC: pixel_acc=" in printed and "colour k-means" in printed
    for folder in ("segments", "masks", "overlays"):
        assert sorted(p.name for p in (out / folder).iterdir()) == [
            f"tile{i}.png" for i in range(6)
        ]
    mask = np.asarray(Image.open(out / "masks" / "tile0.png"))
    assert mask.shape == (16, 16) and set(np.unique(mask)) <= {0, 255}
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["loc"]) == {"pixel_acc", "iou", "dice"}
    assert metrics["kmeans"]["iou"] == pytest.approx(1.0)  # two flat colours: k-means is exact
    assert metrics["segments"]["min"] >= 1
    rows = (out / "segments.csv").read_text().splitlines()
    assert rows[0] == "index,name,n_segments,foreground,iou,dice,pixel_acc" and len(rows) == 7
    for name in ("report.html", "examples.png", "segments.png", "model.safetensors"):
        assert (out / name).is_file()
    assert isinstance(load(out), LOCSegmenter)


def test_cli_segment_bad_input(tmp_path, capsys):
    images, masks = write_folder(tmp_path)
    (masks / "tile3.png").unlink()
    out = tmp_path / "out"
    args = ["-q", "segment", "--data", str(images), "--out", str(out), "--epochs", "1"]
    assert main([*args, "--masks", str(masks)]) == 2
    assert "no mask" in capsys.readouterr().err
    assert main([*args, "--rho", "1.5"]) == 2
    assert "rho" in capsys.readouterr().err
    assert main([*args, "--masks", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # nothing half-written


def test_cli_segment_without_masks(tmp_path, capsys):
    images, _ = write_folder(tmp_path, n=4)
    out = tmp_path / "out"
    assert main(["-q", "segment", "--data", str(images), "--out", str(out), "--epochs", "1",
                 "--width", "4"]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert "loc" not in metrics and "kmeans" not in metrics
    assert "iou" not in (out / "segments.csv").read_text().splitlines()[0]
