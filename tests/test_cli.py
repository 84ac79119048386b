import csv
import json
import re

import numpy as np
import pytest
import yaml

from aeclust.cli import main

FAST = ["--dataset", "digits", "--epochs", "2", "--model", "mlp", "--clusterer", "kmeans"]
FAST += ["--reducer", "none", "--seed", "0", "-q"][:-1]
RUN_FILES = {
    "config.yaml", "metrics.json", "assignments.csv", "embeddings.npy", "model.safetensors",
    "model.json", "history.json", "loss.png", "reconstructions.png", "latent_map.png",
    "clusters.png", "neighbours.png", "confusion.png", "report.html",
}  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    assert main(["-q", "run", *FAST, "--out", str(out)]) == 0
    return out


def test_run_writes_everything(run_dir):
    assert RUN_FILES <= {p.name for p in run_dir.iterdir()}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("acc", "nmi", "ari", "purity", "f1_macro", "silhouette", "n_clusters"):
        assert key in metrics
    assert 0.2 < metrics["acc"] <= 1 and metrics["n_clusters"] == 10
    assert set(metrics["timings"]) >= {"train", "encode", "cluster"}
    assert set(metrics["versions"]) >= {"aeclust", "torch", "scikit-learn"}
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["epochs"] == 2 and config["k"] == 10 and config["reducer"] is None
    rows = list(csv.DictReader(open(run_dir / "assignments.csv")))
    assert len(rows) == 1797 and set(rows[0]) == {"index", "cluster", "label", "class"}
    assert all(r["class"] == r["label"] for r in rows)  # digits are named by their digit
    assert np.load(run_dir / "embeddings.npy").shape == (1797, 10)
    assert len(json.loads((run_dir / "history.json").read_text())) == 2
    assert not [p for p in run_dir.parent.iterdir() if p.name.startswith(".")]


def test_report_embeds_pictures(run_dir):
    html = (run_dir / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) >= 5
    assert "Accuracy" in html and "epochs: 2" in html


def test_predict_on_saved_run(run_dir, tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "new.npz", X=(d.images[:40] / 16).astype(np.float32), y=d.target[:40])
    out = tmp_path / "pred"
    assert main(["-q", "predict", "--run", str(run_dir), "--data", str(tmp_path / "new.npz"),
                 "--out", str(out)]) == 0  # fmt: skip
    rows = list(csv.DictReader(open(out / "assignments.csv")))
    train = list(csv.DictReader(open(run_dir / "assignments.csv")))
    assert [r["cluster"] for r in rows] == [r["cluster"] for r in train[:40]]


def test_yaml_config_and_cli_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: digits\nepochs: 1\nmodel: mlp\nreducer: none\nclusterer: gmm\nk: 4\n")
    out = tmp_path / "run"
    assert main(["-q", "run", "--config", str(cfg), "--k", "3", "--out", str(out)]) == 0
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["k"] == 3 and config["clusterer"] == "gmm" and config["epochs"] == 1
    assert config["augment"] is None  # resolved from AEClusterer's default (off)


def test_augment_option(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["-q", "run", *FAST, "--epochs", "1", "--augment", "auto", "--out", str(out)]) == 0
    assert yaml.safe_load((out / "config.yaml").read_text())["augment"] == "auto"
    joint = ["run", "--dataset", "digits", "--model", "dec", "--augment", "affine"]
    assert main([*joint, "--out", str(tmp_path / "dec")]) == 2
    assert "augment applies to the autoencoder models" in capsys.readouterr().err
    assert not (tmp_path / "dec").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "mnist6k"], "mnist5k"),
        (["--data", "/no/such/path"], "does not exist"),
        (
            ["--model", "resnet50"],
            "choose one of alexnet, bottleneck-cae, conv, conv-nopool"
            ", conv-pool, dcae, fc, hrwae, mlp, resnet, "
            "acrbm, ae-acrbm, dcae-kmeans",
        ),
        (["--clusterer", "dbscan"], "hdbscan"),
        (["--reducer", "tsne"], "choose one of umap, none"),
        (["--k", "1"], "at least 2"),
        (["--k", "5000"], "larger than the number of samples"),
    ],
)
def test_bad_input_exits_nonzero_without_run_dir(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["-q", "run", *FAST, *args, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_unknown_yaml_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset: digits\nepoch: 3\n")
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Unknown setting 'epoch'" in err and "Did you mean 'epochs'" in err


def test_out_is_a_file(tmp_path, capsys):
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert main(["run", *FAST, "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_existing_run_dir_needs_overwrite(run_dir, capsys):
    assert main(["run", *FAST, "--out", str(run_dir)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_overwrite_replaces_only_earlier_aeclust_outputs(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert main(["-q", "run", *FAST, "--epochs", "1", "--out", str(out)]) == 0
    assert (out / ".aeclust").is_file()
    assert main(["-q", "run", *FAST, "--epochs", "1", "--out", str(out), "--overwrite"]) == 0
    # a folder aeclust did not write, one that holds the input data, the current folder
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("keep me")
    np.save(out / "x.npy", np.random.default_rng(0).random((20, 1, 8, 8)))
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    cases = [
        (["--out", str(notes)], "was not written by aeclust"),
        (["--data", str(out / "x.npy"), "--out", str(out)], "holds the input"),
        (["--out", "."], "is the current directory"),
    ]
    for args, message in cases:
        assert main(["-q", "run", *FAST, *args, "--overwrite"]) == 2
        assert message in capsys.readouterr().err
    assert (notes / "thesis.txt").read_text() == "keep me" and (out / "x.npy").is_file()


def test_run_files_are_readable_by_others(run_dir):
    assert run_dir.stat().st_mode & 0o777 == 0o755
    for name in ("model.safetensors", "checkpoints/autoencoder.safetensors", "report.html"):
        assert (run_dir / name).stat().st_mode & 0o777 == 0o644, name


def test_loaded_run_model_can_be_refit(run_dir):
    from sklearn.datasets import load_digits

    from aeclust import AEClusterer

    est = AEClusterer.load(run_dir)
    assert est.checkpoint is None  # not the staging path, which is gone
    X = (load_digits().images[:60, None] / 16).astype(np.float32)
    assert len(est.set_params(epochs=1, verbose=False).fit(X).labels_) == 60


def test_predict_resizes_and_recolours_new_images(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    train, new = tmp_path / "train", tmp_path / "new"
    for i in range(24):
        (train / f"c{i % 3}").mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(train / f"c{i % 3}" / f"{i}.png")
    new.mkdir()
    for i in range(5):  # grayscale and another size
        Image.fromarray(rng.integers(0, 256, (20, 16), dtype=np.uint8)).save(new / f"{i}.png")
    run = tmp_path / "run"
    args = ["--model", "mlp", "--clusterer", "kmeans", "--reducer", "none", "--epochs", "1"]
    assert main(["-q", "run", "--data", str(train), *args, "--out", str(run)]) == 0
    assert main(["-q", "predict", "--run", str(run), "--data", str(new)]) == 0
    rows = list(csv.DictReader(open(run / "predict-new" / "assignments.csv")))
    assert len(rows) == 5 and {r["cluster"] for r in rows} <= {"0", "1", "2"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("epochs: two", "The setting 'epochs' must be a whole number or empty; got 'two'"),
        ("epochs: 1.5", "must be a whole number"),
        ("compare: maybe", "The setting 'compare' must be true or false"),
        ("lr: true", "The setting 'lr' must be a number"),
    ],
)
def test_yaml_values_of_the_wrong_type(tmp_path, capsys, text, message):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"dataset: digits\n{text}\n")
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_yaml_numbers_written_as_yaml_reads_them(tmp_path):
    from aeclust.config import make_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text("lr: 1e-3\nbatch_size: 1.28e2\nval_fraction: '0.1'\nskip_bad: 'false'\n")
    config = make_config(cfg)  # PyYAML reads 1e-3 as a string
    assert (config.lr, config.batch_size, config.val_fraction) == (0.001, 128, 0.1)
    assert config.skip_bad is False and isinstance(config.batch_size, int)


def test_joint_method_rejects_clusterer_settings(tmp_path, capsys):
    out = tmp_path / "dec"
    assert main(["run", "--dataset", "digits", "--model", "dec", "--clusterer", "kmeans",
                 "--out", str(out)]) == 2  # fmt: skip
    assert "clusterer applies to the autoencoder models, not to 'dec'" in capsys.readouterr().err
    assert not out.exists()


def test_bad_images_in_folder(tmp_path, capsys):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        Image.fromarray((np.random.rand(8, 8) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not really a png")
    out = tmp_path / "run"
    args = ["run", *FAST[2:], "--data", str(folder), "--k", "2", "--out", str(out)]
    assert main(args) == 2
    assert "broken.png" in capsys.readouterr().err and not out.exists()
    assert main([*args, "--skip-bad"]) == 0
    assert (out / "report.html").exists()


def test_run_dcae_kmeans(tmp_path):
    out = tmp_path / "run"
    args = ["-q", "run", "--dataset", "digits", "--model", "dcae-kmeans", "--epochs", "2"]
    assert main([*args, "--reducer", "none", "--out", str(out)]) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2 and "acc" in history[0] and "e2" in history[0]
    assert (out / "metrics_per_epoch.png").exists() and (out / "report.html").exists()
    # the same network without the clustering loss, for the side-by-side map (Fig. 2)
    reference = json.loads((out / "metrics.json").read_text())["without_clustering_loss"]
    assert 0 <= reference["acc"] <= 1 and "2 epochs" in reference["model"]
    assert (out / "with_without_clustering_loss.png").exists()
    assert "without (right) the clustering loss" in (out / "report.html").read_text()


def test_run_dcec_with_params(tmp_path):
    out = tmp_path / "run"
    args = ["-q", "run", "--dataset", "digits", "--model", "dcec", "--epochs", "1"]
    params = ["--param", "pretrain_epochs=1", "--param", "gamma=0.5"]
    assert main([*args, *params, "--no-compare", "--out", str(out)]) == 0
    assert not (out / "with_without_clustering_loss.png").exists()
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["model_params"] == {"pretrain_epochs": 1, "gamma": 0.5}
    history = json.loads((out / "history.json").read_text())
    assert history[0]["pretrain"] and "delta_label" in history[-1]


def test_bad_param(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["run", "--dataset", "digits", "--model", "dec", "--out", str(out)]
    assert main([*args, "--param", "pretrain_epochs"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main([*args, "--param", "lamda=1"]) == 2
    assert "lamda" in capsys.readouterr().err
    assert main([*args, "--epochs", "2", "--param", "epochs=3"]) == 2
    assert "given twice" in capsys.readouterr().err
    assert not out.exists()


def test_run_a_paper_model_with_local_encoder_weights(tmp_path, capsys):
    from safetensors.torch import save_file

    from aeclust.nn import build_autoencoder

    def encoder_file(width, name):
        encoder = build_autoencoder("conv-nopool", (1, 8, 8), width=width).encoder
        path = tmp_path / name
        save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, str(path))
        return path

    config = tmp_path / "c.yaml"
    config.write_text("autoencoder_params: {width: 0.1}\n")
    base = ["-q", "run", *FAST, "--model", "conv-nopool", "--config", str(config)]
    out = tmp_path / "ok"
    assert main([*base, "--encoder-weights", str(encoder_file(0.1, "ok.safetensors")),
                 "--out", str(out)]) == 0  # fmt: skip
    assert yaml.safe_load((out / "config.yaml").read_text())["latent_dim"] == 192  # paper's
    bad = tmp_path / "bad"
    assert main([*base, "--encoder-weights", str(encoder_file(0.2, "x.safetensors")),
                 "--out", str(bad)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "shape" in err and "x.safetensors" in err and not bad.exists()


@pytest.mark.parametrize("reducer", ["umap", "none"])
def test_too_many_clusters_fails_before_training(no_training, tmp_path, capsys, reducer):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((50, 1, 8, 8)))
    out = tmp_path / "run"
    args = ["-q", "run", "--data", str(tmp_path / "x.npy"), "--k", "51", "--out", str(out)]
    assert main([*args, "--reducer", reducer]) == 2
    err = capsys.readouterr().err
    assert "n_clusters=51 is larger than the number of samples (50)" in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_run_progress_in_a_log_is_one_line_per_epoch(tmp_path, capsys):
    assert main(["run", *FAST, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    epochs = [line for line in err.splitlines() if " epoch " in line]
    assert len(epochs) == 2 and "epoch 2/2: loss" in epochs[1] and "samples/s" in epochs[1]


@pytest.mark.usefixtures("optional_datasets")
def test_datasets_lists_builtins(capsys, optional_datasets):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "mnist5k", "fashion-mnist", "ihc-tiles"):
        assert name in out
    if optional_datasets == "hidden":  # as on a new machine: says how to get them
        assert "apt-get install dataset-fashion-mnist" in out and "aeclust[demo]" in out
