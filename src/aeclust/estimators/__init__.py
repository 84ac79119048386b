"""scikit-learn estimators, one file per method family."""

from .ae_clusterer import AEClusterer
from .base import ESTIMATORS, DeepClusterer, read_model_files

__all__ = ["ESTIMATORS", "AEClusterer", "DeepClusterer", "read_model_files"]
