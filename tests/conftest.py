import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits_small():
    """300 sklearn digits as (N, 1, 8, 8) images in [0, 1], with labels."""
    d = load_digits()
    X = (d.images[:300] / 16.0).astype(np.float32)[:, None]
    return X, d.target[:300]
