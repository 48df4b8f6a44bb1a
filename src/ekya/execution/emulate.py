"""The emulate runtime: real retraining and real inference accuracy, on a virtual clock.

Per window: the scheduler plans from what it may know at the window start (teacher-labelled
validation accuracy; micro-profiled predictions when it needs them, whose own cost delays the
window's retraining and takes accelerator share from inference while the trials run); the chosen
configs are retrained for real; a job's duration is the FLOPs it really computed divided by the
emulated accelerator's rate and the throughput curve at its share, times a seeded noise factor
(``runtime.cost_noise``) as real hardware is never predicted exactly; ``plans.playback.play_window``
then plays the window with the measured accuracies (re-planning at every completion and at every
segment boundary), so emulate and simulate share one accuracy model. Each model is scored on the
live samples of the time it serves: the window is cut into ``window.segments`` equal segments.
Re-planning learns only what a deployed system knows: the new model's validation accuracy. Nothing
depends on wall time, so the same seed gives the same numbers on every rerun on the same machine type
with the same ``threads``: torch's floating-point reductions depend on the thread count and the CPU's
kernels, so another ``threads`` or another CPU acts like another seed (one run moves by up to about
2 points; compare paired runs over seeds).

A scheduler that asks for cached models (``cache_request``: scheduler=model_cache, the thief with
``cached_models``) gets them as zero-cost ``cache:w<i>`` configs from ``ekya.execution.model_store``,
which keeps them across windows (and in the snapshot); switching to one is a job that completes
at the label delay.

What a real run trains on (data, learner, configs, windows, seed, accelerator rate) and its jobs,
scoring and micro-profiling are the run's ``RetrainingService`` (``ekya.execution.retraining``,
``runtime.retraining``); each camera's base and serving model are its ``CameraModels``
(``ekya.execution.camera_models``, ``runtime.models``). A window is planned by
``ekya.execution.window_plan`` and recorded by ``ekya.execution.window_records``, as in runtime=ray;
this runtime plays it on the virtual clock. The model store and profiling mode (the ``profile_all``
callback, ``ekya.callbacks.profiling``) use the service.

Measurement instruments (``runtime.instrument``, never defaults: null is the shipped system) split a
scheduler's gap to a fixed plan into what profiling costs, what its predictions miss and what
scheduling can gain. ``free_profiling``: the scheduler is told the very predictions of a shipped run
(same trials, same seeds), but micro-profiling delays nothing and takes no inference share; the
records' ``profiling_cost`` still says what it would have cost. ``oracle``: before planning, every
config of the space is retrained for real on every camera from its serving model (the seeds the
real job uses, so the job the plan picks is that very model, not trained again), and the scheduler
is told each one's live accuracy (per segment), realised cost, and the serving model's live
accuracy; re-planning observes live accuracy too; nothing is micro-profiled and nothing is charged.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from tqdm.auto import tqdm

from ekya.configspace import RetrainConfig, is_cached
from ekya.errors import EkyaError
from ekya.execution.camera_models import CameraModels
from ekya.execution.model_store import ModelStore, cached_job
from ekya.execution.retraining import RetrainingService, check_service_settings
from ekya.execution.runtime import Runtime, WindowResult, WindowSettings
from ekya.execution.window_plan import plan_window, told_profiles, window_budget
from ekya.execution.window_records import close_window, noretrain_accuracy, window_record
from ekya.learners.base import Learner
from ekya.plans.playback import play_window, segment_boundaries
from ekya.plans.scheduler import Scheduler
from ekya.plans.types import Budget, Plan
from ekya.profiles.microprofiler import MicroProfiler
from ekya.profiles.types import ConfigProfile, StreamProfile
from ekya.results.continual import AccuracyMatrix
from ekya.streams.samples import StreamSet

#: ``runtime.instrument`` values: measurement instruments that split a gap (module docstring), never defaults
INSTRUMENTS = ("free_profiling", "oracle")


class EmulateRuntime(Runtime):
    """Continuous learning with real models on the virtual clock."""

    retraining: RetrainingService

    def __init__(
        self,
        *,
        stream_set: StreamSet,
        learner: Learner,
        scheduler: Scheduler,
        profiler: MicroProfiler,
        space: dict[str, RetrainConfig],
        budget: Budget,
        window: WindowSettings,
        windows: int,
        seed: int,
        base_key: str = "",
        accelerator_gflops: float = 2.0,
        cost_noise: float = 0.0,
        base_cache: str | None = None,
        instrument: str | None = None,
    ) -> None:
        self.check_settings(accelerator_gflops=accelerator_gflops, cost_noise=cost_noise, instrument=instrument)
        if instrument == "oracle" and not scheduler.needs_profiles:
            raise EkyaError(f"runtime.instrument=oracle tells a scheduler each config's realised accuracy and cost, "
                            f"but scheduler {scheduler.name!r} plans without profiles; use one that plans on them "
                            "(scheduler=thief) or runtime.instrument=null")
        #: the measurement instrument this run is (None: the shipped system)
        self.instrument = instrument
        #: (camera, config) -> the oracle's model and job of the window being played
        self._oracle_jobs: dict[tuple[str, str], tuple[torch.nn.Module, ConfigProfile]] = {}
        self.retraining = RetrainingService.cut(
            stream_set=stream_set, learner=learner, space=space, profiler=profiler, window=window, windows=windows,
            seed=seed, gflops=accelerator_gflops, cost_noise=cost_noise)
        #: each camera's base and serving model, the base-model cache and the forgetting probes
        self.models = CameraModels.for_service(self.retraining, base_cache, base_key)
        self.scheduler, self.budget = scheduler, budget
        self.source = stream_set.name
        self.streams = stream_set.cameras
        self.windows = list(range(1, len(next(iter(self.retraining.windows_of.values())))))
        #: the cached models the scheduler asks for (``cache_request``), None when it asks for none
        self.model_store = ModelStore.for_scheduler(self.retraining, scheduler)

    @classmethod
    def check_settings(cls, *, accelerator_gflops: float = 2.0, cost_noise: float = 0.0,
                       instrument: str | None = None, **_: Any) -> None:
        """The emulated accelerator's rate must be positive, the cost noise non-negative, the instrument known."""
        if instrument is not None and instrument not in INSTRUMENTS:
            raise EkyaError(f"runtime.instrument={instrument!r}: use null (the shipped system) or one of the "
                            f"measurement instruments {', '.join(INSTRUMENTS)}")
        check_service_settings(accelerator_gflops=accelerator_gflops, cost_noise=cost_noise)

    # -- models ----------------------------------------------------------------------------------------

    def setup(self, saved: Any | None) -> None:
        """Train (or restore) each camera's base model on its bootstrap window."""
        self.models.setup(saved)
        if saved is not None and self.model_store is not None:
            self.model_store.restore(saved.get("cache"))
        self.budget = self.models.keep_up_budget(self.budget)

    def cached_base_models(self) -> list[str]:
        """The cameras whose base model ``runtime.base_cache`` holds already (setup loads these, trains the rest)."""
        return self.models.cached_base_models()

    def snapshot(self) -> Any:
        """Every camera's current and base models (descriptions, state dicts), the profiler's state, the matrices."""
        return {**self.models.snapshot(),
                "cache": self.model_store.state() if self.model_store is not None else None}

    def accuracy_matrices(self) -> dict[str, AccuracyMatrix] | None:
        """Each camera's probe-accuracy matrix so far; None with ``window.forgetting=false``."""
        return self.models.accuracy_matrices()

    def describe(self) -> dict[str, str]:
        """Tags: the runtime's, plus ``instrument`` (``none`` for the shipped system) so instrument runs stand apart."""
        return {**super().describe(), "instrument": self.instrument or "none"}

    # -- what the scheduler is told --------------------------------------------------------------

    def _told(self, k: int) -> tuple[list[StreamProfile], dict[str, float]]:
        """Profiles the scheduler plans with, and the micro-profiling cost spent per stream."""
        if self.instrument == "oracle":
            return self._oracle_told(k)
        return told_profiles(self.retraining, self.scheduler, self.models.serving, self.model_store, k)

    def _oracle_told(self, k: int) -> tuple[list[StreamProfile], dict[str, float]]:
        """The oracle's profiles: every config retrained for real on every camera, told as it really went; free.

        The models are kept for the window (``_oracle_jobs``): the job the plan picks is one of them.
        A config's ``val_accuracy`` is its live accuracy, so re-planning observes the truth as well.
        """
        svc, serving = self.retraining, self.models.serving
        self._oracle_jobs = {}
        out = []
        for cam in tqdm(self.streams, desc=f"oracle window {k}", unit="camera", leave=False, disable=None):
            start, start_segs = svc.live_accuracy(cam, serving[cam], k)
            configs = []
            for name in svc.space:
                result = svc.retrain(cam, name, k, serving[cam])
                job = dataclasses.replace(result.profile, val_accuracy=result.profile.accuracy)
                self._oracle_jobs[(cam, name)] = (result.model, job)
                configs.append(job)
            told = StreamProfile(cam, start, tuple(configs), start_segs)
            if self.model_store is not None:  # cached models as configs, told as switching to them really goes
                told, _ = self.model_store.tell(cam, told)
                told = dataclasses.replace(told, configs=tuple(
                    self._cached_truth(cam, c.config) if is_cached(c.config) else c for c in told.configs))
            out.append(told)
        return out, {cam: 0.0 for cam in self.streams}

    def _cached_truth(self, cam: str, config: str) -> ConfigProfile:
        """What switching a camera to a cached model really gives, its live accuracy standing for the observed one."""
        assert self.model_store is not None
        truth = self.model_store.job(cam, config)[1]
        return dataclasses.replace(truth, val_accuracy=truth.accuracy)

    # -- one window --------------------------------------------------------------------------------

    def play(self, window: int) -> WindowResult:
        """Plan, retrain for real, and play one window on the virtual clock."""
        k, svc, models = window, self.retraining, self.models
        svc.start_window(models.serving)
        if self.model_store is not None:
            self.model_store.start_window(k, models.base)
        told, spent = self._told(k)
        # under an instrument profiling is free: it neither delays retraining nor shares the accelerator
        budget = window_budget(self.budget, svc.profiler, 0.0 if self.instrument is not None else sum(spent.values()))
        planned = plan_window(self.scheduler, k, told, spent, budget)
        truths, new_models, done_jobs, starts = self._run_jobs(k, planned.plan)
        outcome = play_window(planned.plan, truths, budget, self.scheduler, predicted=told,
                              checks=segment_boundaries(self.budget.window, svc.settings.segments))
        reference = noretrain_accuracy(svc, models.base, self.budget, k)
        store = self.model_store
        oracle = store.oracle(planned.plan, truths, told, self.budget) if store is not None else {}
        records, end_models = [], {}
        for cam in self.streams:
            res, config = outcome.streams[cam], planned.plan.by_stream()[cam].config
            done = res.completion_time is not None
            if done:
                models.serving[cam] = new_models[cam]
            if store is not None:
                store.went_live(cam, k, config if done else None, models.serving[cam])
            end_models[cam] = new_models[cam] if done else svc.window_start[cam]
            models.carry_over(cam)
            records.append(window_record(
                planned, cam, accuracy=res.accuracy, noretrain=reference[cam], start=starts[cam],
                end=done_jobs[cam].accuracy if done else starts[cam],
                cost=done_jobs[cam].cost if cam in done_jobs else 0.0,
                completion=math.nan if res.completion_time is None else res.completion_time,
                oracle_accuracy=oracle.get(cam, math.nan)))
        self._oracle_jobs = {}  # the window's other models are not needed any more
        close_window(models, k, end_models, records, self.budget)
        return WindowResult(k, records, planned.plan, told if self.scheduler.needs_profiles else [])

    def _run_jobs(self, k: int, plan: Plan) -> tuple[list[StreamProfile], dict[str, torch.nn.Module],
                                                     dict[str, ConfigProfile], dict[str, float]]:
        """Run the plan's jobs: the true profiles to play, the new models, what each job did, the start accuracies."""
        svc, serving = self.retraining, self.models.serving
        truths, new_models, done_jobs, starts = [], {}, {}, {}
        for sp in tqdm(plan.streams, desc=f"window {k}", unit="job", leave=False, disable=None):
            cam = sp.stream
            starts[cam], segs = svc.live_accuracy(cam, serving[cam], k)
            if sp.config is None:
                truths.append(StreamProfile(cam, starts[cam], (), segs))
                continue
            if is_cached(sp.config):  # switching to a cached model: no retraining
                new_models[cam], done_jobs[cam] = cached_job(self.model_store, self.scheduler, cam, sp.config)
                if self.instrument == "oracle":  # as told: re-planning observes the live accuracy
                    done_jobs[cam] = self._cached_truth(cam, sp.config)
            elif (cam, sp.config) in self._oracle_jobs:  # the oracle trained it already, with the same seed
                new_models[cam], done_jobs[cam] = self._oracle_jobs[(cam, sp.config)]
            else:
                result = svc.retrain(cam, sp.config, k, serving[cam])
                new_models[cam], done_jobs[cam] = result.model, result.profile
            truths.append(StreamProfile(cam, starts[cam], (done_jobs[cam],), segs))
        return truths, new_models, done_jobs, starts
