"""The learner protocol: what every runtime and the micro-profiler may call on a learner.

A learner owns the edge models of its cameras: it builds a camera's base model, runs one
retraining job per RetrainConfig (and reports its cost in a ``TrainReport``), scores a model on a
sample table, and turns a model into a plain dict of its description and weights and back (so a
saved run never pickles a module, and renaming a class never breaks a resume).

Models handed to callers live on the CPU, whatever device a learner trains on, so they pickle and
compare the same everywhere.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import pandas as pd

from ekya.configspace import RetrainConfig
from ekya.learners.tables import crop_rows
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window

if TYPE_CHECKING:  # the protocol itself needs no torch: the defaults below import what they use when called
    from torch import nn

    from ekya.learners.data import CropCache
    from ekya.learners.params import JobParams


@dataclass
class TrainReport:
    """What one training job did: epochs, sample-passes, FLOPs computed, validation curve, wall time."""

    epochs: int
    samples_seen: int
    train_flops: float
    val_acc: list[float] = field(default_factory=list)
    wall_seconds: float = 0.0
    train_samples: int = 0
    val_samples: int = 0
    #: the config asked for a backbone other than the given model's, so training started from a
    #: freshly initialised model of that backbone (nothing pretrained exists to start from)
    from_scratch: bool = False
    #: FLOPs per sample of each pass this job ran, as measured on its architecture: (once per
    #: train+val sample (feature caching), per train sample and epoch, per val sample and epoch).
    #: With P the samples trained per epoch (train_samples * (1 - extra_overlap) +
    #: extra_train_samples) and V = val_samples: train_flops = fixed_flops + once*(P + V) +
    #: train_once_flops*P + val_once_flops*V + epochs*(per_train*P + per_val*V), up to the trailing
    #: one-sample batch a shuffled epoch skips. The micro-profiler predicts a full job from a trial by it.
    pass_flops: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: samples the learner adds to every job's training set beside the train_samples drawn from the
    #: window, whatever the data fraction (iCaRL: the exemplars the starting model carries)
    extra_train_samples: int = 0
    #: fraction of the window's labelled training pool (before data_fraction) that is already among
    #: those extra samples: a sample that is both is trained once per epoch, not twice
    extra_overlap: float = 0.0
    #: FLOPs per sample trained per epoch (P above) paid once per job beyond pass_flops[0]
    #: (iCaRL: teacher targets, herding's feature pass and its selection)
    train_once_flops: float = 0.0
    #: FLOPs per validation sample paid once per job beyond pass_flops[0] (iCaRL: scoring the
    #: returned model as it serves, for val_accuracy)
    val_once_flops: float = 0.0
    #: FLOPs per job that scale with neither the training nor the validation samples (iCaRL: the
    #: pass over the new memory's flipped crops for the class means)
    fixed_flops: float = 0.0
    #: the returned model's validation accuracy as it serves (iCaRL: by its class means); NaN: the
    #: restored epoch's, max(val_acc)
    val_accuracy: float = math.nan

    @property
    def model_val_accuracy(self) -> float:
        """The returned model's validation accuracy as it serves: val_accuracy, else the best epoch's (NaN: none)."""
        if math.isfinite(self.val_accuracy):
            return float(self.val_accuracy)
        return float(max(self.val_acc)) if self.val_acc else math.nan


class Learner(ABC):
    """Base models, retraining jobs, accuracy and model (de)serialisation for per-camera edge models.

    The abstract methods are what a learner must supply. The others have defaults every runtime,
    bench and the micro-profiler may rely on: ``evaluate`` (from ``hits``), ``params`` and
    ``check_config`` (a config completed with ``defaults``), ``new_model`` (an ``EdgeModel``),
    ``crops`` (one crop cache per dataset at ``image_size``), ``job_rows`` (the pool) and
    ``without_crops`` (the learner as it is shipped to another process).
    """

    #: side in pixels of the square crops ``crops`` decodes and ``new_model`` builds for
    image_size: int = 32
    #: values for any RetrainConfig key a config leaves out (``params``); every key of ``PARAM_KEYS``
    #: a config may omit needs one
    defaults: Mapping[str, Any] = MappingProxyType({})

    @abstractmethod
    def base_model(self, stream_set: StreamSet, bootstrap: Window | pd.DataFrame, seed: int) -> nn.Module:
        """A camera's base model, built from its bootstrap window (or a bootstrap table)."""

    @abstractmethod
    def retrain(self, model: nn.Module, config: RetrainConfig, train_df: pd.DataFrame, val_df: pd.DataFrame,
                stream_set: StreamSet, seed: int) -> tuple[nn.Module, TrainReport]:
        """A retrained copy of ``model`` and the job's report; ``model`` itself is never changed."""

    @abstractmethod
    def hits(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet,
             teacher: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(correct, keep): ``keep`` marks the rows with a target, ``correct`` whether each kept row is right."""

    @abstractmethod
    def predict(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet) -> np.ndarray:
        """Predicted class id per row of ``df``."""

    def evaluate(self, model: nn.Module, df: pd.DataFrame, stream_set: StreamSet, teacher: bool = False) -> float:
        """Top-1 accuracy over the rows ``hits`` keeps; NaN when no row has a target."""
        correct, _ = self.hits(model, df, stream_set, teacher)
        return float(correct.mean()) if correct.size else float("nan")

    @abstractmethod
    def forward_flops(self, model: nn.Module) -> float:
        """FLOPs of one inference pass of ``model`` over one sample."""

    @abstractmethod
    def model_state(self, model: nn.Module) -> dict[str, Any]:
        """A plain dict of the model's description and its ``state_dict`` (no pickled modules)."""

    @abstractmethod
    def load_model_state(self, state: dict[str, Any]) -> nn.Module:
        """The model a ``model_state`` dict describes, with identical outputs, on the CPU."""

    # -- defaults ------------------------------------------------------------------------------

    def params(self, config: RetrainConfig) -> JobParams:
        """The config's params completed with ``defaults``; EkyaError names the config and bad key."""
        from ekya.learners.params import job_params

        return job_params(config, self.defaults)

    def check_config(self, config: RetrainConfig) -> None:
        """Raise EkyaError (naming the config and key) when this learner cannot run ``config``: ``params``' checks."""
        self.params(config)

    def new_model(self, num_classes: int, seed: int, backbone: str | None = None,
                  hidden: int | None = None) -> nn.Module:
        """A freshly initialised ``EdgeModel`` on the CPU, deterministic given the seed.

        ``backbone`` and ``hidden`` default to those of ``defaults``; crops are ``image_size`` pixels.
        """
        import torch

        from ekya.learners.model import EdgeModel

        with torch.random.fork_rng():
            torch.manual_seed(int(seed))
            return EdgeModel(backbone or self.defaults["backbone"], hidden or self.defaults["hidden"], num_classes,
                             self.image_size)

    def crops(self, stream_set: StreamSet) -> CropCache:
        """The dataset's crops at ``image_size`` pixels, decoded on first use and kept for the learner's lifetime."""
        from ekya.learners.data import CropCache

        # One cache per dataset, so decoding is paid once per run, not once per job. Keyed by id and kept
        # with its StreamSet, so the id cannot be reused by another object.
        caches: dict[int, tuple[StreamSet, CropCache]] = self.__dict__.setdefault("_caches", {})
        hit = caches.get(id(stream_set))
        if hit is None:
            hit = caches[id(stream_set)] = (stream_set, CropCache(stream_set, self.image_size))
        return hit[1]

    def job_rows(self, model: nn.Module, train_df: pd.DataFrame, val_df: pd.DataFrame) -> pd.DataFrame:
        """The crop keys of every sample a ``retrain`` of ``model`` on this pool reads: by default the pool itself."""
        return crop_rows(train_df, val_df)

    def without_crops(self) -> Self:
        """A shallow copy of this learner holding no decoded crops: what is shipped to a job in another process."""
        shipped = copy.copy(self)
        shipped.__dict__["_caches"] = {}
        return shipped
