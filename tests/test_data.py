"""Tests for aeclust.data: built-in datasets, image folders, arrays and IDX files."""

from __future__ import annotations

import gzip
import warnings

import numpy as np
import pytest
from PIL import Image

import aeclust.data as data
from aeclust.data import (
    DATASETS,
    DEFAULT_DATASET,
    ImageSet,
    list_datasets,
    load_array,
    load_dataset,
    load_folder,
    load_idx,
)
from aeclust.data.arrays import read_idx
from aeclust.data.folder import detect_layout
from aeclust.errors import AeclustError, ConfigError, DataError

# every test here runs with the optional datasets as installed and hidden (conftest.py)
pytestmark = pytest.mark.usefixtures("optional_datasets")


# ---- helpers ---------------------------------------------------------------------------


def save_image(path, value=128, size=(6, 5), mode="L"):
    """Write a constant image of (H, W) ``size``; creates parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(np.full(size, value, dtype=np.uint16)).save(path)
        return path
    color = value if mode in ("L", "1", "P") else tuple([value] * len(mode))
    Image.new(mode, size[::-1], color).save(path)
    return path


def write_idx(path, array, code=0x08):
    """Write ``array`` as an IDX file (gzip-compressed when the name ends in .gz)."""
    array = np.asarray(array)
    dtype = {0x08: ">u1", 0x0D: ">f4"}[code]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    raw = header + array.astype(dtype).tobytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def check_images(images: ImageSet, shape):
    assert isinstance(images, ImageSet)
    assert images.X.shape == shape
    assert images.X.dtype == np.float32
    assert images.X.min() >= 0.0 and images.X.max() <= 1.0


# ---- public API and registry -----------------------------------------------------------


def test_public_api_names_exist():
    for name in data.__all__:
        assert hasattr(data, name), name
    for name in ["load_dataset", "load_folder", "load_array", "load_idx", "list_datasets"]:
        assert name in data.__all__


def test_list_datasets_describes_every_builtin():
    rows = list_datasets()
    assert [r["name"] for r in rows][:3] == ["digits", "mnist5k", "fashion-mnist"]
    for row in rows:
        assert set(row) >= {"name", "shape", "n_classes", "description", "available", "hint"}
        assert len(row["shape"]) == 4 and isinstance(row["available"], bool)
    assert [r["name"] for r in rows if r["default"]] == [DEFAULT_DATASET] == ["mnist5k"]


def test_digits():
    images = load_dataset("digits")
    check_images(images, (1797, 1, 8, 8))
    assert images.X.max() == 1.0
    assert images.y.dtype == np.int64 and set(images.y) == set(range(10))
    assert images.class_names == [str(k) for k in range(10)]
    assert DATASETS["digits"].shape == images.X.shape


def test_mnist5k_is_the_default():
    images = load_dataset()
    check_images(images, (5000, 1, 28, 28))
    assert images.name == "mnist5k" and images.X.max() == 1.0
    assert np.bincount(images.y).tolist() == [500] * 10


@pytest.mark.usefixtures("fashion_mnist")
def test_fashion_mnist_splits():
    test = load_dataset("Fashion_MNIST", split="test")
    check_images(test, (10000, 1, 28, 28))
    assert test.class_names[0] == "T-shirt/top" and test.class_names[9] == "Ankle boot"
    assert set(test.y) == set(range(10))
    everything = load_dataset("fashion-mnist")  # default split "all": train then test
    assert everything.X.shape == DATASETS["fashion-mnist"].shape == (70000, 1, 28, 28)
    np.testing.assert_array_equal(everything.y[60000:], test.y)


def test_fashion_mnist_dir_from_env(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for part, n in [("train", 5), ("t10k", 3)]:
        write_idx(tmp_path / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{part}-labels-idx1-ubyte.gz", np.full(n, part == "t10k"))
    monkeypatch.setenv("AECLUST_FASHION_MNIST_DIR", str(tmp_path))
    images = load_dataset("fashion-mnist")
    check_images(images, (8, 1, 28, 28))
    assert images.y.tolist() == [0] * 5 + [1] * 3
    assert len(load_dataset("fashion-mnist", split="train")) == 5


def test_fashion_mnist_missing_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("AECLUST_FASHION_MNIST_DIR", str(tmp_path))
    assert not DATASETS["fashion-mnist"].available()
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist") as info:
        load_dataset("fashion-mnist", split="test")
    assert "AECLUST_FASHION_MNIST_DIR" in str(info.value) and "--data" in str(info.value)


def test_split_errors():
    with pytest.raises(ConfigError, match="'digits' has no splits"):
        load_dataset("digits", split="train")
    with pytest.raises(ConfigError, match="no split 'val'; use one of all, train, test"):
        load_dataset("fashion-mnist", split="val")


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(DataError, match="digits, mnist5k, fashion-mnist") as info:
        load_dataset("mnsit5k")
    assert "no file or folder exists" in str(info.value)
    assert "Did you mean 'mnist5k'" in str(info.value)
    with pytest.raises(DataError, match="The path 'no/such/dir' does not exist.*digits"):
        load_dataset("no/such/dir")


def test_load_dataset_paths(tmp_path):
    save_image(tmp_path / "imgs" / "a.png")
    assert load_dataset(tmp_path / "imgs").X.shape == (1, 1, 6, 5)
    np.savez(tmp_path / "d.npz", X=np.zeros((2, 3, 4, 4), np.float32), y=[0, 1])
    assert load_dataset(str(tmp_path / "d.npz"), color="gray").X.shape == (2, 1, 4, 4)
    write_idx(tmp_path / "t-images-idx3-ubyte.gz", np.zeros((3, 4, 4)))
    write_idx(tmp_path / "t-labels-idx1-ubyte.gz", [1, 2, 3])
    images = load_dataset(tmp_path / "t-images-idx3-ubyte.gz", image_size=8, color="rgb")
    check_images(images, (3, 3, 8, 8))
    assert images.y.tolist() == [1, 2, 3]  # label file found next to the images
    write_idx(tmp_path / "my.idx", np.zeros((2, 4, 4)))
    assert load_dataset(tmp_path / "my.idx").y is None
    (tmp_path / "table.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="not a supported file"):
        load_dataset(tmp_path / "table.csv")
    with pytest.raises(ConfigError, match="only applies to built-in datasets"):
        load_dataset(tmp_path / "imgs", split="train")


# ---- image folders ---------------------------------------------------------------------


def test_folder_flat(tmp_path):
    for name, value in [("b.png", 0), ("a.png", 255), ("c.jpg", 255)]:
        save_image(tmp_path / name, value)
    (tmp_path / ".DS_Store").write_bytes(b"\x00junk")
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    (tmp_path / "notes.txt").write_text("not an image, no image extension: ignored")
    images = load_folder(tmp_path)
    check_images(images, (3, 1, 6, 5))
    assert images.names == ["a.png", "b.png", "c.jpg"]
    assert images.y is None and images.class_names is None and images.groups is None
    assert images.X[0].min() == 1.0 and images.X[1].max() == 0.0


def test_folder_classes(tmp_path):
    for name in ["dog/1.png", "cat/2.png", "cat/1.png", "cat/indoor/3.png"]:
        save_image(tmp_path / name)
    images = load_folder(tmp_path)
    assert images.class_names == ["cat", "dog"]
    assert images.names == ["cat/1.png", "cat/2.png", "cat/indoor/3.png", "dog/1.png"]
    assert images.y.dtype == np.int64 and images.y.tolist() == [0, 0, 0, 1]
    assert load_folder(tmp_path, recursive=False).names == ["cat/1.png", "cat/2.png", "dog/1.png"]


def test_folder_groups_classes_idc_layout(tmp_path):
    for patient, label, k in [
        ("8863", "0", 1),
        ("8863", "1", 2),
        ("9001", "0", 3),
        ("9002", "1", 4),
    ]:
        save_image(tmp_path / patient / label / f"{patient}_idx5_x{k}_class{label}.png",
                   size=(50, 50), mode="RGB")  # fmt: skip
    images = load_folder(tmp_path)
    check_images(images, (4, 3, 50, 50))
    assert images.class_names == ["0", "1"]
    assert images.y.tolist() == [0, 1, 0, 1]
    assert images.groups.tolist() == ["8863", "8863", "9001", "9002"]
    assert images.names[0] == "8863/0/8863_idx5_x1_class0.png"
    by_patient = load_folder(tmp_path, layout="classes")  # explicit layout wins
    assert by_patient.class_names == ["8863", "9001", "9002"] and by_patient.groups is None


def test_detect_layout():
    assert detect_layout(["a.png", "x/b.png"]) == "flat"
    assert detect_layout(["cat/a.png", "dog/b.png"]) == "classes"
    assert detect_layout(["p1/0/a.png", "p2/1/b.png", "p3/0/c.png"]) == "groups/classes"
    nested = ["cat/in/a.png", "cat/out/b.png", "dog/in/c.png", "dog/out/d.png"]
    assert detect_layout(nested) == "classes"  # as many second-level names as first-level


def test_folder_layout_errors(tmp_path):
    save_image(tmp_path / "top.png")
    save_image(tmp_path / "cat" / "a.png")
    with pytest.raises(DataError, match="expects every image inside a class folder.*'top.png'"):
        load_folder(tmp_path, layout="classes")
    with pytest.raises(ConfigError, match="layout='nested' is not valid"):
        load_folder(tmp_path, layout="nested")


def test_folder_resize(tmp_path):
    save_image(tmp_path / "a.png", size=(20, 10))
    save_image(tmp_path / "b.png", size=(7, 9))
    check_images(load_folder(tmp_path, image_size=8), (2, 1, 8, 8))
    images = load_folder(tmp_path, image_size=(4, 6))
    check_images(images, (2, 1, 4, 6))
    np.testing.assert_allclose(images.X, 128 / 255, atol=1e-6)  # constant stays constant
    with pytest.raises(ConfigError, match="image_size=0 is not valid"):
        load_folder(tmp_path, image_size=0)


def test_folder_mixed_sizes_need_image_size(tmp_path):
    save_image(tmp_path / "a.png", size=(20, 10))
    save_image(tmp_path / "b.png", size=(7, 9))
    with pytest.raises(DataError, match="'a.png' is 20x10 and 'b.png' is 7x9") as info:
        load_folder(tmp_path)
    assert "Pass image_size (CLI: --image-size)" in str(info.value)


def test_folder_color_modes(tmp_path):
    save_image(tmp_path / "gray.png", 100)
    Image.new("RGB", (5, 6), (255, 0, 0)).save(tmp_path / "red.bmp")
    images = load_folder(tmp_path)  # one color file -> 3 channels for all
    assert images.X.shape == (2, 3, 6, 5)
    np.testing.assert_allclose(images.X[0], 100 / 255, atol=1e-6)  # gray repeated
    np.testing.assert_allclose(images.X[1, :, 0, 0], [1, 0, 0])
    gray = load_folder(tmp_path, color="gray")
    assert gray.X.shape == (2, 1, 6, 5)
    assert abs(gray.X[1, 0, 0, 0] - 0.299) < 0.01  # luminance of pure red
    with pytest.raises(ConfigError, match="color='cmyk' is not valid"):
        load_folder(tmp_path, color="cmyk")


def test_folder_rgba_drops_alpha(tmp_path):
    Image.new("RGBA", (4, 4), (0, 255, 0, 0)).save(tmp_path / "clear.png")
    Image.new("RGBA", (4, 4), (0, 255, 0, 255)).save(tmp_path / "solid.png")
    images = load_folder(tmp_path)
    assert images.X.shape == (2, 3, 4, 4)
    np.testing.assert_allclose(images.X[:, :, 0, 0], [[0, 1, 0], [0, 1, 0]])


def test_folder_16bit_and_tiff(tmp_path):
    save_image(tmp_path / "a16.png", 65535, mode="I;16")
    save_image(tmp_path / "b16.tif", 32768, mode="I;16")
    save_image(tmp_path / "c.tiff", 51)
    images = load_folder(tmp_path)  # all grayscale modes -> 1 channel
    check_images(images, (3, 1, 6, 5))
    np.testing.assert_allclose(images.X[:, 0, 0, 0], [1.0, 32768 / 65535, 0.2], atol=1e-6)
    resized = load_folder(tmp_path, image_size=3, color="rgb")
    check_images(resized, (3, 3, 3, 3))
    np.testing.assert_allclose(resized.X[1], 32768 / 65535, atol=1e-6)


def test_folder_gif_first_frame(tmp_path):
    frames = [Image.new("L", (5, 6), v) for v in (204, 0)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert load_folder(tmp_path).X.shape == (1, 3, 6, 5)  # palette images count as color
    images = load_folder(tmp_path, color="gray")
    check_images(images, (1, 1, 6, 5))
    np.testing.assert_allclose(images.X, 0.8, atol=1e-6)


def test_folder_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_folder(tmp_path / "nope")
    with pytest.raises(DataError, match="is a file, not a folder"):
        load_folder(save_image(tmp_path / "a.png"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match=r"No image files found.*\.png, \.jpg, \.jpeg"):
        load_folder(empty)


def test_folder_bad_files_listed_or_skipped(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "good.png")
    (tmp_path / "text.png").write_text("this is not a png")
    good = (tmp_path / "good.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(good[: len(good) // 2])  # header ok, data cut
    with pytest.raises(DataError, match="2 file.* not images or are corrupt") as info:
        load_folder(tmp_path)
    message = str(info.value)
    assert "'text.png'" in message and "'truncated.png'" in message
    assert "skip_bad=True (CLI: --skip-bad)" in message
    assert "not an image file" in message
    with pytest.warns(UserWarning, match="Skipped 2 unreadable file.*'text.png'.*'truncated.png'"):
        images = load_folder(tmp_path, skip_bad=True)
    assert images.names == ["good.png"] and images.X.shape == (1, 1, 40, 40)
    np.testing.assert_allclose(images.X[0, 0] * 255, noise, atol=1e-4)


def test_folder_many_bad_files_are_counted(tmp_path):
    save_image(tmp_path / "ok.png")
    for k in range(13):
        (tmp_path / f"bad{k:02d}.jpg").write_bytes(b"nope")
    with pytest.raises(DataError, match="13 file.*and 3 more"):
        load_folder(tmp_path)


def test_folder_empty_class_is_skipped_with_warning(tmp_path):
    save_image(tmp_path / "cat" / "a.png")
    save_image(tmp_path / "dog" / "b.png")
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_text("corrupt")
    with pytest.warns(UserWarning) as record:
        images = load_folder(tmp_path, skip_bad=True)
    messages = [str(w.message) for w in record]
    assert any("unreadable file(s): 'broken/x.png'" in m for m in messages)
    assert any("2 class folder(s) without images: 'broken', 'empty_class'" in m for m in messages)
    assert images.class_names == ["cat", "dog"] and images.y.tolist() == [0, 1]


def test_folder_with_a_stray_top_level_image_warns(tmp_path):
    for name in ["cat/a.png", "cat/b.png", "dog/c.png", "stray.png"]:
        save_image(tmp_path / name)
    with pytest.warns(
        UserWarning, match=r"1 image\(s\) lie directly in the folder \('stray.png'\)"
    ):
        images = load_folder(tmp_path)
    assert images.y is None and len(images) == 4
    (tmp_path / "stray.png").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean class layout warns about nothing
        assert load_folder(tmp_path).class_names == ["cat", "dog"]


# ---- arrays ----------------------------------------------------------------------------


def test_npy_shapes_and_ranges(tmp_path):
    rng = np.random.default_rng(0)
    cases = {
        "nchw": (rng.random((4, 3, 5, 6)) * 7, (4, 3, 5, 6)),  # values kept as given
        "nhw": (rng.random((4, 5, 6)), (4, 1, 5, 6)),
        "nhwc": (rng.random((4, 5, 6, 3)), (4, 3, 5, 6)),
        "flat": (rng.random((4, 49)), (4, 1, 7, 7)),
    }
    for name, (array, shape) in cases.items():
        np.save(tmp_path / f"{name}.npy", array)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            images = load_array(tmp_path / f"{name}.npy")
        assert bool(caught) == (name == "nchw"), name  # values outside [0, 1] are flagged
        assert images.X.shape == shape and images.X.dtype == np.float32, name
        assert images.X.flags.c_contiguous and images.y is None
    with pytest.warns(UserWarning, match=r"values from 0.00\d+ to 6.9\d+, not pixel"):
        assert load_array(tmp_path / "nchw.npy").X.max() > 1
    nhwc = load_array(tmp_path / "nhwc.npy").X
    np.testing.assert_allclose(nhwc[1, 2, 3, 4], cases["nhwc"][0][1, 3, 4, 2], rtol=1e-6)
    np.save(tmp_path / "u8.npy", np.full((2, 1, 3, 3), 255, np.uint8))
    assert load_array(tmp_path / "u8.npy").X.max() == 1.0
    np.save(tmp_path / "u16.npy", np.array([0, 65535, 13107], np.uint16).reshape(1, 1, 1, 3))
    np.testing.assert_allclose(load_array(tmp_path / "u16.npy").X.ravel(), [0, 1, 0.2])


def test_flat_vectors_need_image_shape(tmp_path):
    np.save(tmp_path / "flat.npy", np.zeros((3, 10)))
    with pytest.raises(DataError, match="length 10, which is not a square.*image_shape"):
        load_array(tmp_path / "flat.npy")
    assert load_array(tmp_path / "flat.npy", image_shape=(1, 2, 5)).X.shape == (3, 1, 2, 5)
    with pytest.raises(DataError, match="does not fit vectors of length 10"):
        load_array(tmp_path / "flat.npy", image_shape=(3, 3))


def test_npz_keys_labels_and_groups(tmp_path):
    X = np.zeros((3, 1, 4, 4), np.float32)
    np.savez(tmp_path / "a.npz", X=X, y=[2, 0, 1], groups=["p1", "p1", "p2"])
    images = load_array(tmp_path / "a.npz")
    assert images.y.tolist() == [2, 0, 1] and images.groups.tolist() == ["p1", "p1", "p2"]
    np.savez(tmp_path / "b.npz", images=X, labels=["dog", "cat", "dog"])
    images = load_array(tmp_path / "b.npz")
    assert images.class_names == ["cat", "dog"] and images.y.tolist() == [1, 0, 1]
    np.savez(tmp_path / "c.npz", x=X)
    assert load_array(tmp_path / "c.npz").y is None


def test_array_errors(tmp_path):
    def save(name, **arrays):
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    bad = np.zeros((3, 1, 4, 4))
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN or infinite values in 1 sample"):
        load_array(save("nan.npz", X=bad))
    bad[1, 0, 0, 0] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        load_array(save("inf.npz", X=bad))
    with pytest.raises(DataError, match="1 dimension"):
        load_array(save("one.npz", X=np.zeros(5)))
    with pytest.raises(DataError, match="5 dimension"):
        load_array(save("five.npz", X=np.zeros((2, 1, 1, 3, 3))))
    with pytest.raises(DataError, match="3 labels for 2 images"):
        load_array(save("mismatch.npz", X=np.zeros((2, 4, 4)), y=[0, 1, 1]))
    with pytest.raises(DataError, match="no image array.*found data, labels"):
        load_array(save("nox.npz", data=np.zeros((2, 4, 4)), labels=[0, 1]))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None]), allow_pickle=True)
    with pytest.raises(DataError, match="Python objects"):
        load_array(tmp_path / "obj.npy")
    (tmp_path / "junk.npy").write_text("hello")
    with pytest.raises(DataError, match="not a NumPy file"):
        load_array(tmp_path / "junk.npy")
    with pytest.raises(DataError, match="does not exist"):
        load_array(tmp_path / "missing.npy")


# ---- IDX -------------------------------------------------------------------------------


def test_idx_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (5, 7, 6))
    labels = rng.integers(0, 10, 5)
    for suffix in ["", ".gz"]:
        images_path = write_idx(tmp_path / f"x-images-idx3-ubyte{suffix}", pixels)
        labels_path = write_idx(tmp_path / f"x-labels-idx1-ubyte{suffix}", labels)
        images = load_idx(images_path, labels_path)
        check_images(images, (5, 1, 7, 6))
        np.testing.assert_allclose(images.X[:, 0] * 255, pixels, atol=1e-4)
        assert images.y.dtype == np.int64 and images.y.tolist() == labels.tolist()
    floats = rng.random((2, 3, 3)) * 4
    write_idx(tmp_path / "f.idx", floats, code=0x0D)
    assert read_idx(tmp_path / "f.idx").dtype == np.dtype("float32")
    with pytest.warns(UserWarning, match="not pixel intensities in"):
        np.testing.assert_allclose(load_idx(tmp_path / "f.idx").X[:, 0], floats, rtol=1e-6)


def test_idx_errors(tmp_path):
    (tmp_path / "bad.idx").write_bytes(b"\x08\x03\x00\x00" + bytes(20))
    with pytest.raises(DataError, match="not an IDX file.*bad magic number 08030000"):
        load_idx(tmp_path / "bad.idx")
    full = write_idx(tmp_path / "full.idx", np.zeros((10, 4, 4))).read_bytes()
    (tmp_path / "cut.idx").write_bytes(full[:-20])
    with pytest.raises(DataError, match=r"truncated.*shape \(10, 4, 4\)"):
        load_idx(tmp_path / "cut.idx")
    (tmp_path / "cut.idx.gz").write_bytes(gzip.compress(full)[:-30])
    with pytest.raises(DataError, match="could not be decompressed.*truncated"):
        load_idx(tmp_path / "cut.idx.gz")
    labels = write_idx(tmp_path / "l-labels-idx1-ubyte", [1, 2])
    with pytest.raises(DataError, match="1-D array.*give the images file"):
        load_idx(labels)
    with pytest.raises(DataError, match="10 images"):
        load_idx(tmp_path / "full.idx", labels)


def test_errors_are_aeclust_errors():
    assert issubclass(DataError, AeclustError) and issubclass(ConfigError, ValueError)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(AeclustError):
            load_dataset("definitely-not-a-dataset")


@pytest.mark.usefixtures("hidden_datasets")
def test_a_new_machine_has_no_optional_dataset():
    rows = {row["name"]: row for row in list_datasets()}
    assert not rows["fashion-mnist"]["available"] and not rows["ihc-tiles"]["available"]
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    with pytest.raises(DataError, match=r"aeclust\[demo\]"):
        load_dataset("ihc-tiles")
