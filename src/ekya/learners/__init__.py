"""Learners: per-camera edge models, their retraining jobs and their accuracy (PyTorch Lightning).

The names below load on first use, so ``ekya.learners.base`` (the protocol and ``TrainReport``)
imports without torch and torch-free code can name the Learner type.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # ``X as X``: re-exported (loaded by __getattr__ below; ``__all__`` is built from _WHERE)
    from ekya.learners.base import Learner as Learner
    from ekya.learners.base import TrainReport as TrainReport
    from ekya.learners.finetune import FinetuneLearner as FinetuneLearner
    from ekya.learners.icarl import ICaRLLearner as ICaRLLearner
    from ekya.learners.icarl_model import ICaRLModel as ICaRLModel
    from ekya.learners.model import EdgeModel as EdgeModel
    from ekya.learners.model_state import load_checkpoint as load_checkpoint
    from ekya.learners.model_state import save_checkpoint as save_checkpoint

_WHERE = {"Learner": "base", "TrainReport": "base", "load_checkpoint": "model_state", "save_checkpoint": "model_state",
          "FinetuneLearner": "finetune", "EdgeModel": "model", "ICaRLLearner": "icarl", "ICaRLModel": "icarl_model"}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first asked for."""
    if name not in _WHERE:
        raise AttributeError(f"module 'ekya.learners' has no attribute {name!r}")
    return getattr(import_module(f"ekya.learners.{_WHERE[name]}"), name)
