"""scikit-learn estimators, one file per method family."""

from .acrbm import ACRBM, AEACRBM, OneStageClusterer
from .ae_clusterer import AEClusterer
from .base import DeepClusterer
from .dcae_kmeans import DCAEKMeans
from .dec import DCEC, DEC, IDEC
from .densenet import DenseNetClassifier
from .generative import HRWAEGAN, WAEGAN, BetaVAE, GenerativeClusterer
from .loc import LOCSegmenter
from .model_file import ESTIMATORS, read_model_files

# joint methods selectable by name (CLI --model); other names are autoencoders for AEClusterer
METHODS = {"dcae-kmeans": DCAEKMeans, "dec": DEC, "idec": IDEC, "dcec": DCEC,
           "acrbm": ACRBM, "ae-acrbm": AEACRBM}  # fmt: skip
# generative models (CLI --model), each followed by any clusterer of the package
GENERATIVE = {"beta-vae": BetaVAE, "wae-gan": WAEGAN, "hrwae-gan": HRWAEGAN}

__all__ = [
    "ACRBM",
    "AEACRBM",
    "OneStageClusterer",
    "ESTIMATORS",
    "GENERATIVE",
    "METHODS",
    "AEClusterer",
    "BetaVAE",
    "GenerativeClusterer",
    "HRWAEGAN",
    "LOCSegmenter",
    "WAEGAN",
    "DCAEKMeans",
    "DCEC",
    "DEC",
    "IDEC",
    "DeepClusterer",
    "DenseNetClassifier",
    "read_model_files",
]
