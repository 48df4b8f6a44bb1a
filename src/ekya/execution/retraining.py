"""The retraining service: what a real run trains on, and the retraining jobs it runs.

One ``RetrainingService`` per run that trains for real (``runtime=emulate`` and ``runtime=ray``) owns the
stream set, the learner, the configuration space, each camera's windows, the seed and the emulated
accelerator's rate, and it is the one place that

- runs a retraining job (``job`` names its inputs and seed, ``run`` trains it in this process,
  ``finish`` scores a model trained elsewhere) and reports its result, its cost and its progress
  (``JobResult.progress``; ``work_done`` while a job runs and its cost is not known yet);
- scores a model on a window's live samples (``live_accuracy``, per time segment) and on its
  teacher-labelled validation samples (``val_accuracy``);
- micro-profiles (``micro_profile``, ``profile_fleet``) on the newest labelled data
  (``newest_labelled``), which depends on what each camera's serving model has served (``note_served``).

The runtime (its models, plans and window play), the model store and the profiling callback all use
it through these methods, so none of them reads another's attributes. A job's seed depends only on
(run seed, window, camera, config): the same job gives the same model wherever it is trained.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.execution.runtime import WindowSettings
from ekya.execution.scoring import segment_accuracies
from ekya.learners.base import Learner, TrainReport
from ekya.plans.types import Budget
from ekya.profiles.microprofiler import MicroProfiler, StreamPrediction
from ekya.profiles.types import ConfigProfile
from ekya.results.records import WindowRecord
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window, cut_windows


def check_service_settings(*, accelerator_gflops: float = 2.0, cost_noise: float = 0.0) -> None:
    """The runtime keys the service is made with: the emulated accelerator's rate > 0, the cost noise >= 0."""
    if not (float(accelerator_gflops) > 0 and math.isfinite(float(accelerator_gflops))):
        raise EkyaError(f"runtime.accelerator_gflops must be > 0, got {accelerator_gflops}")
    if not (float(cost_noise) >= 0 and math.isfinite(float(cost_noise))):
        raise EkyaError(f"runtime.cost_noise must be a number >= 0 (0 = costs exactly as measured), "
                        f"got {cost_noise}")


def accelerator_seconds(train_flops: float, gflops: float) -> float:
    """Accelerator-seconds at a full share for the FLOPs a job computed on the emulated accelerator."""
    return float(train_flops) / (float(gflops) * 1e9)


def work_done(seconds: float, share: float, budget: Budget) -> float:
    """Accelerator-seconds of work a job has done after training ``seconds`` at a constant ``share``.

    What a running job's progress shows, before its cost is known: its predicted cost less this is
    the work it has left.
    """
    return float(seconds) * float(budget.train_rate(share))


@dataclass(frozen=True)
class RetrainJob:
    """One retraining job: a camera's model retrained with one config on window ``window``'s training pool."""

    camera: str
    #: the config's name in the space (``RetrainingService.space``)
    config: str
    window: int
    #: the retraining config itself (hyperparameters)
    settings: RetrainConfig
    train: pd.DataFrame = field(repr=False)
    val: pd.DataFrame = field(repr=False)
    #: the seed that makes the job's model the same wherever it is trained
    seed: int


@dataclass(frozen=True)
class JobResult:
    """A finished job: its model, what really happened (live and validation accuracy, cost) and its FLOPs."""

    job: RetrainJob
    model: torch.nn.Module
    #: live accuracy (overall and per segment), realised cost and the model's own validation accuracy
    profile: ConfigProfile
    train_flops: float

    @property
    def cost(self) -> float:
        """Accelerator-seconds at a full share the job took (its FLOPs at the accelerator's rate, with noise)."""
        return self.profile.cost

    def progress(self, seconds: float, share: float, budget: Budget) -> float:
        """The fraction of the job done after training ``seconds`` at a constant ``share`` (1.0: finished)."""
        if self.cost <= 0:
            return 1.0
        return min(1.0, work_done(seconds, share, budget) / self.cost)


@dataclass
class RetrainingService:
    """What a real run trains on (data, learner, configs, windows, seed, accelerator rate) and its jobs."""

    stream_set: StreamSet
    learner: Learner
    #: config name -> retraining config: every job a scheduler may pick
    space: dict[str, RetrainConfig]
    profiler: MicroProfiler
    settings: WindowSettings
    #: camera -> its windows (0: the bootstrap window the base model trains on)
    windows_of: dict[str, list[Window]]
    seed: int
    #: the emulated accelerator's rate, GFLOP/s: prices every job, evaluation and profiling pass
    gflops: float
    #: sigma of the seeded lognormal factor (mean 1) between a job's measured and realised cost
    cost_noise: float = 0.0
    #: per camera: from which video second its serving model has served, and whether it classified
    #: every frame meanwhile; scoring it on those frames is free
    served_since: dict[str, tuple[float, bool]] = field(default_factory=dict)
    #: each camera's model when the window being played started (every job of the window starts from it)
    window_start: dict[str, torch.nn.Module] = field(default_factory=dict)

    @classmethod
    def cut(cls, *, stream_set: StreamSet, learner: Learner, space: dict[str, RetrainConfig],
            profiler: MicroProfiler, window: WindowSettings, windows: int, seed: int, gflops: float,
            cost_noise: float = 0.0) -> RetrainingService:
        """The service for a stream set cut into ``windows`` windows per camera (seeded train/val/probe split)."""
        seed = int(seed)
        windows_of = {
            cam: cut_windows(stream_set.camera(cam), windows, window, seed=derive_seed(seed, "split", cam))
            for cam in stream_set.cameras
        }
        return cls(stream_set, learner, space, profiler, window, windows_of, seed, float(gflops), float(cost_noise))

    @property
    def cameras(self) -> list[str]:
        """The cameras (streams), in the stream set's fixed order."""
        return list(self.windows_of)

    def start_window(self, models: Mapping[str, torch.nn.Module]) -> None:
        """A window starts: its jobs retrain from these models (each camera's serving model now)."""
        self.window_start = dict(models)

    # -- jobs ----------------------------------------------------------------------------------------

    def job(self, cam: str, config: str, k: int) -> RetrainJob:
        """The job that retrains camera ``cam``'s model with ``config`` on window k's training pool."""
        w = self.windows_of[cam][k]
        return RetrainJob(cam, config, k, self.space[config], w.train, w.val,
                          derive_seed(self.seed, "retrain", k, cam, config))

    def run(self, job: RetrainJob, start: torch.nn.Module) -> JobResult:
        """Train ``job`` here from ``start`` (left unchanged) and score what it produced."""
        model, report = self.learner.retrain(start, job.settings, job.train, job.val, self.stream_set, job.seed)
        return self.finish(job, model, report)

    def finish(self, job: RetrainJob, model: torch.nn.Module, report: TrainReport) -> JobResult:
        """The result of ``job`` trained (here or elsewhere) into ``model``: live accuracy and realised cost."""
        acc, segs = self.live_accuracy(job.camera, model, job.window)
        cost = accelerator_seconds(report.train_flops, self.gflops) * self._cost_factor(job)
        # the returned model's own validation accuracy as it serves (else its restored best epoch's)
        seen = report.model_val_accuracy
        return JobResult(job, model, ConfigProfile(job.config, acc, cost, segs, seen), float(report.train_flops))

    def retrain(self, cam: str, config: str, k: int, start: torch.nn.Module) -> JobResult:
        """Retrain a camera's model with one config in window k, here: ``run(job(cam, config, k), start)``."""
        return self.run(self.job(cam, config, k), start)

    def _cost_factor(self, job: RetrainJob) -> float:
        """Realised over measured cost of one job: seeded lognormal noise with mean 1 (1.0 without noise)."""
        if self.cost_noise <= 0:
            return 1.0
        rng = np.random.default_rng(derive_seed(self.seed, "cost_noise", job.window, job.camera, job.config))
        z = rng.standard_normal()
        return float(math.exp(self.cost_noise * z - self.cost_noise ** 2 / 2))

    # -- scoring -----------------------------------------------------------------------------------------

    def live_accuracy(self, cam: str, model: torch.nn.Module, k: int) -> tuple[float, tuple[float, ...]]:
        """A model's accuracy on window k's live samples, overall and per time segment."""
        test = self.windows_of[cam][k].test
        correct, keep = self.learner.hits(model, test, self.stream_set)
        T = self.settings.seconds
        return segment_accuracies(correct, test["timestamp"].to_numpy()[keep], k * T, T, self.settings.segments)

    def val_accuracy(self, cam: str, model: torch.nn.Module, k: int) -> float:
        """A model's accuracy on the teacher labels of camera ``cam``'s validation samples of window k."""
        return self.learner.evaluate(model, self.windows_of[cam][k].val, self.stream_set, teacher=True)

    def inference_seconds(self, model: torch.nn.Module, samples: int) -> float:
        """Accelerator-seconds at a full share of ``samples`` inference passes of ``model``."""
        return samples * float(self.learner.forward_flops(model)) / (self.gflops * 1e9)

    # -- micro-profiling -----------------------------------------------------------------------------------

    def micro_profile(self, cam: str, k: int, model: torch.nn.Module, every_config: bool = False) -> StreamPrediction:
        """The micro-profiler's predictions for a camera's model in window k (and what they cost)."""
        return self.profiler.profile(cam, self.learner, model, self.windows_of[cam][k], self.stream_set, self.space,
                                     derive_seed(self.seed, "micro", k, cam), self.gflops, every_config=every_config,
                                     newest=self.newest_labelled(cam, k))

    def profile_fleet(self, models: Mapping[str, torch.nn.Module], k: int) -> dict[str, StreamPrediction]:
        """Every camera's predictions for window k from its serving model (the profiler may share trials)."""
        return self.profiler.profile_fleet(
            {cam: (models[cam], self.windows_of[cam][k]) for cam in self.cameras}, self.learner, self.stream_set,
            self.space, lambda cam: derive_seed(self.seed, "micro", k, cam), self.gflops,
            newest={cam: self.newest_labelled(cam, k) for cam in self.cameras})

    def newest_labelled(self, cam: str, k: int) -> tuple[Any, int]:
        """The newest labelled samples to score the camera's serving model on, and how many of them are free.

        At window k's start the teacher has labelled chunk k-1 (window k-1's live frames), which no model
        of the lineage trained on. The frames the serving model classified itself while serving cost
        nothing to score (its answers exist; the teacher's labels score them); when there are at
        least as many as the chunk's validation part, they are the start set. Otherwise the chunk's
        validation part is added, each of its frames the model did not serve being one charged
        inference pass. Window 1 has only the bootstrap chunk, whose train part trained the base
        model: its validation part, charged. Probe samples (window.probe_fraction > 0) stay unseen.
        """
        if k <= 1:
            return self.windows_of[cam][0].val, 0
        T = self.settings.seconds
        prev = self.windows_of[cam][k - 1]
        chunk = prev.test.drop(index=prev.probe.index, errors="ignore") if self.settings.probe_fraction > 0 \
            else prev.test
        val = self.windows_of[cam][k].val
        val = val[val["timestamp"].to_numpy(dtype=float) >= (k - 1) * T]  # chunk k-1's validation part
        since, classified_all = self.served_since.get(cam, ((k - 1) * T, True))
        served = chunk[chunk["timestamp"].to_numpy(dtype=float) >= since] if classified_all else chunk.iloc[:0]
        if len(served) >= len(val):
            return served, len(served)
        extra = val.drop(index=served.index, errors="ignore")
        return pd.concat([served, extra]), len(served)

    def note_served(self, k: int, records: Sequence[WindowRecord], budget: Budget) -> None:
        """After window k: from when each camera's serving model served, and whether it classified every frame.

        A job that completed at t (window seconds) went live at k*T + t; a camera planned below its
        keep-up share (``budget``'s inference curve) subsampled frames, so its model's answers exist for
        only some of them (none counted as free).
        """
        T = self.settings.seconds
        for r in records:
            keeps_up = r.infer_share + 1e-12 >= getattr(budget.scale_for(r.stream), "max_share", 0.0)
            if not self.settings.carry_over:
                self.served_since[r.stream] = ((k + 1) * T, keeps_up)  # back to the base model: it served none of k
            elif math.isfinite(r.completion_time):
                self.served_since[r.stream] = (k * T + float(r.completion_time), keeps_up)
            else:
                self.served_since[r.stream] = (self.served_since.get(r.stream, ((k - 1) * T, True))[0], keeps_up)
