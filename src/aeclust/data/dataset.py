"""The in-memory container every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ImageSet:
    """Images with optional labels, names and groups.

    Attributes
    ----------
    X : ndarray of shape (N, C, H, W), float32, values in [0, 1] for image files
        and built-in datasets (arrays from .npy/.npz files are kept as given).
    y : ndarray of shape (N,), int64, or None when there are no labels.
    names : list of N str, or None. Per-item names, e.g. file paths relative to the folder.
    groups : ndarray of shape (N,), or None. Per-item group ids (e.g. a patient) for
        grouped cross-validation.
    class_names : list of str, or None. ``class_names[k]`` is the name of label ``k``.
    name : str. A short name of the source (dataset name or path).
    """

    X: np.ndarray
    y: np.ndarray | None = None
    names: list[str] | None = None
    groups: np.ndarray | None = None
    class_names: list[str] | None = None
    name: str = "data"

    def __len__(self) -> int:
        return len(self.X)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(int(s) for s in self.X.shape[1:])

    def subset(self, index) -> ImageSet:
        """The items at ``index`` (an int array or a boolean mask), as a new ImageSet."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return ImageSet(
            X=self.X[index],
            y=None if self.y is None else self.y[index],
            names=None if self.names is None else [self.names[i] for i in index],
            groups=None if self.groups is None else self.groups[index],
            class_names=self.class_names,
            name=self.name,
        )
