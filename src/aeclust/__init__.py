"""aeclust: cluster images with deep autoencoders.

>>> from aeclust import AEClusterer, load_dataset
>>> data = load_dataset("digits")
>>> model = AEClusterer(epochs=20, random_state=0).fit(data.X)
>>> model.labels_[:5]  # doctest: +SKIP
"""

from .data import ImageSet, list_datasets, load_dataset
from .errors import AeclustError, ConfigError, DataError, MissingDependencyError, ModelFileError
from .estimators import (
    ACRBM,
    AEACRBM,
    DCEC,
    DEC,
    HRWAEGAN,
    IDEC,
    WAEGAN,
    AEClusterer,
    BetaVAE,
    DCAEKMeans,
    DeepClusterer,
    DenseNetClassifier,
    LOCSegmenter,
)
from .metrics import evaluate

__version__ = "0.1.0"


def load(path):
    """Load any aeclust estimator saved with ``save(path)`` (or a run directory)."""
    from .estimators.model_file import ModelFileMixin

    return ModelFileMixin.load(path)


__all__ = [
    "ACRBM",
    "AEACRBM",
    "AEClusterer",
    "AeclustError",
    "BetaVAE",
    "HRWAEGAN",
    "WAEGAN",
    "ConfigError",
    "DCAEKMeans",
    "DCEC",
    "DEC",
    "IDEC",
    "LOCSegmenter",
    "DataError",
    "DeepClusterer",
    "DenseNetClassifier",
    "ImageSet",
    "MissingDependencyError",
    "ModelFileError",
    "evaluate",
    "list_datasets",
    "load",
    "load_dataset",
]
