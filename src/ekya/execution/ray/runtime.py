"""The ray runtime: every camera's inference and retraining jobs run as Ray actors, on the wall clock.

Planning is emulate's (this class extends ``EmulateRuntime``): the same base models, the same
micro-profiler and the same scheduler objects, told the same things. Execution is real: a window
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
emulate's snapshot (the models), so a killed run resumes from its last completed window.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ekya.errors import EkyaError
from ekya.execution.emulate import EmulateRuntime, accelerator_seconds
from ekya.execution.ray.cluster import (
    CONNECT_TIMEOUT_S,
    Accelerator,
    Connection,
    accelerators_of,
    check_address,
    connect,
)
from ekya.execution.ray.placement import Ledger, ray_quantity
from ekya.execution.ray.serving import FrameLog, arrival_walls
from ekya.execution.runtime import WindowResult, WindowSettings
from ekya.learners.base import Learner
from ekya.plans.playback import check_plan
from ekya.plans.quanta import EPS
from ekya.plans.scheduler import Scheduler, StreamState, WindowState
from ekya.plans.types import Budget
from ekya.profiles.microprofiler import MicroProfiler
from ekya.profiles.types import RetrainConfig
from ekya.seeds import derive_seed
from ekya.streams.samples import StreamSet
from ekya.waits import timeout_of

log = logging.getLogger("ekya.ray")

DEVICES = ("cpu", "cuda")
SHARE_CHANGES = ("auto", "replace")


@dataclass
class RayWindowResult(WindowResult):
    """A window's result plus what only a real run has: the per-segment timeline and its fault events."""

    timeline: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Lease:
    """A share lease (``lease.ShareLease``, a placement group).

    It holds the part of a camera's inference share above its actor's own booking.
    """

    handle: Any
    job: str
    share: float


@dataclass
class _Server:
    """A camera's live inference actor: its handle, bookings, the share it holds, model version and serve call.

    ``base`` is what the actor itself booked when it started; a CPU share changed in place keeps the
    rest (``share - base``) booked by ``leases``.
    """

    handle: Any
    acc: Accelerator
    share: float
    job: str
    version: int
    serving: Any = None
    base: float = math.nan
    leases: list[_Lease] = field(default_factory=list)
    #: what must answer before it may serve (job -> actor handle or call ref): a new process, or a
    #: spare's ``adopt`` and its lease
    waits: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if math.isnan(self.base):
            self.base = self.share


@dataclass
class _Job:
    """A camera's retraining job in this window."""

    handle: Any
    acc: Accelerator
    share: float
    job: str
    config: str
    ref: Any = None
    started: float = math.nan


class RayRuntime(EmulateRuntime):
    """Continuous learning with real models, executed on the wall clock by Ray actors."""

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
        super().__init__(stream_set=stream_set, learner=learner, scheduler=scheduler, profiler=profiler, space=space,
                         budget=budget, window=window, windows=windows, seed=seed, base_key=base_key,
                         accelerator_gflops=accelerator_gflops, cost_noise=cost_noise, base_cache=base_cache)
        self.check_settings(window_wall_seconds=window_wall_seconds, max_lag_seconds=max_lag_seconds,
                            batch_size=batch_size, device=device, ready_timeout=ready_timeout,
                            poll_seconds=poll_seconds, nodes=nodes, spares=spares, share_change=share_change)
        self.address = None if address in (None, "") else str(address)
        self.connect_timeout = timeout_of("runtime.connect_timeout_s", connect_timeout_s)
        self.nodes = dict(nodes or {"local": 1})
        self.accelerators = accelerators_of(self.nodes)
        if len(self.accelerators) != budget.accelerators:
            n = len(self.accelerators)
            raise EkyaError(f"cluster.accelerators={budget.accelerators} but runtime.nodes lists {n} accelerator(s); "
                            f"set cluster.accelerators={n}")
        self.wall, self.max_lag, self.batch_size = float(window_wall_seconds), float(max_lag_seconds), int(batch_size)
        self.device, self.num_cpus, self.object_store_mb = str(device), num_cpus, int(object_store_mb)
        self.ready_timeout, self.poll = float(ready_timeout), float(poll_seconds)
        # spares hold no MPS percentage (fixed when a process starts), so they serve CPU shares only
        self.spares, self.share_change = (int(spares) if self.device == "cpu" else 0), str(share_change)
        self._spares: dict[str, list[tuple[Any, Any]]] = {}  # node -> [(spare handle, its ready ref)]
        self._leases: dict[str, _Lease] = {}  # every lease not yet ended, by job name
        self.conn: Connection | None = None
        self.ledger = Ledger(self.accelerators)
        self.servers: dict[str, _Server] = {}
        self.jobs: dict[str, _Job] = {}
        self.weights: dict[str, Any] = {}
        self._generation = 0
        #: where each actor ran (job name -> {"pid", "node"}), for logs and tests
        self.placed: dict[str, dict[str, Any]] = {}
        #: measured figures of every window played: plan_to_running_seconds, swap_seconds, replace_seconds
        self.stats: dict[str, list[float]] = {}

    @classmethod
    def check_settings(cls, *, window_wall_seconds: float = 20.0, max_lag_seconds: float = 5.0,
                       batch_size: int = 16, device: str = "cpu", ready_timeout: float = 120.0,
                       poll_seconds: float = 0.1, nodes: Mapping[str, int] | None = None, spares: int = 2,
                       share_change: str = "auto", address: str | None = None,
                       connect_timeout_s: float = CONNECT_TIMEOUT_S, **rest: Any) -> None:
        """The ray runtime's own keys (and emulate's) must be in range."""
        super().check_settings(**{k: v for k, v in rest.items() if k in ("accelerator_gflops", "cost_noise")})
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
        """Tags: emulate's plus where the run executed."""
        return {**super().describe(), "ray_address": self.address or "local", "ray_device": self.device}

    # -- cluster and actors ------------------------------------------------------------------------

    def setup(self, saved: Any | None) -> None:
        """Base models as in emulate, then the Ray cluster and its accelerators."""
        if getattr(self, "model_cache", None) is not None:
            raise EkyaError(f"scheduler {self.scheduler.name!r} switches to cached models, which runtime=ray does "
                            "not run yet; use runtime=emulate for it")
        self.conn = connect(self.address, self.nodes, self.num_cpus, self.object_store_mb, self.connect_timeout)
        from ekya.execution.ray import actors, lease

        self._actors, self._lease = actors, lease
        self._fill_spares()  # their processes start while the base models train
        super().setup(saved)
        self.weights = {cam: actors.numpy_state(self.learner.model_state(m)) for cam, m in self.models.items()}

    def _plan_acc(self, index: int | None, job: str) -> Accelerator:
        """The accelerator a plan's device index names: the index-th of those still in the cluster."""
        return Ledger(getattr(self, "_plan_accs", self.accelerators)).accelerator(index, job)

    def _node_alive(self, acc: Accelerator) -> bool:
        """Whether the node holding ``acc``'s resource is alive in the Ray cluster."""
        from ekya.execution.ray.cluster import node_of_resource

        return node_of_resource(acc.resource) is not None

    def _room(self, share: float, exclude: Accelerator | None = None) -> Accelerator | None:
        """An accelerator still in the cluster with ``share`` free in the ledger (the least loaded), or None."""
        fits = [a for a in self.accelerators if a != exclude and self._node_alive(a)
                and self.ledger.load(a.index) + ray_quantity(share) <= 1.0 + 1e-9]
        return min(fits, key=lambda a: (self.ledger.load(a.index), a.index)) if fits else None

    def _options(self, acc: Accelerator, job: str, share: float) -> dict[str, Any]:
        opts = self.ledger.book(acc, job, share)
        if self.device == "cuda":
            from ekya.execution.ray.share import gpu_env, mps_dirs

            opts["runtime_env"] = {"env_vars": gpu_env(share, acc.local_index, mps_dirs().pipe)}
        return opts

    @staticmethod
    def _ready_ref(waited: Any) -> Any:
        """What to wait on for an actor handle (its ``ready``) or for a call already made (its ref)."""
        import ray

        return waited if isinstance(waited, ray.ObjectRef) else waited.ready.remote()

    def _ready(self, handles: dict[str, Any], what: str) -> None:
        """Wait until every actor (or call) answers and every lease is granted.

        A clear error when Ray cannot do so in ``ready_timeout``.
        """
        import ray

        leases = {name: h for name, h in handles.items() if isinstance(h, self._lease.ShareLease)}
        refs = {name: self._ready_ref(h) for name, h in handles.items() if name not in leases}
        for name, held in leases.items():
            if not held.granted(self.ready_timeout):
                raise EkyaError(f"{what}: Ray could not reserve {held.quantity:g} of {held.resource} for {name} within "
                                f"runtime.ready_timeout={self.ready_timeout:g}s; free resources now: "
                                f"{ray.available_resources()}; another job may hold the accelerator")
            self.placed[name] = held.where()
        ready, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=self.ready_timeout)
        if pending:
            name = next(n for n, r in refs.items() if r in pending)
            raise EkyaError(f"{what}: Ray could not start {name} within runtime.ready_timeout={self.ready_timeout:g}s; "
                            f"free resources now: {ray.available_resources()}; another job may hold the accelerator")
        for name, ref in refs.items():
            self.placed[name] = ray.get(ref)

    def _new_server(self, cam: str, acc: Accelerator, share: float, spare: bool = False) -> _Server:
        """A camera's new inference actor at ``share`` of ``acc``.

        With ``spare``, a spare of that node if any, else a new process.

        On CPU an inference process books nothing itself: it is placed on its accelerator's node
        and its whole share is a lease, granted before it serves, so it can change share in place
        and, once retired, wait as a spare for the next camera. Spares are taken for changes while
        a window plays (replacements, restarts), where a process start would cost served frames; a
        window's first actors start before its clock does. A spare still starting is taken too (it
        is ahead of a new process); its weights and share are set by its ``adopt``, which answers
        as ``ready`` does once it has them (``waits``). On GPUs the process books its share (MPS
        fixes its percentage when it starts).
        """
        self._generation += 1
        job = f"{cam}/infer#{self._generation}"
        if self.device == "cpu":
            taken = self._take_spare(acc) if spare else None
            handle = taken if taken is not None else self._start_inference(acc)
            try:
                lease = self._new_lease(cam, acc, share)  # refuses an over-commitment before anything changes
            except EkyaError:
                self._spares.setdefault(acc.node, []).insert(0, (handle, handle.ready.remote()))
                raise
            adopted = handle.adopt.remote(self.weights[cam], self._version(cam), share)
            return _Server(handle, acc, share, job, self._version(cam), base=0.0, leases=[lease],
                           waits={job: adopted, lease.job: lease.handle})
        opts = self._options(acc, job, share)
        # @ray.remote gives the actor classes .options; mypy types a decorated class as the class itself
        handle = self._actors.InferenceActor.options(**opts).remote(  # type: ignore[attr-defined]
            self._shipped_learner(), self.weights[cam], self._version(cam), share, self.batch_size,
            self.device == "cpu")
        return _Server(handle, acc, share, job, self._version(cam), waits={job: handle})

    @staticmethod
    def _ray() -> Any:
        import ray

        return ray

    def _node_id(self, acc: Accelerator) -> str | None:
        from ekya.execution.ray.cluster import node_of_resource

        node = node_of_resource(acc.resource)
        return None if node is None else str(node["NodeID"])

    def _fill_spares(self) -> None:
        """Start spares until every node still in the cluster has ``runtime.spares`` (not waiting for them).

        Called before the first window and after each one, never while a window plays: a process
        start there would take the CPU the window's jobs are running on.
        """
        if self.spares <= 0:
            return
        for acc in self.accelerators:
            pool = self._spares.setdefault(acc.node, [])
            while len(pool) < self.spares and self._node_alive(acc):
                handle = self._start_inference(acc)
                pool.append((handle, handle.ready.remote()))

    def _start_inference(self, acc: Accelerator) -> Any:
        """A CPU inference process with no weights and no booking, on the node of ``acc`` (it does not wait for it)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_id = self._node_id(acc)
        if node_id is None:
            raise EkyaError(f"accelerator {acc.resource} is not in the Ray cluster: its node left; resume the run "
                            "once it is back, or drop it from runtime.nodes")
        # @ray.remote gives the actor classes .options; mypy types a decorated class as the class itself
        return self._actors.InferenceActor.options(  # type: ignore[attr-defined]
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(
            self._shipped_learner(), None, -1, 1.0, self.batch_size, True)

    def _take_spare(self, acc: Accelerator) -> Any | None:
        """A spare of ``acc``'s node: one already up if any, else the one started first; None when there is none."""
        ray_ = self._ray()
        pool = self._spares.get(acc.node, [])
        if not pool:
            return None
        up = [i for i, (_, ref) in enumerate(pool) if ray_.wait([ref], timeout=0)[0]]
        handle, ref = pool.pop(up[0] if up else 0)
        if up:
            try:
                ray_.get(ref)
            except ray_.exceptions.RayActorError:
                return self._take_spare(acc)  # it died idle: try the next
        return handle

    def _stop_spares(self) -> None:
        """End every spare (they do no work: gracefully, not waiting for those still starting)."""
        for pool in self._spares.values():
            for handle, _ in pool:
                handle.retire.remote()
        self._spares = {}

    def _in_place(self, server: _Server, share: float) -> bool:
        """Whether a share change of this actor can be made in place: CPU (a duty cycle), not below its own booking."""
        return self.device == "cpu" and self.share_change == "auto" and share >= server.base - EPS

    def _version(self, cam: str) -> int:
        return int(self.weights[cam].get("version", 0)) if isinstance(self.weights.get(cam), dict) else 0

    def _retire(self, server: _Server) -> None:
        """Free an idle or handed-off inference actor's bookings.

        Keep it as a spare if its node wants one, else end it gracefully.
        """
        import ray

        pool = self._spares.setdefault(server.acc.node, [])
        if self.device == "cpu" and server.base <= 0.0 and len(pool) < self.spares:
            self.ledger.release(server.acc, server.job)
            self._drop_leases(server)  # it serves nothing now: its share goes back at once
            pool.append((server.handle, server.handle.ready.remote()))
            return
        ref = server.handle.retire.remote()
        try:
            ray.get(ref, timeout=self.ready_timeout)
        except ray.exceptions.RayActorError:
            pass  # it exited, as asked
        self.ledger.release(server.acc, server.job)
        self._drop_leases(server)

    def _new_lease(self, cam: str, acc: Accelerator, share: float) -> _Lease:
        """Ask Ray for a lease of ``share`` of ``acc`` (booked in the ledger first)."""
        self._generation += 1
        job = f"{cam}/lease#{self._generation}"
        opts = self.ledger.book(acc, job, share)
        lease = _Lease(self._lease.ShareLease.request(acc.resource, opts["resources"][acc.resource]), job, share)
        self._leases[job] = lease  # so that close frees it whatever interrupted the run
        return lease

    def _end_lease(self, acc: Accelerator, lease: _Lease) -> None:
        """End a lease (it runs no work) and free its booking."""
        lease.handle.end()
        self._leases.pop(lease.job, None)
        self.ledger.release(acc, lease.job)

    def _drop_leases(self, server: _Server) -> None:
        """Free every lease of an inference actor (once the actor no longer uses what they hold)."""
        for lease in server.leases:
            self._end_lease(server.acc, lease)
        server.leases = []

    def _end_job(self, job: _Job, running: bool) -> None:
        """Free a retraining actor: gracefully when its job returned; a job still running is stopped."""
        import ray

        if running:
            if self.device == "cuda":
                # never signal-kill an MPS client with GPU work in flight: let the job end, discard it
                try:
                    ray.get(job.ref)
                except ray.exceptions.RayError:
                    pass
                job.handle.__ray_terminate__.remote()
            else:
                ray.kill(job.handle, no_restart=True)
        else:
            job.handle.__ray_terminate__.remote()
        self._wait_gone(job.handle)
        self.ledger.release(job.acc, job.job)

    def _wait_gone(self, handle: Any) -> None:
        import ray

        deadline = time.time() + self.ready_timeout
        while time.time() < deadline:
            try:
                ray.get(handle.ready.remote(), timeout=self.ready_timeout)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                return
            time.sleep(0.05)

    def close(self) -> None:
        """Stop every actor of this runtime (and Ray, if this process started it)."""
        import ray

        for job in list(self.jobs.values()):
            if self.device != "cuda":
                ray.kill(job.handle, no_restart=True)
            self.ledger.release(job.acc, job.job)
        self.jobs = {}
        self._learner_ref: Any = None  # owned by this driver's Ray session, which may end below
        for server in list(self.servers.values()):
            try:
                ray.get(server.handle.retire.remote(), timeout=self.ready_timeout)
            except ray.exceptions.RayError:
                pass
            self.ledger.release(server.acc, server.job)
            self._drop_leases(server)
        self.servers = {}
        for lease in list(self._leases.values()):  # leases a change in flight had asked for
            lease.handle.end()
        self._leases = {}
        if self._spares:
            self._stop_spares()
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- one window ----------------------------------------------------------------------------------

    def play(self, window: int) -> RayWindowResult:
        """Plan as emulate does, then run the window on the wall clock (the loop calls ``close`` at the end)."""
        return self._play(window)

    def _feed(self, cam: str, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The window's live frames of a camera (uint8 crops, in time order), their targets and timestamps."""
        test = self.windows_of[cam][k].test.sort_values("timestamp", kind="stable")
        if len(test):
            # the learners this runtime ships (FinetuneLearner's family) have crops; the Learner ABC does not say it
            images = self.learner.crops(self.stream_set).images(test).numpy()  # type: ignore[attr-defined]
        else:
            images = np.zeros((0, 3, 1, 1), np.uint8)
        label, teacher = test["label"].to_numpy(), test["teacher_label"].to_numpy()
        return images, np.where(label >= 0, label, teacher), test["timestamp"].to_numpy(dtype=float)

    def _play(self, k: int) -> RayWindowResult:  # noqa: C901, PLR0915 - 440 lines, to be split into a class of its own
        import ray

        self.models_at_start = dict(self.models)
        told, spent = self._told(k)
        budget = self._window_budget(sum(spent.values()))
        # a node that left the cluster takes its accelerators with it: plan on what is still there
        alive = [a for a in self.accelerators if self._node_alive(a)]
        if not alive:
            raise EkyaError(f"window {k}: none of runtime.nodes' accelerators "
                            f"({', '.join(a.resource for a in self.accelerators)}) is in the Ray cluster any more; "
                            "restart those nodes (ray start ... --resources) and resume the run")
        gone = [a.resource for a in self.accelerators if a not in alive]
        if gone:
            log.warning("window %d: accelerator(s) %s left the cluster; planning on the %d left", k, gone, len(alive))
            budget = dataclasses.replace(budget, accelerators=len(alive))
        self._plan_accs = alive
        self.scheduler.start_window(k)
        t0 = time.perf_counter()
        plan = self.scheduler.plan(told, budget)
        sched_s = time.perf_counter() - t0
        check_plan(plan, budget, self.scheduler.name)
        T, scale = budget.window, self.wall / budget.window
        by_plan = plan.by_stream()
        stats: dict[str, list[float]] = {"swap_seconds": [], "replace_seconds": [], "lease_seconds": []}
        events: list[dict[str, Any]] = []
        if gone:
            events.append({"window": k, "stream": None, "time": 0.0, "event": "accelerators_lost",
                           "accelerators": gone})
        faults = {cam: 0 for cam in self.streams}

        # the frames move to wherever the camera's inference runs through the object store (owned here)
        feeds = {cam: self._feed(cam, k) for cam in self.streams}
        frame_refs = {cam: ray.put(feeds[cam][0]) for cam in self.streams}
        logs = {cam: FrameLog.empty(len(feeds[cam][1])) for cam in self.streams}

        t_plan = time.perf_counter()
        for cam, server in list(self.servers.items()):  # an actor that died between windows is replaced
            try:
                ray.get(server.handle.ready.remote(), timeout=self.ready_timeout)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
                faults[cam] += 1
                events.append({"window": k, "stream": cam, "time": 0.0, "event": "inference_restarted",
                               "why": type(e).__name__, "frames_lost": 0})
                self.ledger.release(server.acc, server.job)
                self._drop_leases(server)
                del self.servers[cam]
        # inference actors: kept when the plan keeps their accelerator and share, resized in place
        # when it keeps the accelerator and the actor can (CPU), else replaced
        resize: dict[str, float] = {}
        for cam in self.streams:
            sp, old = by_plan[cam], self.servers.get(cam)
            acc = self._plan_acc(sp.infer_device, f"{cam}/infer") if sp.infer_share > EPS else None
            if old is not None and (acc is None or old.acc != acc or abs(old.share - sp.infer_share) > EPS):
                if acc is not None and old.acc == acc and self._in_place(old, sp.infer_share):
                    self._drop_leases(old)  # idle between windows: its duty cycle is set before it serves
                    old.share = old.base
                    resize[cam] = float(sp.infer_share)
                else:
                    self._retire(old)
                    del self.servers[cam]
        resized = {}
        for cam, share in resize.items():  # booked once every shrink and retirement has freed its room
            server = self.servers[cam]
            if share - server.base > EPS:
                lease = self._new_lease(cam, server.acc, share - server.base)
                server.leases.append(lease)
                resized[lease.job] = lease.handle
            ray.get(server.handle.set_share.remote(share))
            server.share = share
        fresh = {}
        for cam in self.streams:
            sp = by_plan[cam]
            if sp.infer_share > EPS and cam not in self.servers:
                acc = self._plan_acc(sp.infer_device, f"{cam}/infer")
                self.servers[cam] = fresh[cam] = self._new_server(cam, acc, sp.infer_share)
        for cam in self.streams:
            sp = by_plan[cam]
            if sp.config is not None and sp.train_share > EPS:
                acc = self._plan_acc(sp.train_device, f"{cam}/train")
                job_name = f"{cam}/train#{k}"
                opts = self._options(acc, job_name, sp.train_share)
                # @ray.remote gives the actor classes .options; mypy types a decorated class as the class itself
                handle = self._actors.RetrainActor.options(**opts).remote(  # type: ignore[attr-defined]
                    sp.train_share, self.device == "cpu", self._shipped_learner())
                self.jobs[cam] = _Job(handle, acc, sp.train_share, job_name, sp.config)
        self._ready({**{n: h for s in fresh.values() for n, h in s.waits.items()}, **resized,
                     **{j.job: j.handle for j in self.jobs.values()}}, f"window {k}")
        ray.get([s.handle.warm.remote(frame_refs[c]) for c, s in fresh.items() if len(feeds[c][1])])
        stats["plan_to_running_seconds"] = [time.perf_counter() - t_plan]

        wall0 = time.time() + 0.1
        wall_end = wall0 + self.wall
        arrivals = {cam: arrival_walls(feeds[cam][2], k * T, T, self.wall, wall0) for cam in self.streams}
        lag = self.max_lag * scale
        for cam, server in self.servers.items():
            if server.version != self._version(cam):  # the camera's model changed between windows
                ray.get(server.handle.update_weights.remote(self.weights[cam], self._version(cam)))
                server.version = self._version(cam)
            server.serving = server.handle.serve.remote(frame_refs[cam], arrivals[cam], 0, -1, lag)
        shares = {cam: (by_plan[cam].infer_share, by_plan[cam].train_share if cam in self.jobs else 0.0)
                  for cam in self.streams}
        effective = dict(shares)  # the shares really held (a change takes effect when its actor serves)
        timeline = {cam: [(0.0, shares[cam][0], shares[cam][1], self._version(cam))] for cam in self.streams}
        done: dict[str, tuple[Any, Any, float, float]] = {}
        seen = {p.stream: p.start_accuracy for p in told}
        t_label = wall0 + min(budget.label_delay, T) * scale
        launched = False
        serve_done: set[str] = set(c for c in self.streams if c not in self.servers)
        train_args = self._train_args(k)

        def now_ds() -> float:
            return (time.time() - wall0) / scale

        def restart(cam: str, why: str) -> None:
            """An inference actor died: a new one from the last good weights; frames nobody served are lost."""
            old = self.servers[cam]
            self.ledger.release(old.acc, old.job)
            self._drop_leases(old)  # the new actor books the whole share itself
            faults[cam] += 1
            first = logs[cam].first_unserved()
            acc = old.acc
            if not self._node_alive(acc):  # its node left the cluster: re-place it where its share still fits
                room = self._room(old.share, exclude=old.acc)
                if room is None:
                    del self.servers[cam]
                    serve_done.add(cam)
                    unplaced.add(cam)
                    lost = logs[cam].mark_lost(first, len(arrivals[cam]))
                    effective[cam] = (0.0, effective[cam][1])
                    mark(cam)
                    events.append({"window": k, "stream": cam, "time": now_ds(), "event": "inference_unplaced",
                                   "why": f"{old.acc.resource} left the cluster ({why}) and no accelerator left has "
                                          f"{old.share:g} free", "frames_lost": lost})
                    log.warning("window %d: %s's accelerator %s left the cluster and no other has room for its "
                                "share %g: its %d remaining frame(s) are lost this window", k, cam,
                                old.acc.resource, old.share, lost)
                    return
                acc = room
                events.append({"window": k, "stream": cam, "time": now_ds(), "event": "inference_moved",
                               "from": old.acc.resource, "to": acc.resource})
            new = self._new_server(cam, acc, old.share, spare=True)
            self._ready(new.waits, f"window {k}: restarting {cam}'s inference")
            if len(feeds[cam][1]):
                ray.get(new.handle.warm.remote(frame_refs[cam]))
            start = max(first, int(np.searchsorted(arrivals[cam], time.time() - lag, side="left")))
            lost = logs[cam].mark_lost(first, start)
            new.serving = new.handle.serve.remote(frame_refs[cam], arrivals[cam], start,
                                                  logs[cam].last_result(start), lag)
            self.servers[cam] = new
            events.append({"window": k, "stream": cam, "time": now_ds(), "event": "inference_restarted",
                           "why": why, "frames_lost": lost})
            log.warning("window %d: %s's inference actor died (%s); restarted from model version %d, %d frame(s) lost",
                        k, cam, why, new.version, lost)

        def collect(cam: str) -> None:
            server = self.servers.get(cam)
            if server is None:
                return
            try:
                logs[cam].record(ray.get(server.handle.collect.remote()))
            except ray.exceptions.RayActorError as e:
                restart(cam, type(e).__name__)

        unplaced: set[str] = set()  # cameras whose accelerator left the cluster with no room elsewhere
        pending: dict[str, dict[str, Any]] = {}  # replacement actors starting: cam -> server, ready ref, t0
        deferred: dict[str, float] = {}  # share changes waiting for room on their accelerator (or for a spare)
        waiting: dict[str, float] = {}  # when a replacement began waiting for a spare (it counts in replace_seconds)

        def mark(cam: str) -> None:
            """The camera now really holds ``effective[cam]``: a timeline segment starts here."""
            timeline[cam].append((now_ds(), effective[cam][0], effective[cam][1], self._version(cam)))

        def change_share(cam: str, share: float) -> None:
            """Carry out a new inference share: in place on CPU (leases), else by a replacement actor.

            In place (CPU: the actor books nothing itself, its share is leases): a grow asks Ray
            for a lease of the difference and raises the actor's duty cycle once the lease is
            granted; a shrink lowers the duty cycle to the new share at once and trades its leases
            for one of the new share (the ledger books it at once; Ray grants it within
            milliseconds, the shrink having freed the room). So the share a process uses never
            exceeds what the controller has booked for it.

            Replacement (GPUs, where MPS fixes the percentage per process, or
            ``runtime.share_change=replace``): a new actor at the new share (a spare on CPU), the
            feed moving to it once it is up (``switch``). Both actors hold their shares until the
            switch.

            A request that does not fit beside what its accelerator holds waits (``deferred``) until
            there is room: never over-committed, and the camera keeps its old share meanwhile (the
            timeline records what ran).
            """
            if cam in unplaced:
                return  # its accelerator left the cluster; the next window plans on what is left
            if cam in pending:
                deferred[cam] = share
                return
            old = self.servers.get(cam)
            if old is not None and not self._node_alive(old.acc):
                return  # the actor is gone with its node; ``restart`` re-places it when its death is seen
            if old is not None and self._in_place(old, share):
                if share > old.share:
                    need = share - old.share
                    if self.ledger.load(old.acc.index) + ray_quantity(need) > 1.0 + 1e-9:
                        deferred[cam] = share
                        return
                else:
                    # lower the duty cycle first (to the new share, or to the actor's own booking
                    # under it), then trade the leases for one of what is above that booking
                    try:
                        ray.get(old.handle.set_share.remote(max(share, old.base)))
                    except ray.exceptions.RayActorError:
                        return  # it died: ``restart`` books its share afresh when the death is seen
                    self._drop_leases(old)
                    old.share = max(share, old.base)
                    effective[cam] = (old.share, effective[cam][1])
                    mark(cam)
                    need = share - old.base
                if need <= EPS:
                    return
                lease = self._new_lease(cam, old.acc, need)
                pending[cam] = {"kind": "lease", "lease": lease, "server": old, "share": share,
                                "t0": time.perf_counter()}
                return
            acc = old.acc if old is not None else self._plan_acc(by_plan[cam].infer_device, f"{cam}/infer")
            if self.ledger.load(acc.index) + share > 1.0 + 1e-9:
                deferred[cam] = share
                return
            if (self.spares > 0 and not self._spares.get(acc.node)
                    and any(q["kind"] == "replace" and q["server"].acc.node == acc.node for q in pending.values())):
                # no spare left, but a switch in flight frees a process in about a second: sooner than a new one
                deferred[cam] = share
                waiting.setdefault(cam, time.perf_counter())
                return
            new = self._new_server(cam, acc, share, spare=True)
            # the process (new or spare) is the slow part; its lease is checked when it is up
            pending[cam] = {"kind": "replace", "server": new, "ready": self._ready_ref(new.waits[new.job]),
                            "t0": waiting.pop(cam, time.perf_counter())}

        def lease_up(cam: str) -> None:
            """Ray granted the lease: the actor's duty cycle rises to the new share."""
            p = pending.pop(cam)
            lease = p["lease"]
            server: _Server = p["server"]
            self.placed[lease.job] = lease.handle.where()
            if self.servers.get(cam) is not server:  # the actor was restarted meanwhile: ask again for the new one
                self._end_lease(server.acc, lease)
                deferred[cam] = p["share"]
                retry_deferred()
                return
            server.leases.append(lease)
            try:
                ray.get(server.handle.set_share.remote(p["share"]))
            except ray.exceptions.RayActorError as e:
                # it died as its lease came up: a new actor at its old share (restart drops this lease too),
                # and the share change is asked for again
                restart(cam, type(e).__name__)
                deferred[cam] = p["share"]
                retry_deferred()
                return
            server.share = p["share"]
            stats["lease_seconds"].append(time.perf_counter() - p["t0"])
            effective[cam] = (server.share, effective[cam][1])
            mark(cam)
            retry_deferred()

        def switch(cam: str) -> None:
            """The replacement is up: warm it, hand the feed over after the old one's batch, retire the old one."""
            p = pending.pop(cam)
            new = p["server"]
            self.placed[new.job] = ray.get(p["ready"])
            self._ready({n: h for n, h in new.waits.items() if n != new.job}, f"window {k}: {cam}'s new share")
            if len(feeds[cam][1]):
                ray.get(new.handle.warm.remote(frame_refs[cam]))
            if new.version != self._version(cam):  # a job completed while it started
                ray.get(new.handle.update_weights.remote(self.weights[cam], self._version(cam)))
                new.version = self._version(cam)
            old = self.servers.get(cam)
            res = {"next": logs[cam].first_unserved(), "last": logs[cam].last_result(logs[cam].first_unserved())}
            if old is not None:
                try:
                    ray.get(old.handle.handoff.remote())
                    res = ray.get(old.serving)
                    logs[cam].record(ray.get(old.handle.collect.remote()))
                    self._retire(old)
                except ray.exceptions.RayActorError:
                    self.ledger.release(old.acc, old.job)  # it died meanwhile: the new one takes over where it stopped
                    first = logs[cam].first_unserved()
                    res = {"next": first, "last": logs[cam].last_result(first)}
            new.serving = new.handle.serve.remote(frame_refs[cam], arrivals[cam], res["next"], res["last"], lag)
            self.servers[cam] = new
            if res["next"] < len(arrivals[cam]):
                serve_done.discard(cam)
            stats["replace_seconds"].append(time.perf_counter() - p["t0"])
            effective[cam] = (new.share, effective[cam][1])
            mark(cam)
            retry_deferred()

        def retry_deferred() -> None:
            for c, share in list(deferred.items()):
                if c not in pending:
                    del deferred[c]
                    change_share(c, share)

        def replan(cam: str) -> None:
            """A job ended (or died): the scheduler re-plans from what a deployed system observes."""
            states = []
            for c in self.streams:
                j, running = self.jobs.get(c), c in self.jobs and c not in done
                cost = told_cost(c)
                progress = 0.0  # work done so far at the job's share, as its elapsed time shows
                if j is not None and running and math.isfinite(j.started):
                    progress = (time.time() - j.started) / scale * float(budget.train_rate(j.share))
                states.append(StreamState(
                    stream=c, accuracy=seen[c], infer_share=shares[c][0], train_share=shares[c][1],
                    config=by_plan[c].config if c in self.jobs or c in done else None,
                    target_accuracy=target(c) if running and c != cam else math.nan,
                    remaining=max(cost - progress, 0.0) if running and c != cam else 0.0,
                    done=not running or c == cam, infer_device=by_plan[c].infer_device,
                    train_device=by_plan[c].train_device if running or c == cam else None))
            new = self.scheduler.on_completion(WindowState(now=now_ds(), completed=cam, streams=states), budget)
            if set(new) != set(self.streams):
                raise EkyaError(f"scheduler {self.scheduler.name!r} re-planned shares for {sorted(new)}, "
                                f"not the window's streams {self.streams}")
            shares[cam] = (shares[cam][0], 0.0)
            # shrink first, so a grown share finds the room it needs
            order = sorted(self.streams, key=lambda c: new[c][0] - shares[c][0])
            for c in order:
                if abs(new[c][0] - shares[c][0]) > EPS and new[c][0] > EPS and time.time() < wall_end:
                    change_share(c, float(new[c][0]))
                    shares[c] = (float(new[c][0]), shares[c][1])

        told_of = {p.stream: p for p in told}
        late: set[str] = set()

        def cam_serving(cam: str, ref: Any) -> bool:
            server = self.servers.get(cam)
            return server is not None and server.serving == ref

        def told_cost(c: str) -> float:
            cfg = by_plan[c].config
            cost = told_of[c].config(cfg).cost if cfg and c in told_of else math.nan
            return cost if math.isfinite(cost) else 0.0

        def target(c: str) -> float:
            cfg = by_plan[c].config
            return told_of[c].config(cfg).accuracy if cfg and c in told_of else math.nan

        while True:
            now = time.time()
            if not launched and now >= t_label:
                for cam, job in self.jobs.items():
                    job.started = time.time()
                    job.ref = job.handle.retrain.remote(*train_args[cam])
                launched = True
            running = {job.ref: cam for cam, job in self.jobs.items()
                       if job.ref is not None and cam not in done and cam not in late}
            serving = {s.serving: cam for cam, s in self.servers.items() if cam not in serve_done}
            if now >= wall_end and not serving:
                break
            granted = [c for c, p in pending.items() if p["kind"] == "lease" and p["lease"].handle.granted()]
            for c in granted:  # a lease is bookkeeping in Ray's control plane: asked, not waited on
                lease_up(c)
            starting = {p["ready"]: cam for cam, p in pending.items() if p["kind"] != "lease"}
            wait_for = list(running) + list(serving) + list(starting)
            asked = any(p["kind"] == "lease" for p in pending.values())
            timeout = max(0.0, min(self.poll / 10 if asked else self.poll,
                                   (t_label if not launched else wall_end + 3600) - now))
            if wait_for:
                ready = ray.wait(wait_for, num_returns=1, timeout=timeout)[0]
            else:
                time.sleep(timeout)
                ready = []
            for ref in ready:
                if ref in starting:
                    c = starting[ref]
                    try:
                        (lease_up if pending[c]["kind"] == "lease" else switch)(c)
                    except ray.exceptions.RayActorError as e:  # the replacement died starting: keep the old one
                        failed = pending.pop(c, None)
                        if failed is not None and failed["kind"] == "lease":
                            self._end_lease(failed["server"].acc, failed["lease"])
                        elif failed is not None:
                            self.ledger.release(failed["server"].acc, failed["server"].job)
                            self._drop_leases(failed["server"])
                        events.append({"window": k, "stream": c, "time": now_ds(), "event": "replacement_failed",
                                       "why": type(e).__name__})
                    continue
                if ref in running:
                    cam = running[ref]
                    job = self.jobs[cam]
                    try:
                        weights, report, held = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        faults[cam] += 1
                        done[cam] = (None, None, math.nan, time.time() - job.started)
                        events.append({"window": k, "stream": cam, "time": now_ds(), "event": "retrain_failed",
                                       "why": type(e).__name__})
                        log.warning("window %d: %s's retraining actor failed (%s); it keeps serving its previous "
                                    "model", k, cam, type(e).__name__)
                        self.ledger.release(job.acc, job.job)
                        del self.jobs[cam]
                        effective[cam] = (effective[cam][0], 0.0)
                        timeline[cam].append((now_ds(), effective[cam][0], 0.0, self._version(cam)))
                        replan(cam)
                        retry_deferred()
                        continue
                    t_done, ctime = time.time(), now_ds()
                    if ctime >= T:
                        late.add(cam)  # too late for this window: handled as unfinished below
                        continue
                    weights["version"] = self._version(cam) + 1
                    self.weights[cam] = weights
                    live = self.servers.get(cam)
                    if live is not None:
                        try:
                            stats["swap_seconds"].append(ray.get(live.handle.update_weights.remote(
                                weights, weights["version"])))
                            live.version = weights["version"]
                        except ray.exceptions.RayActorError as e:
                            # the server died (or its node left) as the job finished: a new one serves the new model
                            restart(cam, type(e).__name__)
                    done[cam] = (weights, report, ctime, t_done - job.started)
                    seen[cam] = report.model_val_accuracy if math.isfinite(report.model_val_accuracy) else target(cam)
                    self._end_job(job, running=False)
                    del self.jobs[cam]
                    effective[cam] = (effective[cam][0], 0.0)
                    timeline[cam].append((ctime, effective[cam][0], 0.0, weights["version"]))
                    replan(cam)
                    retry_deferred()
                elif ref in serving and cam_serving(serving[ref], ref):
                    cam = serving[ref]
                    try:
                        ray.get(ref)
                        serve_done.add(cam)
                    except ray.exceptions.RayActorError as e:
                        restart(cam, type(e).__name__)
            for cam in list(self.servers):
                collect(cam)

        # the window is over: unfinished jobs do not count, replacements still starting are not needed
        for cam, p in list(pending.items()):
            if p["kind"] == "lease":
                self._end_lease(p["server"].acc, p["lease"])
            else:
                self._retire(p["server"])
            events.append({"window": k, "stream": cam, "time": T, "event": "share_change_too_late"})
        pending.clear()
        for cam, job in list(self.jobs.items()):
            events.append({"window": k, "stream": cam, "time": T, "event": "retrain_unfinished"})
            self._end_job(job, running=True)
            del self.jobs[cam]
        for cam in self.streams:
            collect(cam)
            n_left = logs[cam].mark_lost(logs[cam].first_unserved(), len(arrivals[cam]))
            if n_left:
                log.warning("window %d: %d frame(s) of %s were never served", k, n_left, cam)
        for key, values in stats.items():
            self.stats.setdefault(key, []).extend(values)
        self._fill_spares()  # the ones this window took, started while the records are computed
        return self._records(k, plan, told, spent, budget, sched_s, feeds, logs, done, faults, timeline, events)

    def _shipped_learner(self) -> Any:
        """The learner as actors get it (a ref put once): it builds their models, memory included."""
        import ray

        if getattr(self, "_learner_ref", None) is None:
            shipped = copy.copy(self.learner)
            if hasattr(shipped, "_caches"):
                shipped._caches = {}  # the driver's decoded crops stay here; a job decodes its own pool
            self._learner_ref = ray.put(shipped)
        return self._learner_ref

    def _train_args(self, k: int) -> dict[str, tuple[Any, ...]]:
        """What each planned retraining job is called with: its pool, and the pool's decoded crops.

        The data moves explicitly: the controller decodes every crop the job reads (its pool and
        its model's memory, as ``learner.job_rows`` lists them) and ships them through the object
        store with the call, so a job on another node needs no copy of the dataset. A learner
        without ``job_rows`` has its job read the dataset's files where it runs.
        """
        import ray

        learner_ref, data_ref = self._shipped_learner(), ray.put(self.stream_set)
        out = {}
        for cam, job in self.jobs.items():
            w = self.windows_of[cam][k]
            crops = None
            if hasattr(self.learner, "job_rows") and hasattr(self.learner, "crops"):
                rows = self.learner.job_rows(self.models[cam], w.train, w.val)
                crops = ray.put(self.learner.crops(self.stream_set).pack(rows))
            out[cam] = (learner_ref, self.weights[cam], self.space[job.config], w.train, w.val, data_ref,
                        derive_seed(self.seed, "retrain", k, cam, job.config), crops)
        return out

    def _records(self, k: int, plan: Any, told: list, spent: dict, budget: Budget, sched_s: float, feeds: dict,
                 logs: dict, done: dict, faults: dict, timeline: dict, events: list) -> RayWindowResult:
        from ekya.results.records import WindowRecord

        reference = self._reference(k)
        by_plan, told_of = plan.by_stream(), {p.stream: p for p in told}
        records, rows, end_models = [], [], {}
        for cam in self.streams:
            sp = by_plan[cam]
            start_acc, _ = self.live_accuracy(cam, self.models[cam], k)
            weights, report, ctime, job_s = done.get(cam, (None, None, math.nan, math.nan))
            end_acc, cost = start_acc, 0.0
            if weights is not None:
                model = self.learner.load_model_state(self._actors.torch_state(weights))
                self.models[cam] = model
                end_acc, _ = self.live_accuracy(cam, model, k)
                cost = accelerator_seconds(report.train_flops, self.gflops)
            end_models[cam] = self.models[cam]
            if not self.settings.carry_over:
                self.models[cam] = self.base[cam]
                self.weights[cam] = self._actors.numpy_state(self.learner.model_state(self.base[cam]))
            counts = logs[cam].counts()
            records.append(WindowRecord(
                window=k, stream=cam, config=sp.config or "none", infer_share=sp.infer_share,
                train_share=sp.train_share, accuracy=logs[cam].accuracy(feeds[cam][1]),
                noretrain_accuracy=reference[cam], predicted_accuracy=sp.predicted_accuracy,
                start_accuracy=start_acc, end_accuracy=end_acc, retrain_cost=cost,
                completion_time=ctime if weights is not None else math.nan, scheduler_seconds=sched_s,
                predicted_cost=told_of[cam].config(sp.config).cost if sp.config else math.nan,
                profiling_cost=spent[cam], frames_classified=counts["classified"], frames_skipped=counts["skipped"],
                frames_lost=counts["lost"], infer_fps=counts["classified"] / self.wall,
                job_wall_seconds=job_s, faults=faults[cam]))
            marks = timeline[cam] + [(budget.window, math.nan, math.nan, -1)]
            for (a, inf, tr, ver), (b, *_rest) in zip(marks, marks[1:]):
                if b > a:
                    rows.append({"window": k, "stream": cam, "start": a, "end": b, "infer_share": inf,
                                 "train_share": tr, "model_version": ver})
        if self.probes is not None:  # the model serving at the end of window k, before carry-over resets it
            self.probes.add_row(k, end_models)
        self.note_served(k, records)
        return RayWindowResult(k, records, plan, told if self.scheduler.needs_profiles else [], timeline=rows,
                               events=events)
