"""Joint methods whose clusters are centres in the latent space."""

from __future__ import annotations

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ..cluster.centers import assign_nearest
from .ae_clusterer import AEClusterer
from .base import DeepClusterer


class JointClusterer(DeepClusterer):
    """Base of the joint methods whose clusters are centres in the latent space (DCAE-KMeans,
    DEC, IDEC, DCEC): ``predict`` is the nearest centre; the centres and training labels are
    saved with the model."""

    def predict(self, X) -> np.ndarray:
        """The cluster of the nearest centre to each image's code; shape (N,)."""
        check_is_fitted(self)
        return assign_nearest(self.transform(X), self.cluster_centers_)

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X, y).labels_

    def _extra_state(self):
        return {}, {"cluster_centers_": self.cluster_centers_, "labels_": self.labels_}

    def _restore_extra(self, meta, arrays):
        self.cluster_centers_ = arrays["cluster_centers_"].astype(np.float32)
        self.labels_ = arrays["labels_"].astype(np.int64)
        self.n_clusters_ = len(self.cluster_centers_)
        self.timings_ = {}

    def without_clustering_loss(self) -> AEClusterer:
        """An unfitted :class:`AEClusterer` with this network, seed and training settings,
        trained on the reconstruction loss alone (for as many epochs as this method trains
        before or without its clustering loss), then k-means: the reference of the DCAE
        paper's Fig. 2, codes with and without the clustering loss."""
        return AEClusterer(
            autoencoder=self.autoencoder,
            latent_dim=self.latent_dim,
            clusterer="kmeans",
            n_clusters=self.n_clusters,
            epochs=self._reconstruction_epochs(),
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            optimizer_params=self.optimizer_params,
            precision=self.precision,
            loss=self.loss,
            lr_schedule=self.lr_schedule,
            augment=None,  # the joint methods train on the images as given
            image_shape=self.image_shape,
            autoencoder_params=self.autoencoder_params,
            device=self.device,
            random_state=self.random_state,
        )

    def _reconstruction_epochs(self) -> int:
        raise NotImplementedError
