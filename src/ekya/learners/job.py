"""The retraining template every ekya learner's job follows, and the values that travel between its steps.

``retrain`` = ``prepare_job`` (params, camera, the labelled rows, the empty check, data_fraction,
the job's seed) -> ``start_model`` (the copy that trains) -> ``fit_job`` (the Lightning fit and its
FLOPs) -> ``after_fit`` (what the learner keeps beside the weights) -> the model handed back on the
CPU -> ``report`` (the ``TrainReport``). A learner supplies the steps that differ; the prologue,
the hand-back and the report's common fields are written once, here.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners.base import Learner, TrainReport
from ekya.learners.tables import camera_of, labelled
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.streams.windows import subsample

if TYPE_CHECKING:
    from torch import nn

    from ekya.learners.params import JobParams
    from ekya.learners.training import Batches, FinetuneModule


@dataclass
class Job:
    """One retraining job, prepared: its inputs as the learner trains on them."""

    #: the model the job starts from (never changed: the job trains a copy)
    model: nn.Module
    config: RetrainConfig
    params: JobParams
    camera: str
    #: the window's teacher-labelled training pool, before ``data_fraction``
    labelled_train: pd.DataFrame
    #: the rows the job trains on: ``labelled_train`` after ``data_fraction``
    train: pd.DataFrame
    #: the teacher-labelled validation rows
    val: pd.DataFrame
    stream_set: StreamSet
    num_classes: int
    #: the job's seed (its model initialisation, batch order and buffers derive from it)
    seed: int
    #: whether the starting model may be distilled from (False for an untrained start)
    distill: bool
    #: perf_counter when the job started (its report's wall time)
    started: float
    #: whether the model that trains was freshly initialised (set once ``start_model`` has run)
    from_scratch: bool = False


@dataclass
class Fitted:
    """What a job's fit leaves for its report: the module, its batches and the FLOPs of each pass.

    ``passes``, ``once`` and ``per_epoch`` are as ``TrainReport.pass_flops`` and ``train_flops``
    define them: train_flops = once + per_epoch * epochs.
    """

    module: FinetuneModule
    train: Batches
    val: Batches
    passes: tuple[float, float, float]
    once: float
    per_epoch: float
    train_samples: int
    val_samples: int


class JobLearner(Learner):
    """A learner whose ``retrain`` is the shared template (see the module doc); subclasses supply the steps."""

    def retrain(self, model: nn.Module, config: RetrainConfig, train_df: pd.DataFrame, val_df: pd.DataFrame,
                stream_set: StreamSet, seed: int, distill: bool = True) -> tuple[nn.Module, TrainReport]:
        """Train a copy of ``model`` with ``config`` on the teacher labels of ``train_df``; ``model`` is untouched.

        ``distill``: the job may distil from ``model`` (False for an untrained start).
        """
        job = self.prepare_job(model, config, train_df, val_df, stream_set, seed, distill)
        new, job.from_scratch = self.start_model(job)
        fitted = self.fit_job(job, new)
        self.after_fit(job, new, fitted)
        new.cpu()
        new.requires_grad_(True)
        new.eval()
        return new, self.report(job, fitted)

    def prepare_job(self, model: nn.Module, config: RetrainConfig, train_df: pd.DataFrame, val_df: pd.DataFrame,
                    stream_set: StreamSet, seed: int, distill: bool) -> Job:
        """The job's params, camera, labelled rows (none to train on: EkyaError), data fraction and seed."""
        started = time.perf_counter()
        params = self.params(config)
        camera = camera_of(train_df)
        pool, val = labelled(train_df), labelled(val_df)
        if pool.empty:
            raise EkyaError(f"retraining camera {camera!r} with {config.name!r}: no teacher-labelled training "
                            "samples; check the labeler and the window's training pool")
        train = subsample(pool, params.data_fraction, derive_seed(seed, "fraction", camera, config.name),
                          key=f"configspace config {config.name!r}: data_fraction")
        return Job(model, config, params, camera, pool, train, val, stream_set, len(stream_set.classes),
                   derive_seed(seed, "job", camera, config.name), distill, started)

    @abstractmethod
    def start_model(self, job: Job) -> tuple[nn.Module, bool]:
        """The model the job trains (a copy of ``job.model``, or a fresh one) and whether it is fresh."""

    @abstractmethod
    def fit_job(self, job: Job, new: nn.Module) -> Fitted:
        """Train ``new`` on the job's rows; the fit and the FLOPs of each pass."""

    def after_fit(self, job: Job, new: nn.Module, fitted: Fitted) -> None:
        """What the learner keeps beside the trained weights (a memory, a buffer); by default nothing."""

    def report(self, job: Job, fitted: Fitted) -> TrainReport:
        """The job's ``TrainReport``: its epochs, samples, FLOPs (once + per_epoch * epochs) and validation curve."""
        epochs = job.params.epochs
        return TrainReport(
            epochs=epochs, samples_seen=fitted.train.samples * epochs,
            train_flops=float(fitted.once + fitted.per_epoch * epochs), val_acc=list(fitted.module.val_acc),
            wall_seconds=time.perf_counter() - job.started, train_samples=fitted.train_samples,
            val_samples=fitted.val_samples, from_scratch=job.from_scratch, pass_flops=fitted.passes,
        )
