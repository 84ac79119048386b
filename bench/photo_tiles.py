"""An RGB image set that ships offline, for the bottleneck laboratory (issue 18): the
non-overlapping 32x32 tiles of six colour photographs bundled with scikit-image, each
tile labelled with the photograph it comes from.

    python bench/photo_tiles.py /work/scale/photo-tiles.npz
    python bench/bottleneck.py --data /work/scale/photo-tiles.npz --max-train 600 ...

Photographs (tiles): astronaut (256), chelsea (126), coffee (216), rocket (260),
immunohistochemistry (256), hubble_deep_field (837); 1,951 tiles in all, uint8
(N, 3, 32, 32) under "X" and the photograph's index under "y" (names under "classes").
The label is "which photograph", so probes and clustering have something to find, and
tiles of one photograph differ (sky, face, suit, background) more than MNIST's digits
of one class; the classes are unbalanced (hubble_deep_field is 43 %).
"""

from __future__ import annotations

import argparse

import numpy as np

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def tiles(image: np.ndarray, size: int = 32) -> np.ndarray:
    """The (n, 3, size, size) non-overlapping tiles of an (H, W, 3) image, row by row."""
    rows, cols = image.shape[0] // size, image.shape[1] // size
    cut = image[: rows * size, : cols * size]
    grid = cut.reshape(rows, size, cols, size, 3).transpose(0, 2, 4, 1, 3)
    return grid.reshape(-1, 3, size, size)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the .npz file to write")
    args = p.parse_args()
    import skimage.data

    parts = [tiles(getattr(skimage.data, name)()) for name in PHOTOS]
    X = np.concatenate(parts)
    y = np.concatenate([np.full(len(t), i) for i, t in enumerate(parts)])
    np.savez(args.out, X=X, y=y, classes=np.array(PHOTOS))
    print(dict(zip(PHOTOS, map(len, parts), strict=True)), X.shape)


if __name__ == "__main__":
    main()
