"""The ray runtime: every camera's inference and retraining jobs run as Ray actors, on the wall clock.

Planning is emulate's, through the same parts: the run's ``RetrainingService`` (data, learner,
configs, seed; it scores and prices every job), its ``CameraModels`` (base models, serving models,
probes, snapshot), ``window_plan`` (what the scheduler is told, the budget left, the plan) and
``window_records`` (a record per camera), so the same scheduler objects are told the same things.
Execution is real: a window
of ``window.seconds`` of video plays in ``window_wall_seconds`` of wall time; each camera's
inference actor holds its planned share of an accelerator (a literal Ray request on the custom
resource ``ekya_<node>_acc<i>``) and classifies the window's frames as they arrive (the rule for
frames it cannot keep up with is in ``serving``); a retraining actor starts when the teacher's
labels are ready, runs ``learner.retrain`` at its share and returns the weights, which the
inference actor hot-swaps between batches. On every completion the scheduler re-plans. An
inference share that changes is changed in place on CPU (the actor's duty cycle, its booking
moving through share leases) and otherwise carried out by a replacement actor at the new share,
warmed before the frame feed moves to it, the old one retiring after its batch. A replacement on
CPU (and a restart) takes one of the node's ``spares``, inference processes started ahead with
no weights and no booking, so it does not wait for a process to import torch; under MPS the
percentage is fixed when a process starts, so there a replacement is a new process. A job not
finished by the window end does not count (as in emulate). Accuracy is what was really served.

Faults: a retraining actor that dies leaves its camera on the previous model (logged, counted in
the record's ``faults``); an inference actor that dies is restarted from the camera's last good
weights and the frames nobody served meanwhile are counted as lost. State between windows is
emulate's snapshot (the models, ``CameraModels.snapshot``), so a killed run resumes from its last
completed window. A job's end accuracy and cost are the service's (``RetrainingService.finish``), as
in emulate: its FLOPs at ``runtime.accelerator_gflops``, times ``runtime.cost_noise``'s factor.

The parts: this module is the controller (settings, set-up, close, a window from its plan to its
records); ``fleet`` owns the actors, leases, spares and weights; ``window_play`` plays one
window; ``lease``, ``placement``, ``serving``, ``share`` and ``timeline`` are the values they trade.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.execution.camera_models import CameraModels
from ekya.execution.ray.cluster import (
    CONNECT_TIMEOUT_S,
    Accelerator,
    Connection,
    accelerators_of,
    check_address,
    connect,
)
from ekya.execution.ray.fleet import Fleet, FleetSettings
from ekya.execution.ray.timeline import timeline_rows
from ekya.execution.ray.window_play import Feed, Finished, Played, PlaySettings, WindowPlay
from ekya.execution.retraining import RetrainingService, check_service_settings
from ekya.execution.runtime import Runtime, WindowResult, WindowSettings
from ekya.execution.window_plan import PlannedWindow, plan_window, told_profiles, window_budget
from ekya.execution.window_records import close_window, noretrain_accuracy, window_record
from ekya.learners.base import Learner
from ekya.plans.playback import check_plan
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.model_cache import cache_request
from ekya.plans.types import Budget
from ekya.profiles.microprofiler import MicroProfiler
from ekya.results.continual import AccuracyMatrix
from ekya.streams.samples import StreamSet
from ekya.waits import timeout_of

log = logging.getLogger("ekya.ray")

DEVICES = ("cpu", "cuda")
SHARE_CHANGES = ("auto", "replace")


def _accelerators(nodes: Mapping[str, int], budget: Budget) -> list[Accelerator]:
    """The accelerators ``runtime.nodes`` lists, as many as the budget plans on."""
    accs = accelerators_of(nodes)
    if len(accs) != budget.accelerators:
        raise EkyaError(f"cluster.accelerators={budget.accelerators} but runtime.nodes lists {len(accs)} "
                        f"accelerator(s); set cluster.accelerators={len(accs)}")
    return accs


@dataclass
class RayWindowResult(WindowResult):
    """A window's result plus what only a real run has: the per-segment timeline and its fault events."""

    timeline: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class RayRuntime(Runtime):
    """Continuous learning with real models, executed on the wall clock by Ray actors.

    It plans and records a window as emulate does, with the same parts (``RetrainingService``,
    ``CameraModels``, ``window_plan``, ``window_records``); the rest of the package sees only the
    fleet and the plan.
    """

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
        address: str | None = None,
        nodes: Mapping[str, int] | None = None,
        window_wall_seconds: float = 20.0,
        max_lag_seconds: float = 5.0,
        batch_size: int = 16,
        device: str = "cpu",
        num_cpus: int | None = None,
        object_store_mb: int = 256,
        ready_timeout: float = 120.0,
        poll_seconds: float = 0.1,
        spares: int = 2,
        share_change: str = "auto",
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.check_settings(window_wall_seconds=window_wall_seconds, max_lag_seconds=max_lag_seconds,
                            batch_size=batch_size, device=device, ready_timeout=ready_timeout,
                            poll_seconds=poll_seconds, nodes=nodes, spares=spares, share_change=share_change,
                            accelerator_gflops=accelerator_gflops, cost_noise=cost_noise)
        # the same service and models emulate builds: ray trains, scores and prices every job the same way
        self.retraining = RetrainingService.cut(
            stream_set=stream_set, learner=learner, space=space, profiler=profiler, window=window, windows=windows,
            seed=seed, gflops=accelerator_gflops, cost_noise=cost_noise)
        #: each camera's base and serving model, the base-model cache and the forgetting probes
        self.models = CameraModels.for_service(self.retraining, base_cache, base_key)
        self.scheduler, self.budget = scheduler, budget
        self.source, self.streams = stream_set.name, stream_set.cameras
        self.windows = list(range(1, len(next(iter(self.retraining.windows_of.values())))))
        self.address = None if address in (None, "") else str(address)
        self.connect_timeout = timeout_of("runtime.connect_timeout_s", connect_timeout_s)
        self.nodes = dict(nodes or {"local": 1})
        self.accelerators = _accelerators(self.nodes, budget)
        self.wall, self.device = float(window_wall_seconds), str(device)
        self.num_cpus, self.object_store_mb = num_cpus, int(object_store_mb)
        self.play_settings = PlaySettings(wall=self.wall, max_lag=float(max_lag_seconds), poll=float(poll_seconds),
                                          ready_timeout=float(ready_timeout))
        # spares hold no MPS percentage (fixed when a process starts), so they serve CPU shares only
        self.fleet = Fleet(self.accelerators, FleetSettings(
            device=self.device, batch_size=int(batch_size), ready_timeout=float(ready_timeout),
            spares=int(spares) if self.device == "cpu" else 0, share_change=str(share_change)),
            ship=self._learner_to_ship)
        self.conn: Connection | None = None
        #: measured figures of every window played: plan_to_running_seconds, swap_seconds, replace_seconds, ...
        self.stats: dict[str, list[float]] = {}

    @classmethod
    def check_settings(cls, *, window_wall_seconds: float = 20.0, max_lag_seconds: float = 5.0,
                       batch_size: int = 16, device: str = "cpu", ready_timeout: float = 120.0,
                       poll_seconds: float = 0.1, nodes: Mapping[str, int] | None = None, spares: int = 2,
                       share_change: str = "auto", address: str | None = None,
                       connect_timeout_s: float = CONNECT_TIMEOUT_S, **rest: Any) -> None:
        """The ray runtime's own keys (and the retraining service's) must be in range."""
        check_service_settings(**{k: v for k, v in rest.items() if k in ("accelerator_gflops", "cost_noise")})
        for key, value in (("window_wall_seconds", window_wall_seconds), ("ready_timeout", ready_timeout),
                           ("poll_seconds", poll_seconds)):
            if not (float(value) > 0 and math.isfinite(float(value))):
                raise EkyaError(f"runtime.{key} must be a number of seconds > 0, got {value!r}")
        if not (float(max_lag_seconds) >= 0 and math.isfinite(float(max_lag_seconds))):
            raise EkyaError(f"runtime.max_lag_seconds must be >= 0 (dataset seconds), got {max_lag_seconds!r}")
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or int(batch_size) < 1:
            raise EkyaError(f"runtime.batch_size must be an integer >= 1, got {batch_size!r}")
        if isinstance(spares, bool) or int(spares) != spares or int(spares) < 0:
            raise EkyaError(f"runtime.spares must be an integer >= 0 (inference processes kept started per node), "
                            f"got {spares!r}")
        if str(share_change) not in SHARE_CHANGES:
            raise EkyaError(f"runtime.share_change={share_change!r}: use 'auto' (in place on CPU, a replacement actor "
                            "on GPUs) or 'replace' (always a replacement actor)")
        if str(device) not in DEVICES:
            raise EkyaError(f"runtime.device={device!r}: use 'cpu' (logical accelerators, duty cycle) or 'cuda' (MPS)")
        if nodes is not None:
            accelerators_of(dict(nodes))
        timeout = timeout_of("runtime.connect_timeout_s", connect_timeout_s)
        if address not in (None, ""):  # last and bounded: a cluster that does not answer fails before any data
            check_address("runtime.address", str(address), timeout)

    def describe(self) -> dict[str, str]:
        """Tags: the runtime's, emulate's ``instrument`` (ray runs are the shipped system), where the run executed."""
        return {**super().describe(), "instrument": "none", "ray_address": self.address or "local",
                "ray_device": self.device}

    # -- the run ------------------------------------------------------------------------------------

    def setup(self, saved: Any | None) -> None:
        """Base models as in emulate, then the Ray cluster and its accelerators."""
        self._refuse_model_cache()
        self.conn = connect(self.address, self.nodes, self.num_cpus, self.object_store_mb, self.connect_timeout)
        self.fleet.fill_spares()  # their processes start while the base models train
        self.models.setup(saved)
        self.budget = self.models.keep_up_budget(self.budget)
        self.fleet.weights = {cam: self._weights_of(m) for cam, m in self.models.serving.items()}

    def cached_base_models(self) -> list[str]:
        """The cameras whose base model ``runtime.base_cache`` holds already (setup loads these, trains the rest)."""
        return self.models.cached_base_models()

    def snapshot(self) -> Any:
        """Emulate's snapshot: every camera's current and base models, the profiler's state, the matrices."""
        return {**self.models.snapshot(), "cache": None}

    def accuracy_matrices(self) -> dict[str, AccuracyMatrix] | None:
        """Each camera's probe-accuracy matrix so far; None with ``window.forgetting=false``."""
        return self.models.accuracy_matrices()

    def play(self, window: int) -> RayWindowResult:
        """Plan as emulate does, then run the window on the wall clock (the loop calls ``close`` at the end)."""
        k, svc = window, self.retraining
        svc.start_window(self.models.serving)
        told, spent = told_profiles(svc, self.scheduler, self.models.serving, None, k)
        budget = window_budget(self.budget, svc.profiler, sum(spent.values()))
        budget, gone = self._on_the_accelerators_left(k, budget)
        planned = plan_window(self.scheduler, k, told, spent, budget)
        check_plan(planned.plan, budget, self.scheduler.name)
        feeds = {cam: self._feed(cam, k) for cam in self.streams}
        played = WindowPlay(k, self.fleet, self.scheduler, planned.plan, told, budget, feeds, self.play_settings,
                            lambda: self._job_inputs(k), gone).run()
        for key, values in played.stats.items():
            self.stats.setdefault(key, []).extend(values)
        self.fleet.fill_spares()  # the ones this window took, started while the records are computed
        return self._result(planned, feeds, played)

    def _on_the_accelerators_left(self, k: int, budget: Budget) -> tuple[Budget, list[str]]:
        """A node that left the cluster takes its accelerators with it: the budget of those left, and those gone."""
        self.fleet.poll()
        alive = [a for a in self.accelerators if self.fleet.alive(a)]
        if not alive:
            raise EkyaError(f"window {k}: none of runtime.nodes' accelerators "
                            f"({', '.join(a.resource for a in self.accelerators)}) is in the Ray cluster any more; "
                            "restart those nodes (ray start ... --resources) and resume the run")
        gone = [a.resource for a in self.accelerators if a not in alive]
        if gone:
            log.warning("window %d: accelerator(s) %s left the cluster; planning on the %d left", k, gone, len(alive))
            budget = dataclasses.replace(budget, accelerators=len(alive))
        self.fleet.plan_accs = alive
        return budget, gone

    def close(self) -> None:
        """Stop every actor of this runtime (and Ray, if this process started it)."""
        self.fleet.close()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- the models, the data and the records -------------------------------------------------------

    def _refuse_model_cache(self) -> None:
        """Cached models (``ekya.execution.model_store``) are emulate's; runtime=ray does not run them."""
        if cache_request(self.scheduler) is not None:
            raise EkyaError(f"scheduler {self.scheduler.name!r} switches to cached models, which runtime=ray does "
                            "not run yet; use runtime=emulate for it")

    def _learner_to_ship(self) -> Any:
        """The learner as actors get it: the driver's decoded crops stay here (a job decodes its own pool)."""
        return self.retraining.learner.without_crops()

    def _feed(self, cam: str, k: int) -> Feed:
        """The window's live frames of a camera (uint8 crops, in time order), their targets and timestamps."""
        svc = self.retraining
        test = svc.windows_of[cam][k].test.sort_values("timestamp", kind="stable")
        if len(test):
            images = svc.learner.crops(svc.stream_set).images(test).numpy()
        else:
            images = np.zeros((0, 3, 1, 1), np.uint8)
        label, teacher = test["label"].to_numpy(), test["teacher_label"].to_numpy()
        return Feed(images, np.where(label >= 0, label, teacher), test["timestamp"].to_numpy(dtype=float))

    def _job_inputs(self, k: int) -> dict[str, tuple[Any, ...]]:
        """What each planned retraining job is called with: its pool, and the pool's decoded crops.

        The data moves explicitly: the controller decodes every crop the job reads (its pool and
        its model's memory, as ``learner.job_rows`` lists them) and ships them through the object
        store with the call, so a job on another node needs no copy of the dataset.
        """
        import ray

        svc = self.retraining
        learner_ref, data_ref = self.fleet.shipped_learner(), ray.put(svc.stream_set)
        out = {}
        for cam, running in self.fleet.jobs.items():
            job = svc.job(cam, running.config, k)
            rows = svc.learner.job_rows(self.models.serving[cam], job.train, job.val)
            crops = ray.put(svc.learner.crops(svc.stream_set).pack(rows))
            out[cam] = (learner_ref, self.fleet.weights[cam], job.settings, job.train, job.val, data_ref, job.seed,
                        crops)
        return out

    def _result(self, planned: PlannedWindow, feeds: dict[str, Feed], played: Played) -> RayWindowResult:
        """The window's records (as emulate makes them) on what really happened; the models move on with the jobs."""
        k, svc, models = planned.k, self.retraining, self.models
        reference = noretrain_accuracy(svc, models.base, self.budget, k)
        records, rows, end_models = [], [], {}
        for cam in self.streams:
            done, frames = played.done.get(cam), played.logs[cam]
            start_acc, _ = svc.live_accuracy(cam, models.serving[cam], k)
            end_acc, cost = self._take_job(cam, planned, done, start_acc)
            end_models[cam] = models.serving[cam]
            self._carry_over(cam)
            counts = frames.counts()
            finished = done is not None and done.weights is not None
            records.append(window_record(
                planned, cam, accuracy=frames.accuracy(feeds[cam].targets), noretrain=reference[cam],
                start=start_acc, end=end_acc, cost=cost,
                completion=done.completion_time if done is not None and finished else math.nan,
                frames_classified=counts["classified"], frames_skipped=counts["skipped"],
                frames_lost=counts["lost"], infer_fps=counts["classified"] / self.wall,
                job_wall_seconds=done.job_seconds if done is not None else math.nan, faults=played.faults[cam]))
            rows += timeline_rows(k, cam, played.timeline[cam], planned.budget.window)
        close_window(models, k, end_models, records, self.budget)
        return RayWindowResult(k, records, planned.plan, planned.told if self.scheduler.needs_profiles else [],
                               timeline=rows, events=[e.as_dict() for e in played.events])

    def _take_job(self, cam: str, planned: PlannedWindow, done: Finished | None,
                  start_acc: float) -> tuple[float, float]:
        """A finished job's model becomes the camera's: its live accuracy at the window end and its cost.

        The service scores and prices it as it does a job trained in emulate (``runtime.cost_noise`` included).
        """
        if done is None or done.weights is None:
            return start_acc, 0.0
        from ekya.execution.ray import actors

        svc = self.retraining
        model = svc.learner.load_model_state(actors.torch_state(done.weights))
        self.models.serving[cam] = model
        config = planned.plan.by_stream()[cam].config
        assert config is not None, f"{cam}: a job finished that the plan did not start"
        result = svc.finish(svc.job(cam, config, planned.k), model, done.report)
        return result.profile.accuracy, result.cost

    def _carry_over(self, cam: str) -> None:
        """Without ``window.carry_over`` every camera starts the next window from its base model."""
        self.models.carry_over(cam)
        if not self.retraining.settings.carry_over:
            self.fleet.weights[cam] = self._weights_of(self.models.base[cam])

    def _weights_of(self, model: Any) -> dict[str, Any]:
        """A model as the actors get it (numpy weights)."""
        from ekya.execution.ray import actors

        return actors.numpy_state(self.retraining.learner.model_state(model))
