"""Data larger than memory: lazy folders, the uint8 cache, memory maps under a memory
limit, the memory guard, and the CLI's --stream."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from aeclust.cli import main
from aeclust.data import load_dataset, memory
from aeclust.data.cache import cache_folder
from aeclust.data.lazy import LazyFolder
from aeclust.errors import ConfigError, DataError
from aeclust.training.inference import read_batches


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    """An IDC-like folder: <patient>/<0|1>/*.png, 40 RGB tiles of 12x10 in two patterns."""
    root = tmp_path_factory.mktemp("tiles") / "idc"
    rng = np.random.default_rng(0)
    for i in range(40):
        label = i % 2
        base = np.linspace(0, 255, 10)[None, :, None] if label else np.full((1, 10, 1), 60.0)
        tile = np.clip(base + rng.normal(0, 25, (12, 10, 3)), 0, 255).astype(np.uint8)
        path = root / f"patient{i % 4}" / str(label) / f"tile{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(tile).save(path)
    return root


def test_a_lazy_folder_decodes_the_same_images_as_the_eager_loader(tiles):
    eager = load_dataset(tiles, image_size=(16, 16))
    lazy = load_dataset(tiles, image_size=(16, 16), stream=True, workers=2)
    assert isinstance(lazy.X, LazyFolder) and lazy.X.shape == eager.X.shape
    assert np.array_equal(lazy.X[np.arange(len(eager))], eager.X)
    assert lazy.names == eager.names and np.array_equal(lazy.y, eager.y)
    assert np.array_equal(lazy.groups, eager.groups)
    # a subset stays on disk and reads the right rows, also through worker processes
    part = lazy.subset(np.array([5, 1, 30]))
    assert isinstance(part.X, LazyFolder)
    assert np.array_equal(part.X[np.arange(3)], eager.X[[5, 1, 30]])
    batches = [torch.arange(0, 16), torch.arange(16, 32), torch.arange(32, 40)]
    read = torch.cat(list(read_batches(lazy.X, batches)))
    assert np.array_equal(read.numpy(), eager.X)


def test_the_cache_reads_back_as_the_folder_bit_for_bit_with_its_labels(tiles, tmp_path):
    cache_folder(tiles, tmp_path / "c.npy", image_size=12, workers=1, show_progress=False)
    assert np.load(tmp_path / "c.npy", mmap_mode="r").dtype == np.uint8
    eager = load_dataset(tiles, image_size=12)
    for cached in (load_dataset(tmp_path / "c.npy", stream=True),
                   load_dataset(tmp_path / "c.npy")):  # fmt: skip
        assert np.array_equal(cached.X[np.arange(len(eager))], eager.X)
        assert cached.names == eager.names and cached.class_names == eager.class_names
        assert np.array_equal(cached.y, eager.y) and np.array_equal(cached.groups, eager.groups)
    assert not list(tmp_path.glob(".*"))  # no temporary files left
    with pytest.raises(ConfigError, match="--overwrite"):
        cache_folder(tiles, tmp_path / "c.npy", image_size=12, show_progress=False)


def test_the_cache_names_undecodable_files_or_leaves_them_out(tiles, tmp_path):
    folder = tmp_path / "idc"
    for src in tiles.rglob("*.png"):
        dst = folder / src.relative_to(tiles)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    broken = sorted(folder.rglob("*.png"))[3]
    broken.write_bytes(broken.read_bytes()[:80])  # a header that opens, pixels that do not
    with pytest.raises(DataError, match="could not be decoded"):
        cache_folder(folder, tmp_path / "c.npy", workers=0, show_progress=False)
    assert not list(tmp_path.glob("*.npy")) and not list(tmp_path.glob(".*"))
    kept = cache_folder(folder, tmp_path / "c.npy", skip_bad=True, show_progress=False)
    assert len(kept) == 39 and str(broken.relative_to(folder)) not in kept.names


def test_a_float_image_with_nan_is_a_bad_file_eagerly_lazily_and_in_the_cache(tmp_path):
    folder = tmp_path / "f"
    for k in range(4):
        plane = np.full((6, 6), 0.25 * k, dtype=np.float32)
        plane[1, 2] = np.nan if k == 2 else plane[1, 2]
        (folder / "ab"[k % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(plane, mode="F").save(folder / "ab"[k % 2] / f"{k}.tif")
    with pytest.raises(DataError, match=r"a/2\.tif.*NaN or infinite"):
        load_dataset(folder)
    lazy = load_dataset(folder, stream=True).X  # listed up front, refused when read
    assert isinstance(lazy, LazyFolder) and len(lazy) == 4
    with pytest.raises(DataError, match=r"2\.tif' could not be decoded.*NaN or infinite"):
        lazy[np.arange(4)]
    with pytest.raises(DataError, match=r"a/2\.tif.*NaN or infinite"):
        cache_folder(folder, tmp_path / "c.npy", show_progress=False)
    assert len(cache_folder(folder, tmp_path / "c.npy", skip_bad=True, show_progress=False)) == 3


def test_a_npy_larger_than_memory_is_refused_by_the_guard_and_a_short_one_as_truncated(
    tmp_path, capsys
):
    def npy(path, shape, size):
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": "|u1", "fortran_order": False, "shape": shape}
            )
            f.truncate(f.tell() + size)  # sparse: no disk is used
        return path

    shape = (1_000_000, 3, 250, 250)  # 188 GB of uint8, 750 GB as float32
    huge = npy(tmp_path / "huge.npy", shape, int(np.prod(shape)))
    assert main(["run", "--data", str(huge), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "would need 937.5 GB" in err and "--stream" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run*"))
    short = npy(tmp_path / "short.npy", shape, 16)  # 136 bytes that promise 188 GB
    for stream in (False, True):
        with pytest.raises(DataError, match="truncated"):
            load_dataset(short, stream=stream)


def test_the_guard_counts_what_the_process_may_still_take(tmp_path, monkeypatch):
    X = np.zeros((100, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "x.npy", X)
    assert len(load_dataset(tmp_path / "x.npy")) == 100
    monkeypatch.setattr(memory, "available_bytes", lambda: 100 * 64 * 4)  # too little
    with pytest.raises(DataError, match=r"would need .*--stream"):
        load_dataset(tmp_path / "x.npy")
    assert len(load_dataset(tmp_path / "x.npy", stream=True)) == 100  # streaming needs none


def test_a_truncated_npy_is_refused_as_truncated(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((50, 1, 8, 8), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:-100])
    for stream in (False, True):
        with pytest.raises(DataError, match="truncated"):
            load_dataset(path, stream=stream)


def test_stream_refuses_what_it_cannot_stream(tmp_path, tiles):
    np.savez(tmp_path / "x.npz", X=np.zeros((4, 1, 8, 8), dtype=np.float32))
    with pytest.raises(DataError, match="cannot be streamed"):
        load_dataset(tmp_path / "x.npz", stream=True)
    np.save(tmp_path / "x.npy", np.zeros((4, 1, 8, 8), dtype=np.float32))
    with pytest.raises(DataError, match="image-size"):
        load_dataset(tmp_path / "x.npy", stream=True, image_size=16)
    with pytest.raises(ConfigError, match="workers"):
        load_dataset(tiles, stream=True, workers=-1)


def test_training_from_a_npy_under_an_address_space_limit_below_the_file_size(tmp_path):
    """The process may not take even the file's size of memory more, yet fit and transform
    read the file batch by batch and give the result of the same images in memory."""
    n = 40_000
    X = (np.random.default_rng(0).random((n, 1, 32, 32)) * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", X)  # 41 MB; 164 MB as float32
    script = textwrap.dedent(f"""
        import json, resource, sys
        import numpy as np
        from aeclust import AEClusterer
        from aeclust.data import MappedImages
        settings = dict(autoencoder="mlp", autoencoder_params={{"hidden": [16]}},
                        latent_dim=4, clusterer="kmeans", epochs=1, batch_size=500,
                        random_state=0, verbose=False)
        if sys.argv[1] == "limited":
            small = np.random.default_rng(1).random((600, 1, 32, 32), dtype=np.float32)
            AEClusterer(**settings).fit(small).transform(small)  # imports, thread pools
            used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
            limit = used + 30_000_000  # below the file's 41 MB
            _, hard = resource.getrlimit(resource.RLIMIT_AS)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
            try:
                bytearray(41_000_000)
                raise SystemExit("the limit does not hold")
            except MemoryError:
                pass
            X = MappedImages("{tmp_path / "x.npy"}")
        else:
            X = np.load("{tmp_path / "x.npy"}").astype(np.float32) / 255
        model = AEClusterer(**settings).fit(X)
        json.dump({{"labels": model.labels_.tolist(),
                   "codes": model.transform(X[np.arange(50)]).tolist()}}, sys.stdout)
    """)
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    runs = {}
    for mode in ("limited", "memory"):
        result = subprocess.run([sys.executable, "-c", script, mode], capture_output=True,
                                text=True, env=env, timeout=300)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        runs[mode] = json.loads(result.stdout)
    assert runs["limited"] == runs["memory"]


def test_cli_cache_then_run_and_predict_with_stream(tiles, tmp_path, capsys):
    cache = tmp_path / "tiles.npy"
    assert main(["-q", "cache", "--data", str(tiles), "--out", str(cache), "--image-size",
                 "16", "--workers", "1"]) == 0  # fmt: skip
    assert "--stream" in capsys.readouterr().out
    common = ["--epochs", "1", "--batch-size", "8", "--reducer", "none", "--clusterer",
              "kmeans", "--k", "2", "--latent-dim", "4"]  # fmt: skip
    assert main(["-q", "run", "--data", str(cache), "--stream", "--workers", "1", *common,
                 "--out", str(tmp_path / "streamed")]) == 0  # fmt: skip
    assert main(["-q", "run", "--data", str(tiles), "--image-size", "16", *common,
                 "--out", str(tmp_path / "eager")]) == 0  # fmt: skip
    for name in ("assignments.csv", "embeddings.npy", "model.safetensors"):
        streamed, eager = (tmp_path / run / name for run in ("streamed", "eager"))
        assert streamed.read_bytes() == eager.read_bytes()
    assert main(["-q", "predict", "--run", str(tmp_path / "eager"), "--data", str(cache),
                 "--stream", "--out", str(tmp_path / "pred")]) == 0  # fmt: skip
    rows = (tmp_path / "pred" / "assignments.csv").read_text().splitlines()
    assert rows[0] == "index,name,cluster,label,class" and len(rows) == 41
    assert rows[1:] == (tmp_path / "eager" / "assignments.csv").read_text().splitlines()[1:]


def test_compare_streams_its_folds_and_scores_the_autoencoder_as_in_memory(tiles, tmp_path):
    cache = tmp_path / "tiles.npy"
    cache_folder(tiles, cache, image_size=16, workers=0, show_progress=False)
    common = ["--models", "conv", "--baselines", "kmeans,densenet", "--cv", "2", "--epochs",
              "1", "--densenet-epochs", "1", "--latent-dim", "4",
              "--param", "conv:channels=[4,4,4]"]  # fmt: skip
    assert main(["-q", "compare", "--data", str(cache), "--stream", *common,
                 "--out", str(tmp_path / "streamed")]) == 0  # fmt: skip
    assert main(["-q", "compare", "--data", str(cache), *common,
                 "--out", str(tmp_path / "eager")]) == 0  # fmt: skip
    rows = {}
    for run in ("streamed", "eager"):
        lines = (tmp_path / run / "results.csv").read_text().splitlines()
        rows[run] = {(r.split(",")[0], r.split(",")[1]): r.split(",")[2:-3] for r in lines[1:]}
    assert set(rows["streamed"]) == set(rows["eager"])
    for key in rows["eager"]:
        if key[0] != "kmeans":  # on disk, sole k-means is fed in mini-batches (partial_fit)
            assert rows["streamed"][key] == rows["eager"][key], key


def test_a_checkpoint_of_a_streamed_npy_resumes_only_on_the_same_bytes(tmp_path):
    from aeclust import AEClusterer
    from aeclust.data import MappedImages

    X = (np.random.default_rng(0).random((120, 1, 8, 8)) * 255).astype(np.uint8)
    np.save(tmp_path / "a.npy", X)
    X[7, 0, 3, 3] ^= 1  # one pixel, one bit
    np.save(tmp_path / "b.npy", X)
    settings = dict(autoencoder="mlp", latent_dim=3, clusterer="kmeans", epochs=2,
                    batch_size=32, random_state=0, verbose=False)  # fmt: skip
    a = MappedImages(tmp_path / "a.npy")
    first = AEClusterer(**settings, checkpoint=str(tmp_path / "ckpt")).fit(a)
    again = AEClusterer(**settings).fit(MappedImages(tmp_path / "a.npy"), resume=tmp_path / "ckpt")
    assert np.array_equal(first.labels_, again.labels_)
    with pytest.raises(ConfigError, match="sha256"):
        AEClusterer(**settings).fit(MappedImages(tmp_path / "b.npy"), resume=tmp_path / "ckpt")
    assert a.identity() != a.subset(np.arange(100)).identity()


def test_images_on_disk_index_like_an_array(tmp_path):
    from aeclust.data import MappedImages

    X = np.arange(5 * 3 * 2 * 2, dtype=np.float32).reshape(5, 3, 2, 2)
    np.save(tmp_path / "x.npy", X)
    images = MappedImages(tmp_path / "x.npy")
    assert np.array_equal(images[3], X[3]) and np.array_equal(images[-1], X[-1])
    assert np.array_equal(images[1:4], X[1:4]) and np.array_equal(images[[4, 0]], X[[4, 0]])
    assert np.array_equal(images.subset([4, 2, 0])[1], X[2])
    with pytest.raises(IndexError):
        images[5]


def test_a_channels_last_npy_streams_as_the_file_loader_reads_it(tmp_path):
    X = (np.random.default_rng(0).random((6, 5, 7, 3)) * 255).astype(np.uint8)  # (N, H, W, C)
    np.save(tmp_path / "x.npy", X)
    eager, streamed = (
        load_dataset(tmp_path / "x.npy"),
        load_dataset(tmp_path / "x.npy", stream=True),
    )
    assert streamed.X.shape == eager.X.shape == (6, 3, 5, 7)
    assert np.array_equal(streamed.X[np.arange(6)], eager.X)
    assert np.array_equal(streamed.X.subset([-1, 0])[0], eager.X[5])  # negatives as numpy's
    assert streamed.X[3:3].shape == (0, 3, 5, 7)  # an empty read
    mask = np.zeros(6, dtype=bool)
    mask[[1, 4]] = True
    assert np.array_equal(streamed.X[mask], eager.X[mask])


def test_values_of_images_on_disk_are_checked_in_one_pass_kept_or_not_read_at_all(
    tmp_path, tiles, monkeypatch
):
    from aeclust import AEClusterer
    from aeclust.data import MappedImages, value_range

    X = np.random.default_rng(0).random((40, 1, 4, 4)).astype(np.float32) * 2
    np.save(tmp_path / "x.npy", X)
    images, reads = MappedImages(tmp_path / "x.npy"), []
    monkeypatch.setattr(MappedImages, "_read", lambda self, i: reads.append(1) or X[i])
    assert value_range(images) == (float(X.min()), float(X.max()))
    passes = len(reads)
    images.check_finite()
    assert images.value_bounds() == value_range(images) and len(reads) == passes  # kept
    part = images.subset([0, 1])  # a view has its own values
    assert value_range(part) == (float(X[:2].min()), float(X[:2].max()))
    est = AEClusterer(autoencoder="conv", loss="bce", epochs=1, n_clusters=2, verbose=False)
    with pytest.raises(DataError, match="from 0.*to 2"):  # before any training
        est.fit(images)
    X[7, 0, 1, 1] = np.nan
    np.save(tmp_path / "nan.npy", X)
    with pytest.raises(DataError, match="first at index 7"):
        est.set_params(loss="mse").fit(MappedImages(tmp_path / "nan.npy"))
    MappedImages(tmp_path / "nan.npy").subset(np.arange(7)).check_finite()  # rows without it
    lazy = load_dataset(tiles, stream=True).X  # decoded files are in [0, 1]: nothing read
    monkeypatch.setattr(LazyFolder, "_read", lambda self, i: pytest.fail("read"))
    assert lazy.value_bounds() == (0.0, 1.0)
    lazy.check_finite()
    np.save(tmp_path / "u8.npy", np.zeros((3, 1, 4, 4), dtype=np.uint8))
    monkeypatch.setattr(MappedImages, "_read", lambda self, i: pytest.fail("read"))
    assert MappedImages(tmp_path / "u8.npy").value_bounds() == (0.0, 1.0)
    MappedImages(tmp_path / "u8.npy").check_finite()


def test_a_npy_replaced_while_in_use_is_refused_by_a_process_that_opens_it(tmp_path):
    import pickle

    from aeclust.data import MappedImages

    np.save(tmp_path / "x.npy", np.zeros((4, 1, 2, 2), dtype=np.uint8))
    images = MappedImages(tmp_path / "x.npy")
    copy = pickle.loads(pickle.dumps(images))  # what a DataLoader worker gets
    np.save(tmp_path / "x.npy", np.ones((5, 1, 2, 2), dtype=np.uint8))  # a new cache
    with pytest.raises(DataError, match="replaced or changed while in use"):
        copy[np.arange(4)]
    images.workers = 1  # said as it is, not wrapped in a DataLoader worker's traceback
    with pytest.raises(DataError, match="^'.*x.npy' was replaced or changed while in use"):
        list(read_batches(images, [np.arange(2), np.arange(2, 4)]))


def _estimators():
    import aeclust as ae

    net, mlp = {"channels": 4, "max_channels": 16}, {"hidden": [16]}
    common = dict(n_clusters=3, batch_size=32, random_state=0)
    return {
        "dcae-kmeans": lambda: ae.DCAEKMeans(
            autoencoder="mlp", autoencoder_params=mlp, epochs=2, **common
        ),
        "idec": lambda: ae.IDEC(
            autoencoder_params=mlp, pretrain_epochs=1, epochs=2, n_init=2, **common
        ),
        "dcec": lambda: ae.DCEC(pretrain_epochs=1, epochs=2, n_init=2, **common),
        "acrbm": lambda: ae.ACRBM(epochs=2, **common),
        "ae-acrbm": lambda: ae.AEACRBM(
            latent_dim=8, channels=4, pretrain_epochs=1, epochs=2, n_init=2, **common
        ),
        "beta-vae": lambda: ae.BetaVAE(autoencoder_params=net, epochs=2, reducer=None, **common),
        "wae-gan": lambda: ae.WAEGAN(
            autoencoder_params=net, discriminator_hidden=(16,), epochs=2, reducer=None, **common
        ),
        "hrwae-gan": lambda: ae.HRWAEGAN(
            autoencoder_params=net, discriminator_hidden=(16,), epochs=2, reducer=None, **common
        ),
        "densenet": lambda: ae.DenseNetClassifier(
            epochs=1, batch_size=32, n_blocks=2, layers_per_block=1, growth_rate=4, random_state=0
        ),
    }


@pytest.mark.parametrize("name", list(_estimators()))
def test_every_estimator_fits_images_on_disk_as_the_same_images_in_memory(name, tmp_path):
    from sklearn.datasets import load_digits

    from aeclust.data import MappedImages, load_array

    d = load_digits()
    np.save(tmp_path / "x.npy", (d.images[:160, None] * 255 / 16).astype(np.uint8))
    in_memory, on_disk = load_array(tmp_path / "x.npy").X, MappedImages(tmp_path / "x.npy")
    make = _estimators()[name]
    if name == "densenet":  # supervised: the compare baseline
        a, b = make().fit(in_memory, d.target[:160]), make().fit(on_disk, d.target[:160])
        assert np.array_equal(a.predict(in_memory), b.predict(on_disk))
        return
    a, b = make().fit(in_memory), make().fit(on_disk)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.predict(in_memory), b.predict(on_disk))
