"""Tests of aeclust.plot and aeclust.report on tiny random data."""

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from aeclust import plot  # noqa: E402
from aeclust.errors import ConfigError, DataError  # noqa: E402
from aeclust.report import RawHTML, html_page, table, write_report  # noqa: E402

SHAPES = [(1, 8, 8), (3, 12, 12)]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def labels_with_noise(rng, n, k):
    """k clusters (0..k-1) and some noise (-1)."""
    labels = rng.integers(0, k, size=n)
    labels[rng.random(n) < 0.1] = -1
    return labels


@pytest.mark.parametrize("shape", SHAPES)
def test_image_plots(rng, shape):
    X = rng.random((40, *shape), dtype=np.float32)
    X_hat = X + rng.normal(0, 0.3, X.shape)  # leaves [0, 1]: must be clipped
    assert isinstance(plot.plot_reconstructions(X, X_hat, n=6), Axes)
    assert isinstance(plot.plot_reconstructions(X[:3], X_hat[:3], n=10), Axes)
    clusters = labels_with_noise(rng, 40, 7)
    clusters[:2] = 99  # a cluster smaller than n_per_cluster
    ax = plot.plot_cluster_montage(X, clusters, n_per_cluster=5)
    assert isinstance(ax, Axes)
    names = [t.get_text() for t in ax.get_yticklabels()]
    assert names[-1].startswith("noise") and "cluster 99 (n=2)" in names


def test_four_channel_images_show_first_channel(rng):
    X = rng.random((5, 4, 8, 8))
    ax = plot.plot_reconstructions(X, X, n=5)
    assert ax.images[0].get_array().ndim == 2


def test_montage_is_seeded_and_handles_many_clusters(rng):
    X = rng.random((300, 1, 8, 8))
    clusters = np.arange(300) % 50
    a = plot.plot_cluster_montage(X, clusters, random_state=1).images[0].get_array()
    b = plot.plot_cluster_montage(X, clusters, random_state=1).images[0].get_array()
    np.testing.assert_array_equal(a, b)


def test_reconstruction_shape_mismatch(rng):
    with pytest.raises(DataError):
        plot.plot_reconstructions(rng.random((4, 1, 8, 8)), rng.random((4, 1, 8, 7)))


def test_history_plots():
    history = [
        {"epoch": 1, "loss": 10.0, "lr": 1e-3},
        {"epoch": 2, "loss": 1.0, "val_loss": 1.2, "acc": 0.5},
        {"epoch": 3, "loss": 0.1, "val_loss": 0.3, "acc": 0.7, "nmi": 0.6},
    ]
    ax = plot.plot_history(history)
    assert isinstance(ax, Axes)
    assert {line.get_label() for line in ax.get_lines()} == {"loss", "val_loss"}
    assert ax.get_yscale() == "log"
    ax = plot.plot_metric_history(history, keys=("acc", "nmi", "ari"))
    assert [line.get_label() for line in ax.get_lines()] == ["acc", "nmi"]
    flat = plot.plot_history([{"loss": 1.0}, {"loss": 0.9}])
    assert flat.get_yscale() == "linear"
    with pytest.raises(DataError):
        plot.plot_history([{"epoch": 1, "lr": 0.1}])


def test_embed_2d_pca(rng):
    Y, method = plot.embed_2d(rng.normal(size=(30, 6)), method="pca")
    assert Y.shape == (30, 2) and method == "PCA"
    Y, method = plot.embed_2d(rng.normal(size=(10, 1)), method="pca")
    assert Y.shape == (10, 2)
    with pytest.raises(ConfigError):
        plot.embed_2d(rng.normal(size=(10, 3)), method="isomap")


def test_embed_2d_tsne(rng):
    Z = np.vstack([rng.normal(size=(20, 60)), rng.normal(size=(20, 60)) + 8])
    Y, method = plot.embed_2d(Z, random_state=0, method="tsne")  # PCA to 50 dims first
    assert Y.shape == (40, 2) and method == "t-SNE"
    again, _ = plot.embed_2d(Z, random_state=0, method="tsne")
    np.testing.assert_allclose(Y, again)
    gap = np.linalg.norm(Y[:20].mean(0) - Y[20:].mean(0))
    assert gap > 2 * max(Y[:20].std(0).max(), Y[20:].std(0).max())  # two groups stay apart


def test_embedding_and_latent_map(rng):
    Y = rng.normal(size=(60, 2))
    clusters = labels_with_noise(rng, 60, 4)
    y_true = rng.integers(0, 3, size=60)
    ax = plot.plot_embedding(Y, clusters, title="t")
    assert isinstance(ax, Axes)
    assert any(t.get_text().startswith("noise") for t in ax.get_legend().get_texts())
    many = plot.plot_embedding(Y, np.arange(60) % 30)  # > 20 labels: no legend
    assert many.get_legend() is None
    fig = plot.plot_latent_map(Y, clusters, y_true, method="PCA", class_names=["a", "b", "c"])
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert fig.axes[0].get_xlabel() == "PCA-1"
    assert len(plot.plot_latent_map(Y, clusters).axes) == 1


def test_matched_row_order_hand_made():
    # rows = clusters 0..3, columns = classes 0..2
    M = np.array(
        [
            [0, 9, 1],  # cluster 0 -> class 1
            [1, 0, 8],  # cluster 1 -> class 2
            [7, 2, 0],  # cluster 2 -> class 0
            [0, 3, 0],  # cluster 3: unmatched (4 clusters, 3 classes)
        ]
    )
    order, matched = plot.matched_row_order(M)
    assert order.tolist() == [2, 0, 1, 3]
    assert matched.tolist() == [1, 2, 0, -1]
    order, matched = plot.matched_row_order(M, noise_row=0)
    assert order[-1] == 0 and matched[0] == -1
    assert order.tolist() == [2, 3, 1, 0]


def test_plot_confusion(rng):
    y_true = rng.integers(0, 3, size=80)
    clusters = labels_with_noise(rng, 80, 5)
    ax = plot.plot_confusion(y_true, clusters, class_names=["cat", "dog", "owl"])
    assert isinstance(ax, Axes)
    rows = [t.get_text() for t in ax.get_yticklabels()]
    assert len(rows) == 6 and rows[-1].startswith("noise")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "owl"]
    # a perfect but permuted clustering lies on the diagonal
    y = np.repeat([0, 1, 2], 5)
    ax = plot.plot_confusion(y, (y + 1) % 3)
    assert [t.get_text().split()[0] for t in ax.get_yticklabels()] == ["1", "2", "0"]
    assert "100.0%" in ax.get_title()


def test_save_figure(tmp_path, rng):
    ax = plot.plot_embedding(rng.normal(size=(10, 2)), np.zeros(10, int))
    out = plot.save_figure(ax, tmp_path / "sub" / "e.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run_dir(tmp_path, rng):
    metrics = {
        "dataset": "digits",
        "n_samples": 1797,
        "model": "ConvAE",
        "clusterer": "kmeans",
        "acc": 0.8123,
        "nmi": 0.7456,
        "silhouette": 0.31,
        "n_clusters": 10,
        "timings": {"train": 12.5, "encode": 0.4, "cluster": 71.0},
        "versions": {"aeclust": "0.1.0", "torch": "2.13.0"},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "config.yaml").write_text("model:\n  name: ConvAE  # <latent & dims>\n")
    X = rng.random((12, 1, 8, 8))
    plot.save_figure(plot.plot_reconstructions(X, X, n=4), tmp_path / "reconstructions.png")
    plot.save_figure(plot.plot_cluster_montage(X, np.arange(12) % 3), tmp_path / "zzz.png")
    return tmp_path


def test_write_report(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    text = path.read_text(encoding="utf-8")
    assert "0.8123" in text and "0.7456" in text and "digits" in text and "ConvAE" in text
    assert "no labels" in text  # ari, purity, f1_macro are missing
    assert "name: ConvAE  # &lt;latent &amp; dims&gt;" in text  # config verbatim, escaped
    assert text.count("data:image/png;base64,") == 2
    assert text.index("reconstructions") < text.index(">zzz<")  # known figures first
    assert 'src="http' not in text and "<script" not in text
    assert "1 min 11 s" in text  # timings
    assert not list(run_dir.glob("*.tmp"))


def test_write_report_custom_path(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("elsewhere") / "r.html"
    assert write_report(run_dir, out) == out and out.is_file()


def test_report_needs_metrics(tmp_path):
    with pytest.raises(DataError, match="not a run directory"):
        write_report(tmp_path)


def test_html_helpers_escape():
    page = html_page("a <b>", table([["<x>", RawHTML("<i>1.5</i>")]], ["k", "v"], "lr"))
    assert "<title>a &lt;b&gt;</title>" in page and "<td>&lt;x&gt;</td>" in page
    assert '<td class="num"><i>1.5</i></td>' in page
