"""Learners: per-camera edge models, their retraining jobs and their accuracy (PyTorch Lightning)."""

import os

# Idle OpenMP threads should sleep, not spin: on a shared CPU, spinning threads of concurrent
# processes starve each other (2-thread training measured at 10-30 img/s spinning, ~250 passive).
# Only effective when this runs before torch is first imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ekya.learners.learner import FinetuneLearner, TrainReport, load_checkpoint, save_checkpoint  # noqa: E402
from ekya.learners.model import EdgeModel  # noqa: E402

__all__ = ["EdgeModel", "FinetuneLearner", "TrainReport", "load_checkpoint", "save_checkpoint"]
