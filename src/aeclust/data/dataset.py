"""The in-memory container every loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, DataError


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
    masks : ndarray of shape (N, H, W), bool, or None. Ground-truth foreground masks of a
        segmentation set (``textured-shapes``, or a folder given with its masks).
    """

    X: np.ndarray
    y: np.ndarray | None = None
    names: list[str] | None = None
    groups: np.ndarray | None = None
    class_names: list[str] | None = None
    name: str = "data"
    masks: np.ndarray | None = None

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
            # images on disk (DiskImages) give a view that reads nothing now
            X=self.X.subset(index) if hasattr(self.X, "subset") else self.X[index],
            y=None if self.y is None else self.y[index],
            names=None if self.names is None else [self.names[i] for i in index],
            groups=None if self.groups is None else self.groups[index],
            class_names=self.class_names,
            name=self.name,
            masks=None if self.masks is None else self.masks[index],
        )

    def label_names(self) -> list[str]:
        """The name of every label id: ``class_names``, or the ids as strings."""
        return self.class_names or [str(k) for k in range(int(self.y.max()) + 1)]

    def class_id(self, label) -> int:
        """The label id of a class given by name (``"Shirt"``) or id (``6`` or ``"6"``)."""
        names = self.label_names()
        if isinstance(label, str) and label in names:
            return names.index(label)
        is_int = isinstance(label, int | np.integer) and not isinstance(label, bool)
        if is_int or (isinstance(label, str) and label.strip().lstrip("-").isdigit()):
            if 0 <= int(label) < len(names):
                return int(label)
        raise ConfigError(f"Unknown class {label!r}; the classes are {names}.")

    def select_classes(self, classes) -> ImageSet:
        """Only the items of ``classes`` (class names or label ids), relabelled 0..k-1 in the
        order given; e.g. ``select_classes(["T-shirt/top", "Shirt"])`` on Fashion-MNIST."""
        if self.y is None:
            raise DataError(
                "Selecting classes needs labels, and these data have none; give a labelled "
                "dataset (one sub-folder per class, or y in the .npz)."
            )
        names = self.label_names()
        ids = [self.class_id(c) for c in classes]
        if len(set(ids)) != len(ids) or len(ids) < 2:
            raise ConfigError(
                f"Give at least two different classes among {names} (names or ids 0.."
                f"{len(names) - 1}); got {list(classes)}."
            )
        keep = np.isin(self.y, ids)
        subset = self.subset(keep)
        lookup = {k: i for i, k in enumerate(ids)}
        subset.y = np.array([lookup[int(v)] for v in subset.y], dtype=np.int64)
        subset.class_names = [names[k] for k in ids]
        return subset

    def sample(self, n: int, random_state: int = 0) -> ImageSet:
        """At most ``n`` items drawn without replacement, stratified by label when labelled,
        kept in their original order."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
            raise ConfigError(f"The sample size must be an integer >= 2; got {n!r}.")
        if n >= len(self):
            return self
        rng = np.random.default_rng(random_state)
        if self.y is None:
            return self.subset(np.sort(rng.choice(len(self), n, replace=False)))
        from sklearn.model_selection import train_test_split

        index, _ = train_test_split(
            np.arange(len(self)), train_size=n, stratify=self.y, random_state=random_state
        )
        return self.subset(np.sort(index))
