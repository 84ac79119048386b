"""The bottleneck laboratory ("Walking the tightrope"): the paper's CAE and its bottleneck
shapes (eqs. 5, 6), SVCCA, linear probes, the findings, and ``aeclust bottleneck``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aeclust import AEClusterer
from aeclust.cli import main
from aeclust.errors import ConfigError
from aeclust.laboratory import findings, parse_compression, parse_grid
from aeclust.nn import build_autoencoder
from aeclust.nn.bottleneck import COMPRESSIONS, bottleneck_channels, padded_size
from aeclust.probes import linear_probe, probe_model
from aeclust.svcca import canonical_correlations, fourier_down, svcca, svcca_maps

HELPER = Path(__file__).parent / "helpers" / "interrupt_at.py"


# ----------------------------------------------------------------------------- the CAE
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 50, 70), (3, 64, 64)])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_every_bottleneck_shape_and_the_output_shape(shape, size):
    c, h, w = shape
    side = 2 ** (5 - size + 1)  # eq. 5: padded side / 2^(n_l - i + 1)
    for comp in COMPRESSIONS:
        net = build_autoencoder("bottleneck-cae", shape, size=size, compression=comp, blocks=1)
        x = torch.rand(2, *shape)
        out = net(x)
        assert out.output.shape == x.shape
        expected = (round(comp * c * side**2), padded_size(h) // side, padded_size(w) // side)
        assert net.code_shape == expected
        assert out.code.shape == (2, int(np.prod(expected))) == (2, net.config.latent_dim)
        assert net.encode_map(x).shape == (2, *expected)
        # eq. 6: the bottleneck holds the share c of the padded input's numbers
        assert np.prod(expected) == pytest.approx(comp * c * padded_size(h) * padded_size(w))


def test_eq6_channel_counts():
    # 1x28x28 (padded to 32): n_c = c * 32^2 / s_i^2 for s_i = 1, 2, 4
    assert [bottleneck_channels(1, 1, c) for c in COMPRESSIONS] == [16, 64, 256, 1024]
    assert [bottleneck_channels(1, 2, c) for c in COMPRESSIONS] == [4, 16, 64, 256]
    assert [bottleneck_channels(1, 3, c) for c in COMPRESSIONS] == [1, 4, 16, 64]
    # 3x96x96 (the paper's CelebA and STL-10 size): a 3x3 bottleneck at size 1
    assert [bottleneck_channels(3, 1, c) for c in COMPRESSIONS] == [48, 192, 768, 3072]
    net = build_autoencoder("bottleneck-cae", (3, 96, 96), size=1, compression=1 / 16, blocks=0)
    assert net.code_shape == (192, 3, 3)


def test_only_the_layers_next_to_the_bottleneck_change_with_compression():
    def shapes(comp):
        net = build_autoencoder("bottleneck-cae", (1, 32, 32), size=2, compression=comp)
        return {k: tuple(p.shape) for k, p in net.named_parameters()}

    a, b = shapes(1 / 64), shapes(1 / 4)
    assert a.keys() == b.keys()
    differ = {k.split(".")[0] + "." + k.split(".")[1] for k in a if a[k] != b[k]}
    assert differ == {"encoder.4", "decoder.0"}  # the last encoder, first decoder stage


def test_a_one_pixel_bottleneck_trains_without_instance_norm():
    net = build_autoencoder("bottleneck-cae", (1, 28, 28), size=1, compression=1 / 64, blocks=1)
    assert net.code_shape[1:] == (1, 1)
    net.train()
    loss = net(torch.rand(4, 1, 28, 28)).output.pow(2).mean()
    loss.backward()  # instance norm of a 1x1 map would raise in training mode
    assert all(p.grad is not None for p in net.parameters())


def test_bad_settings_name_the_problem():
    with pytest.raises(ConfigError, match="leave latent_dim unset"):
        build_autoencoder("bottleneck-cae", (1, 28, 28), latent_dim=10)
    with pytest.raises(ConfigError, match="size must be a whole number from 1 to levels=5"):
        build_autoencoder("bottleneck-cae", (1, 28, 28), size=6)
    with pytest.raises(ConfigError, match="compression must be a positive number"):
        build_autoencoder("bottleneck-cae", (1, 28, 28), compression=0)


def test_eval_sets_log_the_error_of_fixed_images_in_eval_mode():
    X = np.random.default_rng(0).random((40, 1, 16, 16), dtype=np.float32)
    est = AEClusterer(autoencoder="bottleneck-cae", n_clusters=2, epochs=2, batch_size=20,
                      autoencoder_params={"levels": 4, "blocks": 0}, random_state=0)  # fmt: skip
    est.fit(X[:30], eval_sets={"test": X[30:]})
    last = est.history_[-1]["test_mse"]
    assert last == pytest.approx(float(((est.reconstruct(X[30:]) - X[30:]) ** 2).mean()), 1e-5)
    with pytest.raises(Exception, match="eval_sets\\['test'\\] holds images of shape"):
        est.fit(X[:30], eval_sets={"test": X[30:, :, :8]})


# ----------------------------------------------------------------------------- SVCCA
def naive_cca(A, B):
    """Canonical correlations by whitening the covariances (the textbook formula)."""
    A, B = A - A.mean(0), B - B.mean(0)
    Saa, Sbb, Sab = A.T @ A, B.T @ B, A.T @ B

    def inv_sqrt(S):
        w, V = np.linalg.eigh(S)
        return V @ np.diag(w**-0.5) @ V.T

    return np.linalg.svd(inv_sqrt(Saa) @ Sab @ inv_sqrt(Sbb), compute_uv=False)


def test_canonical_correlations_match_the_textbook_formula():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(200, 4))
    B = A @ rng.normal(size=(4, 3)) + rng.normal(size=(200, 3))
    Ac, Bc = A - A.mean(0), B - B.mean(0)
    assert np.allclose(canonical_correlations(Ac, Bc), naive_cca(A, B))


def test_svcca_identical_independent_and_linear_maps():
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(3000, 6)), rng.normal(size=(3000, 5))
    assert svcca(A, A) == pytest.approx(1.0)
    assert svcca(A, B) < 0.1
    M = rng.normal(size=(6, 6))  # invertible
    mixed = B[:, :3] @ rng.normal(size=(3, 6)) + A
    assert svcca(A @ M, mixed, keep=1.0) == pytest.approx(svcca(A, mixed, keep=1.0))


def test_the_dft_path_equals_the_direct_path_on_translation_invariant_maps():
    rng = np.random.default_rng(2)
    base = rng.normal(size=(30, 3, 4, 4))
    other = np.einsum("dc,nchw->ndhw", rng.normal(size=(2, 3)), base) ** 2
    other += 0.3 * rng.normal(size=other.shape)
    shifts = [(i, j) for i in range(4) for j in range(4)]  # every circular shift of each map
    A = np.concatenate([np.roll(base, s, (2, 3)) for s in shifts])
    B = np.concatenate([np.roll(other, s, (2, 3)) for s in shifts])
    direct = svcca(A, B, keep=1.0)
    assert 0.05 < direct < 0.95
    assert svcca_maps(A, B, keep=1.0) == pytest.approx(direct, abs=1e-9)


def test_fourier_downsampling_keeps_the_smaller_maps_frequencies():
    maps = np.random.default_rng(3).normal(size=(5, 2, 4, 4))
    dc = fourier_down(maps, (1, 1))
    assert np.allclose(dc[:, :, 0, 0], maps.sum(axis=(2, 3)))
    assert np.allclose(fourier_down(maps, (4, 4)), np.fft.fft2(maps))
    assert svcca_maps(maps.repeat(4, 0), maps.repeat(4, 0)[:, :, :2, :2]) > 0  # sizes differ


# ----------------------------------------------------------------------------- probes
def test_the_probe_is_sklearns_cross_validation():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 150)
    X = rng.normal(size=(150, 8)) + y[:, None] * 0.8
    result = linear_probe(X, y, folds=5, weight_decay=0.01, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1 / (0.01 * 120), max_iter=300))
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    expected = cross_val_score(model, X, y, cv=folds, scoring="f1_macro")
    assert result["f1"] == pytest.approx(expected.mean())
    assert result["folds"] == pytest.approx(list(expected))
    assert probe_model(0.01, 120)[-1].C == pytest.approx(1 / 1.2)
    with pytest.raises(ValueError, match="smallest class here has 1 image"):
        linear_probe(X[:6], np.array([0, 0, 0, 0, 0, 1]), folds=5)


# ----------------------------------------------------------------------------- the grid
def test_grid_parsing():
    assert parse_compression("1/16") == 1 / 16 and parse_compression(0.25) == 0.25
    assert parse_grid("1,3", "1/64,1") == [(1, 1 / 64), (1, 1.0), (3, 1 / 64), (3, 1.0)]
    for sizes, comps, message in [
        ("0", "1", "size 0 is not in 1..5"),
        ("1", "2", "share of the input in"),
        ("1", "x", "a number or a fraction"),
        ("1,1", "1", "twice"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_grid(sizes, comps)


def rows_where_the_paper_holds():
    rows = [{"name": "pixels", "train_mse": 0.1, "test_mse": 0.1, "probe_train_f1": 0.5,
             "probe_test_f1": 0.5}]  # fmt: skip
    for s in (1, 2, 3):
        for j, c in enumerate((1 / 16, 1.0)):
            rows.append({
                "name": f"{s}-{c}", "size": s, "compression": c, "channels": 4 * (j + 1),
                "train_mse": 0.02 - 0.003 * s - 0.0005 * j,
                "test_mse": 0.05 - 0.01 * s - 0.001 * j,
                "test_rise": 0.2 / s**2, "probe_train_f1": 0.7, "probe_test_f1": 0.6,
            })  # fmt: skip
    return rows


def test_findings_say_yes_where_the_numbers_agree_and_no_where_they_do_not():
    rows = rows_where_the_paper_holds()
    names = [r["name"] for r in rows[1:]]
    S = np.full((len(names), len(names)), 0.3)
    for i, a in enumerate(rows[1:]):
        for j, b in enumerate(rows[1:]):
            S[i, j] = 0.9 if a["size"] == b["size"] else 0.3
    svcca_ = {"names": names, "test": S.tolist()}
    got = {f["number"]: f["holds"] for f in findings(rows, svcca_)}
    assert got == {1: True, 2: True, 3: True, 4: True, 5: True, 6: True}
    svcca_["test"] = (0.3 + 0.1 - S).tolist()  # now less similar within a size
    for r in rows[1:]:
        r["test_mse"], r["probe_test_f1"] = 1e-5, 0.4  # a copying CAE, worse than pixels
    got = {f["number"]: f for f in findings(rows, svcca_)}
    assert got[4]["holds"] is False and got[5]["holds"] is False and got[2]["holds"] is False
    assert got[6]["holds"] is False and got[6]["numbers"]["pairs_within_channels"] > 0
    got = {f["number"]: f["holds"] for f in findings(rows[:2])}  # one configuration
    assert got[1] is None and got[3] is None and got[6] is None


# ----------------------------------------------------------------------------- the CLI
FILES = ("configurations.csv", "table.md", "history.csv", "findings.json", "svcca.json",
         "summary.json", "config.yaml", "report.html", "losses.png", "reconstructions-train.png",
         "reconstructions-test.png", "probes.png", "svcca-train.png", "svcca-test.png")  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 30)
    X = rng.random((60, 1, 16, 16), dtype=np.float32) * 0.3
    X[y == 1, :, 4:12, 4:12] += 0.6  # a bright square marks class 1
    path = tmp_path_factory.mktemp("tiny") / "tiny.npz"
    np.savez(path, X=X, y=y)
    return path


def test_the_split_is_seeded_random_and_mixes_sorted_classes(tmp_path):
    from aeclust.bottleneck import split_data
    from aeclust.config import BottleneckConfig

    X = np.arange(90, dtype=np.float32).reshape(90, 1, 1, 1) * np.ones((1, 1, 4, 4), "f4")
    path = tmp_path / "sorted.npz"
    np.savez(path, X=X / 90, y=np.repeat([0, 1, 2], 30))  # sorted by class, as mnist5k is
    cfg = BottleneckConfig(data=str(path), max_train=40, max_test=15, seed=3)
    train, test = split_data(cfg)
    assert (len(train), len(test)) == (40, 15)
    assert set(test.y) == {0, 1, 2} and set(train.y) == {0, 1, 2}
    assert not set(train.X[:, 0, 0, 0]) & set(test.X[:, 0, 0, 0])  # disjoint
    again, _ = split_data(cfg)
    assert np.array_equal(again.X, train.X)
    other, _ = split_data(BottleneckConfig(data=str(path), max_train=40, seed=4))
    assert not np.array_equal(other.X, train.X)


def lab_args(data, out):
    return ["bottleneck", "--data", str(data), "--sizes", "1,2", "--compressions", "1/16,1",
            "--epochs", "2", "--blocks", "0", "--batch-size", "16", "--probe-folds", "2",
            "--no-cluster", "--seed", "1", "--out", str(out)]  # fmt: skip


def test_cli_bottleneck_end_to_end(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["-q", *lab_args(tiny, "lab")]) == 0
    printed = capsys.readouterr().out
    assert "finding 1:" in printed and "finding 6:" in printed
    out = tmp_path / "lab"
    for name in FILES:
        assert (out / name).is_file(), name
    assert not (out / "checkpoints").exists()
    summary = json.loads((out / "summary.json").read_text())
    names = [r["name"] for r in summary["configurations"]]
    assert names == ["pixels", "1-64", "1-1024", "2-16", "2-256"]  # 16 px padded to 32
    assert summary["n_train"] == 48 and summary["n_test"] == 12  # a random 20% are the test
    assert (out / "models" / "2-256" / "model.json").is_file()
    assert len((out / "history.csv").read_text().splitlines()) == 1 + 4 * 2
    checks = json.loads((out / "findings.json").read_text())
    assert [f["number"] for f in checks] == [1, 2, 3, 4, 5, 6]
    assert all(f["holds"] in (True, False) for f in checks[:5])  # a 2 x 2 grid with labels
    assert checks[5]["holds"] is None  # no two configurations share a channel count here


def test_cli_refuses_bad_settings_before_training(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for extra, message in [
        (["--compressions", "3"], "share of the input"),
        (["--sizes", "9"], "size 9 is not in"),
        (["--probe-folds", "40"], "fewer than the 40 probe folds"),
        (["--epochs", "0"], "epochs must be a positive integer"),
        (["--test-fraction", "0.01"], "Need at least 2 training and 2 test images; got 59 and 1"),
    ]:
        assert main(["-q", *lab_args(tiny, "bad"), *extra]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad*"))
    assert main(["-q", "bottleneck", "--resume", "bad", "--epochs", "3"]) == 2
    assert "drop --epochs" in capsys.readouterr().err


def aeclust(*args, cwd, stop=None):
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    cmd = [sys.executable, "-m", "aeclust"] if stop is None else [
        sys.executable, str(HELPER), *stop, "--"]  # fmt: skip
    return subprocess.run([*cmd, "-q", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_a_killed_laboratory_resumes_to_the_same_models(tiny, tmp_path):
    def args(out):
        return [*lab_args(tiny, out), "--sizes", "1", "--compressions", "1/16,1/4"]

    straight = aeclust(*args("straight"), cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    # 48 training images in batches of 16: 3 steps an epoch; killed in epoch 2 of the second
    # configuration (1-256), after the first (1-64) was saved
    killed = aeclust(*args("lab"), cwd=tmp_path, stop=("SIGKILL", "1-256/autoencoder:5"))
    assert killed.returncode == -signal.SIGKILL
    stage = tmp_path / ".lab.partial"
    assert (stage / "models" / "1-64" / "model.json").is_file()
    assert not (stage / "models" / "1-256").exists()
    resumed = aeclust("bottleneck", "--resume", "lab", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("1-64", "1-256"):
        a = tmp_path / "lab" / "models" / name / "model.safetensors"
        assert a.read_bytes() == (tmp_path / "straight" / "models" / name / a.name).read_bytes()
    for name in ("configurations.csv", "svcca.json"):
        assert (tmp_path / "lab" / name).read_text() == (tmp_path / "straight" / name).read_text()
    assert not stage.exists()
