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
``runtime.retraining``); this runtime owns the models, the plans and the window's play. The model
store and profiling mode (the ``profile_all`` callback, ``ekya.callbacks.profiling``) use the service.

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
import hashlib
import io
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.execution.continual_eval import ProbeEvaluator
from ekya.execution.keep_up import keep_up_share, sample_rate, with_keep_up
from ekya.execution.model_store import ModelStore, cached_job
from ekya.execution.retraining import RetrainingService
from ekya.execution.retraining import accelerator_seconds as accelerator_seconds  # ray/runtime.py imports it here
from ekya.execution.runtime import Runtime, WindowResult, WindowSettings
from ekya.learners.base import Learner
from ekya.plans.playback import play_window, segment_boundaries
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.model_cache import is_cached
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.types import Budget, Plan
from ekya.profiles.microprofiler import MicroProfiler
from ekya.profiles.types import ConfigProfile, RetrainConfig, StreamProfile
from ekya.results.continual import AccuracyMatrix
from ekya.results.records import WindowRecord
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.streams.windows import Window

log = logging.getLogger("ekya.emulate")

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
        self.scheduler, self.budget = scheduler, budget
        self.base_cache = Path(str(base_cache)) if base_cache else None
        self.base_key = str(base_key)
        self.source = stream_set.name
        self.streams = stream_set.cameras
        #: forgetting measured (``window.forgetting``): every served model scored on every window's probe
        self.probes = ProbeEvaluator(learner, stream_set, self.retraining.windows_of) if window.forgetting else None
        self.windows = list(range(1, len(next(iter(self.retraining.windows_of.values())))))
        self.models: dict[str, torch.nn.Module] = {}
        self.base: dict[str, torch.nn.Module] = {}
        #: the cached models the scheduler asks for (``cache_request``), None when it asks for none
        self.model_store = ModelStore.for_scheduler(self.retraining, scheduler)

    @classmethod
    def check_settings(cls, *, accelerator_gflops: float = 2.0, cost_noise: float = 0.0,
                       instrument: str | None = None, **_: Any) -> None:
        """The emulated accelerator's rate must be positive, the cost noise non-negative, the instrument known."""
        if instrument is not None and instrument not in INSTRUMENTS:
            raise EkyaError(f"runtime.instrument={instrument!r}: use null (the shipped system) or one of the "
                            f"measurement instruments {', '.join(INSTRUMENTS)}")
        if not (float(accelerator_gflops) > 0 and math.isfinite(float(accelerator_gflops))):
            raise EkyaError(f"runtime.accelerator_gflops must be > 0, got {accelerator_gflops}")
        if not (float(cost_noise) >= 0 and math.isfinite(float(cost_noise))):
            raise EkyaError(f"runtime.cost_noise must be a number >= 0 (0 = costs exactly as measured), "
                            f"got {cost_noise}")

    # -- the service's facts under the names ray/runtime.py reads (it inherits this class until it composes) --

    @property
    def stream_set(self) -> StreamSet:
        """The run's stream set (``retraining.stream_set``)."""
        return self.retraining.stream_set

    @property
    def learner(self) -> Learner:
        """The run's learner (``retraining.learner``)."""
        return self.retraining.learner

    @property
    def profiler(self) -> MicroProfiler:
        """The run's micro-profiler (``retraining.profiler``)."""
        return self.retraining.profiler

    @property
    def space(self) -> dict[str, RetrainConfig]:
        """The configuration space (``retraining.space``)."""
        return self.retraining.space

    @property
    def settings(self) -> WindowSettings:
        """The window settings (``retraining.settings``)."""
        return self.retraining.settings

    @property
    def windows_of(self) -> dict[str, list[Window]]:
        """Each camera's windows (``retraining.windows_of``)."""
        return self.retraining.windows_of

    @property
    def seed(self) -> int:
        """The run's seed (``retraining.seed``)."""
        return self.retraining.seed

    @property
    def gflops(self) -> float:
        """The emulated accelerator's rate, GFLOP/s (``retraining.gflops``)."""
        return self.retraining.gflops

    @property
    def models_at_start(self) -> dict[str, torch.nn.Module]:
        """Each camera's model when the window being played started (``retraining.window_start``)."""
        return self.retraining.window_start

    @models_at_start.setter
    def models_at_start(self, models: dict[str, torch.nn.Module]) -> None:
        self.retraining.start_window(models)

    @property
    def model_cache(self) -> ModelStore | None:
        """The model store (``model_store``)."""
        return self.model_store

    def live_accuracy(self, cam: str, model: torch.nn.Module, k: int) -> tuple[float, tuple[float, ...]]:
        """A model's accuracy on window k's live samples, overall and per segment (``retraining.live_accuracy``)."""
        return self.retraining.live_accuracy(cam, model, k)

    def note_served(self, k: int, records: list[WindowRecord]) -> None:
        """After window k: what each camera's serving model served (``retraining.note_served`` on the budget)."""
        self.retraining.note_served(k, records, self.budget)

    # -- models ----------------------------------------------------------------------------------------

    def setup(self, saved: Any | None) -> None:
        """Train (or restore) each camera's base model on its bootstrap window."""
        if saved is not None:
            svc = self.retraining
            self.models = {cam: svc.learner.load_model_state(s) for cam, s in saved["models"].items()}
            self.base = {cam: svc.learner.load_model_state(s) for cam, s in saved["base"].items()}
            svc.profiler.restore(saved.get("profiler"))
            svc.served_since = {cam: (float(t), bool(ok)) for cam, (t, ok) in saved.get("served_since", {}).items()}
            if self.model_store is not None:
                self.model_store.restore(saved.get("cache"))
            if self.probes is not None and saved.get("probes") is None:
                log.warning("the checkpoint holds no accuracy matrices (saved without window.forgetting): "
                            "forgetting is not measured in this resumed run")
                self.probes = None
            elif self.probes is not None:
                self.probes.restore(saved["probes"])
            self.budget = self._keep_up_budget()
            return
        for cam in tqdm(self.streams, desc="base models", unit="camera", leave=False, disable=None):
            model = self._base_model(cam)
            self.base[cam] = model
            self.models[cam] = model
        if self.probes is not None:
            self.probes.add_row(0, self.base)
        self.budget = self._keep_up_budget()

    def _keep_up_budget(self) -> Budget:
        """The budget with each camera's inference keep-up share priced at the accelerator's one rate."""
        if not self.budget.derive_keep_up:
            return self.budget
        svc = self.retraining
        n = len(next(iter(svc.windows_of.values())))
        return with_keep_up(self.budget, {
            cam: keep_up_share(sample_rate(svc.stream_set.camera(cam), svc.settings.seconds, n),
                               svc.learner.forward_flops(self.models[cam]), svc.gflops)
            for cam in self.streams})

    def _base_model(self, cam: str) -> torch.nn.Module:
        """Train a camera's base model, or load it from ``runtime.base_cache`` where the same one was trained.

        The cache key (``base_key``: dataset, teacher, learner, windows, seed) covers everything
        that shapes the base model, so runs that differ only in scheduler, cluster or profiler share
        it; a loaded model has exactly the trained one's weights, so the numbers do not change.
        """
        path, svc = self._base_cache_path(cam), self.retraining
        if path is not None and path.is_file():
            return svc.learner.load_model_state(torch.load(path, map_location="cpu", weights_only=True))
        model = svc.learner.base_model(svc.stream_set, svc.windows_of[cam][0], derive_seed(svc.seed, "base", cam))
        if path is not None:
            buf = io.BytesIO()
            torch.save(svc.learner.model_state(model), buf)
            atomic_write(path, buf.getvalue())
        return model

    def cached_base_models(self) -> list[str]:
        """The cameras whose base model ``runtime.base_cache`` holds already (setup loads these, trains the rest)."""
        return [cam for cam in self.streams if (path := self._base_cache_path(cam)) is not None and path.is_file()]

    def _base_cache_path(self, cam: str) -> Path | None:
        if self.base_cache is None:
            return None
        digest = hashlib.sha256(f"{self.base_key}|seed={self.retraining.seed}|camera={cam}".encode()).hexdigest()[:16]
        return self.base_cache / f"{cam}-{digest}.pt"

    def snapshot(self) -> Any:
        """Every camera's current and base models (descriptions, state dicts), the profiler's state, the matrices."""
        svc = self.retraining
        return {"models": {cam: svc.learner.model_state(m) for cam, m in self.models.items()},
                "base": {cam: svc.learner.model_state(m) for cam, m in self.base.items()},
                "profiler": svc.profiler.state(),
                "probes": self.probes.state() if self.probes is not None else None,
                "cache": self.model_store.state() if self.model_store is not None else None,
                "served_since": dict(svc.served_since)}

    def accuracy_matrices(self) -> dict[str, AccuracyMatrix] | None:
        """Each camera's probe-accuracy matrix so far; None with ``window.forgetting=false``."""
        return self.probes.matrices() if self.probes is not None else None

    def describe(self) -> dict[str, str]:
        """Tags: the runtime's, plus ``instrument`` (``none`` for the shipped system) so instrument runs stand apart."""
        return {**super().describe(), "instrument": self.instrument or "none"}

    # -- what the scheduler is told --------------------------------------------------------------

    def _told(self, k: int) -> tuple[list[StreamProfile], dict[str, float]]:
        """Profiles the scheduler plans with, and the micro-profiling cost spent per stream."""
        if self.instrument == "oracle":
            return self._oracle_told(k)
        svc = self.retraining
        out, spent, notes = [], {}, []
        preds = svc.profile_fleet(self.models, k) if self.scheduler.needs_profiles else {}
        for cam in self.streams:
            if self.scheduler.needs_profiles:
                pred = preds[cam]
                out.append(pred.profile)
                spent[cam] = pred.cost
                notes += pred.notes
            else:
                start = svc.val_accuracy(cam, self.models[cam], k)
                out.append(StreamProfile(cam, start, tuple(ConfigProfile(n, math.nan, math.nan) for n in svc.space)))
                spent[cam] = 0.0
            if self.model_store is not None:  # cached models as configs; measuring them is profiling work
                out[-1], cost = self.model_store.tell(cam, out[-1])
                spent[cam] += cost
        if notes:
            n = sum(len(p.configs) for p in out)
            log.warning("window %d: %d of %d micro-profiling fits fell back to the conservative estimate "
                        "(best accuracy observed); e.g. %s", k, len(notes), n, notes[0])
        return out, spent

    def _oracle_told(self, k: int) -> tuple[list[StreamProfile], dict[str, float]]:
        """The oracle's profiles: every config retrained for real on every camera, told as it really went; free.

        The models are kept for the window (``_oracle_jobs``): the job the plan picks is one of them.
        A config's ``val_accuracy`` is its live accuracy, so re-planning observes the truth as well.
        """
        svc = self.retraining
        self._oracle_jobs = {}
        out = []
        for cam in tqdm(self.streams, desc=f"oracle window {k}", unit="camera", leave=False, disable=None):
            start, start_segs = svc.live_accuracy(cam, self.models[cam], k)
            configs = []
            for name in svc.space:
                result = svc.retrain(cam, name, k, self.models[cam])
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

    def _window_budget(self, profiling_cost: float) -> Budget:
        """The budget left after micro-profiling: retraining waits for it, inference shares with it."""
        if profiling_cost <= 0:
            return self.budget
        profiler = self.retraining.profiler
        t = profiler.wall_seconds(profiling_cost, self.budget.accelerators, self.budget.train_rate)
        delay = min(self.budget.window, self.budget.label_delay + t)
        if delay >= self.budget.window:
            log.warning("micro-profiling takes %.1f s of the %.0f s window: no time is left to retrain",
                        t, self.budget.window)
        return dataclasses.replace(self.budget, label_delay=delay, profiling_seconds=delay - self.budget.label_delay,
                                   profiling_fraction=profiler.held_fraction(self.budget.accelerators))

    # -- one window --------------------------------------------------------------------------------

    def _reference(self, k: int) -> dict[str, float]:
        """Each camera's accuracy with its base model, no retraining and an even split of the accelerators."""
        base_truth = []
        for cam in self.streams:
            acc, segs = self.retraining.live_accuracy(cam, self.base[cam], k)
            base_truth.append(StreamProfile(cam, acc, (), segs))
        ref = NoRetrainScheduler()
        outcome = play_window(ref.plan(base_truth, self.budget), base_truth, self.budget, ref)
        return {cam: outcome.streams[cam].accuracy for cam in self.streams}

    def play(self, window: int) -> WindowResult:
        """Plan, retrain for real, and play one window on the virtual clock."""
        k, svc = window, self.retraining
        svc.start_window(self.models)
        if self.model_store is not None:
            self.model_store.start_window(k, self.base)
        told, spent = self._told(k)
        # under an instrument profiling is free: it neither delays retraining nor shares the accelerator
        budget = self._window_budget(0.0 if self.instrument is not None else sum(spent.values()))
        self.scheduler.start_window(k)
        t0 = time.perf_counter()
        plan = self.scheduler.plan(told, budget)
        sched_s = time.perf_counter() - t0
        truths, new_models, done_jobs, starts = self._run_jobs(k, plan)
        outcome = play_window(plan, truths, budget, self.scheduler, predicted=told,
                              checks=segment_boundaries(self.budget.window, svc.settings.segments))
        reference = self._reference(k)
        oracle = self.model_store.oracle(plan, truths, told, self.budget) if self.model_store is not None else {}

        records = []
        by_plan, told_of = plan.by_stream(), {p.stream: p for p in told}
        for cam in self.streams:
            sp, res = by_plan[cam], outcome.streams[cam]
            done = res.completion_time is not None
            if done:
                self.models[cam] = new_models[cam]
            if self.model_store is not None:
                self.model_store.went_live(cam, k, sp.config if done else None, self.models[cam])
            end_acc = done_jobs[cam].accuracy if done else starts[cam]
            if not svc.settings.carry_over:
                self.models[cam] = self.base[cam]
            pred_cost = told_of[cam].config(sp.config).cost if sp.config else math.nan
            records.append(WindowRecord(
                window=k, stream=cam, config=sp.config or "none", infer_share=sp.infer_share,
                train_share=sp.train_share, accuracy=res.accuracy,
                noretrain_accuracy=reference[cam], predicted_accuracy=sp.predicted_accuracy,
                start_accuracy=starts[cam], end_accuracy=end_acc,
                retrain_cost=done_jobs[cam].cost if cam in done_jobs else 0.0,
                completion_time=math.nan if res.completion_time is None else res.completion_time,
                scheduler_seconds=sched_s,
                predicted_cost=pred_cost, profiling_cost=spent[cam], oracle_accuracy=oracle.get(cam, math.nan),
            ))
        self._oracle_jobs = {}  # the window's other models are not needed any more
        if self.probes is not None:  # the model serving at the end of window k, before carry-over resets it
            self.probes.add_row(k, {cam: new_models[cam] if outcome.streams[cam].completion_time is not None
                                    else svc.window_start[cam] for cam in self.streams})
        self.note_served(k, records)
        return WindowResult(k, records, plan, told if self.scheduler.needs_profiles else [])

    def _run_jobs(self, k: int, plan: Plan) -> tuple[list[StreamProfile], dict[str, torch.nn.Module],
                                                     dict[str, ConfigProfile], dict[str, float]]:
        """Run the plan's jobs: the true profiles to play, the new models, what each job did, the start accuracies."""
        svc = self.retraining
        truths, new_models, done_jobs, starts = [], {}, {}, {}
        for sp in tqdm(plan.streams, desc=f"window {k}", unit="job", leave=False, disable=None):
            cam = sp.stream
            starts[cam], segs = svc.live_accuracy(cam, self.models[cam], k)
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
                result = svc.retrain(cam, sp.config, k, self.models[cam])
                new_models[cam], done_jobs[cam] = result.model, result.profile
            truths.append(StreamProfile(cam, starts[cam], (done_jobs[cam],), segs))
        return truths, new_models, done_jobs, starts
