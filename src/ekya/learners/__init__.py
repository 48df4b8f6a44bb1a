"""Learners: per-camera edge models, their retraining jobs and their accuracy (PyTorch Lightning)."""

from ekya.learners.learner import FinetuneLearner, TrainReport, load_checkpoint, save_checkpoint
from ekya.learners.model import EdgeModel

__all__ = ["EdgeModel", "FinetuneLearner", "TrainReport", "load_checkpoint", "save_checkpoint"]
