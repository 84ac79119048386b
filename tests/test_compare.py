"""The Liu & Zhang protocol: folds, scores, the IDC layout and `aeclust compare`."""

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from aeclust.cli import main
from aeclust.data import ImageSet, load_dataset, load_folder
from aeclust.errors import ConfigError, DataError
from aeclust.protocol import FoldResult, make_folds, score, summarise


def make_idc_folder(root, patients=6, per_class=5, size=16, seed=0):
    """A tiny folder in the breast-histopathology layout <patient>/<0|1>/<name>.png: class 1
    tiles are darker and redder; every patient has its own tint (what grouping is for)."""
    rng = np.random.default_rng(seed)
    for p in range(patients):
        tint = rng.uniform(-20, 20, 3)
        for label in (0, 1):
            base = np.array([230, 190, 220]) if label == 0 else np.array([150, 60, 120])
            for i in range(per_class):
                pixels = base + tint + rng.normal(0, 15, (size, size, 3))
                image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
                path = root / f"1{p:03d}" / str(label) / f"1{p:03d}_idx5_x{i}_class{label}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path)
    return root


@pytest.fixture(scope="module")
def idc(tmp_path_factory):
    return make_idc_folder(tmp_path_factory.mktemp("idc"))


@pytest.mark.filterwarnings("ignore:Skipped 1 class folder")
def test_idc_layout_with_a_stray_file_and_an_empty_class_folder(tmp_path):
    root = make_idc_folder(tmp_path, patients=3, per_class=2)
    (root / "1000" / "notes.txt").write_text("not an image")  # other extensions are ignored
    (root / "1003" / "0").mkdir(parents=True)  # a patient with one empty class folder
    (root / "1003" / "1").mkdir()
    Image.new("RGB", (16, 16)).save(root / "1003" / "1" / "1003_idx5_x0_class1.png")
    with pytest.warns(UserWarning, match="1003/0"):
        images = load_folder(root)
    assert images.X.shape == (13, 3, 16, 16) and images.class_names == ["0", "1"]
    assert sorted(set(images.groups)) == ["1000", "1001", "1002", "1003"]
    (root / "1001" / "1" / "broken.png").write_text("not a png")
    with pytest.raises(DataError, match="broken.png"):
        load_folder(root)
    with pytest.warns(UserWarning, match="broken.png"):
        assert len(load_folder(root, skip_bad=True)) == 13


def test_idc_tiles_resized_as_in_the_paper(tmp_path):
    root = make_idc_folder(tmp_path, patients=2, per_class=1, size=50)
    assert load_folder(root, image_size=250).X.shape == (4, 3, 250, 250)


def test_grouped_folds_never_split_a_patient(idc):
    data = load_folder(idc)
    folds = make_folds(data, 3, seed=0)
    assert len(folds) == 3
    seen = np.concatenate([test for _, test in folds])
    assert sorted(seen) == list(range(len(data)))  # every tile held out exactly once
    for train, test in folds:
        assert not set(data.groups[train]) & set(data.groups[test])
        assert set(data.y[test]) == {0, 1}
    flat = make_folds(data, 3, seed=0, grouped=False)
    assert any(set(data.groups[tr]) & set(data.groups[te]) for tr, te in flat)


def test_fold_errors_name_the_fix():
    X = np.zeros((12, 1, 4, 4), np.float32)
    with pytest.raises(DataError, match="labels"):
        make_folds(ImageSet(X=X))
    y = np.array([0] * 10 + [1] * 2)
    with pytest.raises(DataError, match="smallest class has 2"):
        make_folds(ImageSet(X=X, y=y), 3)
    with pytest.raises(ConfigError, match="cv must be"):
        make_folds(ImageSet(X=X, y=y), 1)
    groups = np.array(["a", "b"] * 6)
    with pytest.raises(DataError, match="at least 3 groups"):
        make_folds(ImageSet(X=X, y=np.arange(12) % 2, groups=groups), 3)


def test_scores_after_the_majority_vote():
    y = [0, 0, 0, 1, 1, 1]
    s = score(y, [0, 0, 1, 1, 1, 1], n_classes=2)  # clusters -> 0, 1
    assert s["f1"] == pytest.approx(6 / 7) and s["acc"] == pytest.approx(5 / 6)
    # both clusters are mostly class 0: everything is called 0, F1 of class 1 is 0
    s = score([0, 0, 0, 0, 1, 1], [0, 0, 1, 1, 0, 1], n_classes=2)
    assert s["f1"] == 0 and s["acc_majority"] == pytest.approx(4 / 6)
    assert s["acc"] == pytest.approx(3 / 6)  # one-to-one matching
    assert score(y, [1, 1, 0, 0, 0, 0], 2, pos_label=0)["f1"] == pytest.approx(0.8)  # mapped
    # label permutations do not change clustering scores
    assert score(y, [5, 5, 7, 7, 7, 7], 2) == score(y, [0, 0, 1, 1, 1, 1], 2)
    # the classifier's labels are scored as they are
    s = score(y, [1, 1, 1, 0, 0, 0], 2, supervised=True)
    assert s["acc"] == 0 and s["f1"] == 0
    assert score([0, 1, 2, 2], [0, 1, 2, 1], 3)["f1"] == pytest.approx((1 + 2 / 3 + 2 / 3) / 3)


def test_summary_ranks_by_f1_then_acc():
    def result(method, f1, acc):
        scores = {"f1": f1, "acc": acc, "acc_majority": acc, "nmi": 0.0, "ari": 0.0}
        return FoldResult(method, 0, scores, 1.0, 8, 2)

    rows = summarise([result("a", 0.5, 0.6), result("a", 0.7, 0.6), result("b", 0.6, 0.9),
                      result("c", 0.6, 0.7), result("c", 0.6, 0.7)])  # fmt: skip
    assert [r["method"] for r in rows] == ["b", "c", "a"] and [r["rank"] for r in rows] == [1, 2, 3]
    a = rows[2]
    assert a["f1"] == pytest.approx(0.6) and a["f1_std"] == pytest.approx(0.1)
    assert a["folds"] == 2


def test_select_classes_and_sample():
    digits = load_dataset("digits")
    two = digits.select_classes(["6", 0])  # by name and by id, in the order given
    assert two.class_names == ["6", "0"] and set(two.y) == {0, 1}
    assert (two.y == 0).sum() == (digits.y == 6).sum()
    small = two.sample(100, random_state=1)
    assert len(small) == 100 and abs((small.y == 0).sum() - 50) <= 1
    assert small.sample(100) is small and len(two.sample(100, 1)) == 100
    with pytest.raises(ConfigError, match="Unknown class"):
        digits.select_classes(["cat", "dog"])
    with pytest.raises(ConfigError, match="at least two"):
        digits.select_classes([3])


@pytest.mark.usefixtures("ihc_tiles")
def test_ihc_tiles_demo_dataset():
    tiles = load_dataset("ihc-tiles")
    assert tiles.X.shape == (961, 3, 32, 32) and tiles.y is None
    assert tiles.names[1] == "r0_c16" and 0 <= tiles.X.min() and tiles.X.max() <= 1


def test_compare_end_to_end(idc, tmp_path):
    out = tmp_path / "cmp"
    args = ["-q", "compare", "--data", str(idc), "--models", "fc,conv-nopool", "--cv", "2",
            "--epochs", "1", "--densenet-epochs", "1", "--param", "densenet:n_blocks=2",
            "--param", "conv-nopool:width=0.1", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    names = {p.name for p in out.iterdir()}
    assert {"table.csv", "table.md", "results.csv", "tsne.png", "scores.png", "report.html",
            "summary.json", "config.yaml"} <= names  # fmt: skip
    table = list(csv.DictReader(open(out / "table.csv")))
    assert sorted(r["method"] for r in table) == ["conv-nopool", "densenet", "fc", "kmeans"]
    assert [int(r["rank"]) for r in table] == [1, 2, 3, 4]
    assert all(0 <= float(r["f1"]) <= 1 and 0 <= float(r["acc"]) <= 1 for r in table)
    assert len(list(csv.DictReader(open(out / "results.csv")))) == 4 * 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["grouped"] and summary["n_samples"] == 60 and summary["pos_label"] == 1
    html = (out / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 2
    assert "Ranking" in html and "Supervised DenseNet" in html
    md = (out / "table.md").read_text()
    assert md.startswith("| rank | method | F1 | ACC")


def test_compare_bad_input_leaves_nothing(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((20, 1, 6, 6)))
    out = tmp_path / "cmp"
    assert main(["-q", "compare", "--data", str(tmp_path / "x.npy"), "--out", str(out)]) == 2
    assert "need labels" in capsys.readouterr().err and not out.exists()
    assert main(["-q", "compare", "--dataset", "digits", "--models", "vgg", "--out", str(out)]) == 2
    assert "Unknown model 'vgg'" in capsys.readouterr().err
    assert main(["-q", "compare", "--dataset", "digits", "--baselines", "svm"]) == 2
    assert "kmeans, densenet" in capsys.readouterr().err
    assert main(["-q", "compare", "--dataset", "digits", "--param", "fc=3"]) == 2
    assert "MODEL:KEY=VALUE" in capsys.readouterr().err
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_compare_checks_k_against_every_fold_before_training(no_training, tmp_path, capsys):
    out = tmp_path / "cmp"
    args = ["-q", "compare", "--dataset", "digits", "--max-samples", "300", "--cv", "3"]
    assert main([*args, "--k", "150", "--models", "fc", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "n_clusters=150 is larger than the number of samples in the held-out part" in err
    assert not out.exists()
