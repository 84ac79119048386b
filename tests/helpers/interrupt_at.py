"""Run ``aeclust`` and kill (SIGKILL) or interrupt (SIGINT) it at a chosen point, as a
user's power cut or Ctrl-C would: ``python interrupt_at.py SIGNAL WHERE -- aeclust args``.

WHERE is ``PHASE:STEP`` (before training step STEP of the training phase PHASE, e.g.
``autoencoder:5`` or ``clustering:3``; the phase is the name of its checkpoint file, or
``FOLDER/NAME`` with the checkpoint's folder, e.g. ``1-256/autoencoder:5``) or
``cluster`` (when the clusterer of AEClusterer starts fitting, after training).
"""

import os
import signal
import sys
from pathlib import Path

from aeclust.cli import main
from aeclust.training import Checkpoint, LossStep

sig = getattr(signal, sys.argv[1])
where = sys.argv[2]
argv = sys.argv[sys.argv.index("--") + 1 :]


def phase_of(trainer) -> tuple:
    """The trainer's phase, as ``phase`` and as ``folder/phase`` (its checkpoint's folder:
    e.g. one configuration of ``aeclust bottleneck``)."""
    for cb in trainer.callbacks:
        if isinstance(cb, Checkpoint):
            path = Path(cb.path)
            return path.stem, f"{path.parent.name}/{path.stem}"
    return ()


if where == "cluster":
    from aeclust.cluster.base import LatentClusterer

    original_fit = LatentClusterer.fit

    def fit(self, Z, y=None):
        os.kill(os.getpid(), sig)
        return original_fit(self, Z, y)

    LatentClusterer.fit = fit
else:
    phase, step = where.split(":")
    original = LossStep.__call__

    def call(self, trainer, batch):
        if phase in phase_of(trainer) and trainer.global_step == int(step):
            os.kill(os.getpid(), sig)
        return original(self, trainer, batch)

    LossStep.__call__ = call

sys.exit(main(argv))
