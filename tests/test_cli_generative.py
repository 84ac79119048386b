"""`aeclust run --model beta-vae|wae-gan|hrwae-gan` and `aeclust generate`."""

import json

import numpy as np
import pytest
import yaml

from aeclust.cli import main

FAST = ["-q", "run", "--dataset", "digits", "--epochs", "1", "--seed", "0"]


@pytest.fixture(scope="module")
def hrwae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "hrwae"
    params = ["--param", "updates=[1,2]", "--param", "layer_matching=0.5"]
    assert main([*FAST, "--model", "hrwae-gan", *params, "--clusterer", "hdbscan",
                 "--out", str(out)]) == 0  # fmt: skip
    return out


def test_a_hierarchical_run_reports_every_group(hrwae_run):
    metrics = json.loads((hrwae_run / "metrics.json").read_text())
    assert [g["group"] for g in metrics["groups"]] == [0, 1] and metrics["rollbacks"] == 0
    assert {"n_clusters", "labelled", "acc_labelled", "acc", "silhouette"} <= set(
        metrics["groups"][1]
    )
    for name in ("generated.png", "interpolations.png", "reconstruction_vs_clusters.png"):
        assert (hrwae_run / name).exists()
    report = (hrwae_run / "report.html").read_text()
    assert "Latent groups (Morais" in report and "Fig. 4.13" in report
    config = yaml.safe_load((hrwae_run / "config.yaml").read_text())
    assert config["model_params"] == {"updates": [1, 2], "layer_matching": 0.5}
    assert config["latent_dim"] == 23


def test_generate_writes_a_grid_and_an_array_and_refuses_to_overwrite(hrwae_run, capsys):
    assert main(["generate", "--run", str(hrwae_run), "--n", "10", "--seed", "3"]) == 0
    images = np.load(hrwae_run / "generated-10-seed3.npy")
    assert images.shape == (10, 1, 8, 8) and (hrwae_run / "generated-10-seed3.png").exists()
    assert main(["generate", "--run", str(hrwae_run), "--n", "10", "--seed", "3"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    again = hrwae_run / "again"
    assert main(["generate", "--run", str(hrwae_run), "--n", "10", "--seed", "3",
                 "--out", str(again)]) == 0  # fmt: skip
    assert np.array_equal(np.load(again.with_suffix(".npy")), images)


def test_generate_needs_a_generative_run(tmp_path, capsys):
    out = tmp_path / "mlp"
    assert main([*FAST, "--model", "mlp", "--reducer", "none", "--out", str(out)]) == 0
    assert main(["generate", "--run", str(out)]) == 2
    assert "cannot generate images" in capsys.readouterr().err
    assert not list(out.glob("generated*"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "wae-gan", "--param", "latent_groups=9"], "latent_groups=9 needs"),
        (["--model", "beta-vae", "--param", "alpha=3"], "Unknown parameter 'alpha'"),
        (["--model", "wae-gan", "--augment", "affine"], "trains on the images as given"),
    ],
)
def test_bad_settings_fail_before_training_and_leave_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main([*FAST, *args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / ".run.partial").exists()


def test_k_auto_takes_the_number_of_clusters_from_hdbscan(tmp_path, capsys):
    out = tmp_path / "auto"
    assert main([*FAST, "--model", "wae-gan", "--k", "auto", "--out", str(out)]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["k"] == "auto" and metrics["n_clusters"] >= 2
    assert main([*FAST, "--model", "mlp", "--k", "auto", "--out", str(tmp_path / "m")]) == 2
    assert "k=auto takes K from HDBSCAN" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([*FAST, "--model", "wae-gan", "--k", "five", "--out", str(tmp_path / "f")])
    assert exit_.value.code == 2 and "must be a whole number or auto" in capsys.readouterr().err
