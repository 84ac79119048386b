"""Loading images: built-in datasets, image folders, NumPy arrays and IDX files.

Every loader returns an :class:`ImageSet` with ``X`` of shape (N, C, H, W), float32.
"""

from .arrays import load_array, load_idx
from .dataset import ImageSet
from .folder import load_folder
from .mapped import MappedImages, value_range
from .registry import (
    DATASETS,
    DEFAULT_DATASET,
    DatasetSpec,
    list_datasets,
    load_dataset,
    register_dataset,
)
from .validate import check_labels, to_images

__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "DatasetSpec",
    "ImageSet",
    "MappedImages",
    "check_labels",
    "list_datasets",
    "load_array",
    "load_dataset",
    "load_folder",
    "load_idx",
    "register_dataset",
    "to_images",
    "value_range",
]
