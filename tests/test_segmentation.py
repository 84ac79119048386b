"""Segmentation: the scores of appendix A, the median rule, the colour k-means baseline and
the offline segmentation set."""

import numpy as np
import pytest

from aeclust.data import load_dataset
from aeclust.errors import DataError
from aeclust.segmentation import (
    consecutive,
    dice,
    dice_per_image,
    iou,
    iou_per_image,
    kmeans_segments,
    median_masks,
    n_segments,
    pixel_accuracy,
    pixel_accuracy_per_image,
    segmentation_scores,
)

needs_skimage = pytest.mark.skipif(
    __import__("importlib").util.find_spec("skimage") is None,
    reason="needs scikit-image: pip install 'aeclust[demo]'",
)


def masks(*rows):
    """Masks from strings: '#' foreground, '.' background; images separated as arguments."""
    return np.array([[[c == "#" for c in r] for r in image] for image in rows])


def test_scores_by_hand():
    t = masks(["##..", "##.."], ["....", "...."])
    p = masks(["#...", "##.#"], ["....", "...."])
    # image 1: intersection 3, union 5, |t| 4, |p| 4; image 2: both empty -> agree fully
    assert iou_per_image(t, p).tolist() == [3 / 5, 1.0]
    assert dice_per_image(t, p).tolist() == [2 * 3 / 8, 1.0]
    assert iou(t, p) == pytest.approx((0.6 + 1) / 2)
    assert dice(t, p) == pytest.approx((0.75 + 1) / 2)
    assert pixel_accuracy(t, p) == pytest.approx(14 / 16)  # 2 wrong pixels of 16
    assert pixel_accuracy_per_image(t, p).tolist() == [6 / 8, 1.0]
    assert segmentation_scores(t, t) == {"pixel_acc": 1.0, "iou": 1.0, "dice": 1.0}


def test_scores_with_one_empty_mask():
    t, p = masks(["....", "...."]), masks(["#...", "...."])
    assert iou(t, p) == 0.0 and dice(t, p) == 0.0
    assert pixel_accuracy(t, p) == pytest.approx(7 / 8)
    assert iou(p, t) == 0.0  # symmetric


def test_scores_refuse_mismatched_shapes():
    with pytest.raises(DataError, match="same shape"):
        iou(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(DataError, match=r"\(N, H, W\)"):
        dice(np.zeros((4, 4)), np.zeros((4, 4)))


def test_consecutive_and_count():
    s = np.array([[[7, 7, -3], [12, 7, 12]], [[5, 5, 5], [5, 5, 5]]])
    c = consecutive(s)
    assert c[0].tolist() == [[1, 1, 0], [2, 1, 2]]  # no label skipped, order kept
    assert c[1].tolist() == [[0, 0, 0], [0, 0, 0]]
    assert n_segments(c).tolist() == [3, 1]


def test_median_rule():
    two = np.array([[[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]])
    assert median_masks(two, "none")[0].sum() == 4  # the upper label is the object
    three = np.array([[[0, 0, 0, 0], [0, 1, 2, 0], [0, 2, 2, 0], [0, 0, 0, 0]]])
    # 3 labels: the first 3 // 2 = 1 is background, labels 1 and 2 foreground
    assert median_masks(three, "none")[0].sum() == 4
    one = np.zeros((1, 3, 3), dtype=int)
    assert median_masks(one, "none")[0].all() and median_masks(one, "border")[0].all()


def test_border_polarity_swaps_an_object_that_is_mostly_border():
    inverted = np.array([[[1, 1, 1, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]])
    assert median_masks(inverted, "none")[0].sum() == 12  # the frame is "foreground"
    fixed = median_masks(inverted, "border")[0]
    assert fixed.sum() == 4 and fixed[1:3, 1:3].all()
    with pytest.raises(DataError, match="polarity"):
        median_masks(inverted, "upside-down")


def test_kmeans_baseline_finds_a_coloured_square():
    rng = np.random.default_rng(0)
    X = np.zeros((2, 3, 16, 16), dtype=np.float32)
    X[:, 0] = 0.2  # dark red background
    X[:, :, 4:10, 5:12] = 0.9  # bright square
    X += rng.normal(0, 0.03, X.shape).astype(np.float32)
    truth = np.zeros((2, 16, 16), dtype=bool)
    truth[:, 4:10, 5:12] = True
    S = kmeans_segments(X, 2)
    assert S.shape == (2, 16, 16) and n_segments(S).tolist() == [2, 2]
    assert (S[:, 4:10, 5:12] == 1).all()  # ordered by brightness: the square is label 1
    assert iou(truth, median_masks(S, "none")) == 1.0
    with_positions = kmeans_segments(X, 2, positions=0.1)
    assert iou(truth, median_masks(with_positions)) == 1.0


def test_kmeans_baseline_on_a_flat_image():
    S = kmeans_segments(np.full((1, 1, 5, 5), 0.5, dtype=np.float32), 3)
    assert n_segments(S).tolist() == [1]


@needs_skimage
def test_textured_shapes_is_seeded_and_masks_match():
    from aeclust.data.shapes import make_textured_shapes

    X, M, names = make_textured_shapes(6, size=32, seed=3)
    X2, M2, names2 = make_textured_shapes(6, size=32, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(M, M2) and names == names2
    X3, _, _ = make_textured_shapes(6, size=32, seed=4)
    assert not np.array_equal(X, X3)
    assert X.shape == (6, 3, 32, 32) and X.dtype == np.float32 and M.shape == (6, 32, 32)
    assert 0 <= X.min() and X.max() <= 1
    assert (M.reshape(6, -1).mean(1) >= 0.05).all()
    for image, mask, name in zip(X, M, names, strict=True):
        fg, bg = name.split("-")[2], name.split("-on-")[1]
        assert fg != bg  # two different sources
        # inside and outside the mask come from different textures: not the same pixels
        assert not np.allclose(image[:, mask].mean(), image[:, ~mask].mean(), atol=1e-6)


@needs_skimage
def test_textured_shapes_dataset_splits():
    train = load_dataset("textured-shapes", split="test")
    assert train.X.shape == (200, 3, 64, 64) and train.masks.shape == (200, 64, 64)
    gray = load_dataset("textured-shapes", split="test", color="gray", image_size=32)
    assert gray.X.shape == (200, 1, 32, 32) and gray.masks.shape == (200, 32, 32)
    assert gray.masks.dtype == bool
    assert train.subset([0, 5]).masks.shape == (2, 64, 64)
