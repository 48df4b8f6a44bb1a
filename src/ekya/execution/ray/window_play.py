"""One ray window on the wall clock: its actors deployed, its frames served, its jobs run, its shares re-planned.

A ``WindowPlay`` is built per window from the plan and drives the fleet: it deploys the plan
(keeping, resizing or replacing each camera's inference actor, starting the retraining actors),
starts the clock, then polls until the window ends and every feed is served. It launches the jobs
when the teacher's labels are ready, hot-swaps the weights a job returns, asks the scheduler to
re-plan on every completion and carries out the changed inference shares (in place through
leases, or by a replacement actor), restarting what dies. What it hands back (``Played``) is what
the records are made of.

Clocks: the frames' arrival times are wall-clock times (``time.time()``), because the inference
actors compare them with their own clocks, in other processes and, on a cluster, on other nodes,
whose clocks must agree; every deadline of the driver's own (the window end, the label delay, a
job's elapsed time) is on the monotonic clock.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ekya.errors import EkyaError
from ekya.execution.ray.fleet import Fleet, Job, Server
from ekya.execution.ray.lease import Lease
from ekya.execution.ray.serving import FrameLog, arrival_walls
from ekya.execution.ray.timeline import Event, Segment
from ekya.execution.retraining import work_done
from ekya.plans.quanta import EPS
from ekya.plans.scheduler import Scheduler, StreamState, WindowState
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import StreamProfile

log = logging.getLogger("ekya.ray")


@dataclass(frozen=True)
class PlaySettings:
    """The ``runtime.`` keys that pace a window: its wall seconds, the frames' lag, the poll and the start bound."""

    wall: float
    max_lag: float
    poll: float
    ready_timeout: float


@dataclass
class Feed:
    """A camera's live frames of the window: uint8 crops in time order, their targets and dataset timestamps."""

    images: np.ndarray
    targets: np.ndarray
    times: np.ndarray


@dataclass
class PendingLease:
    """An in-place grow waiting for Ray to grant its lease; ``t0`` is when it was asked (``perf_counter``)."""

    lease: Lease
    server: Server
    share: float
    t0: float


@dataclass
class PendingReplacement:
    """A replacement actor starting at a new share; ``ready`` answers once it is up."""

    server: Server
    ready: Any
    t0: float


@dataclass
class Finished:
    """A camera's retraining job that ended in the window: its weights (None: it failed) and when."""

    weights: dict[str, Any] | None
    report: Any
    completion_time: float
    job_seconds: float


@dataclass
class Played:
    """What a window play leaves for the records: per camera its frame log, job, faults and timeline; the events."""

    logs: dict[str, FrameLog]
    done: dict[str, Finished]
    faults: dict[str, int]
    timeline: dict[str, list[Segment]]
    events: list[Event]
    stats: dict[str, list[float]]


class WindowPlay:
    """Window ``k`` played by the fleet's actors on the wall clock (``run``)."""

    def __init__(self, k: int, fleet: Fleet, scheduler: Scheduler, plan: Plan, told: list[StreamProfile],
                 budget: Budget, feeds: dict[str, Feed], settings: PlaySettings,
                 job_inputs: Callable[[], dict[str, tuple[Any, ...]]], gone: list[str]) -> None:
        import ray

        self.k, self.fleet, self.scheduler, self.budget, self.settings = k, fleet, scheduler, budget, settings
        self.streams = list(feeds)
        self.by_plan, self.told_of = plan.by_stream(), {p.stream: p for p in told}
        self.T, self.scale = budget.window, settings.wall / budget.window
        self.job_inputs = job_inputs
        self.stats: dict[str, list[float]] = {"swap_seconds": [], "replace_seconds": [], "lease_seconds": []}
        self.events: list[Event] = []
        if gone:
            self.events.append(Event(k, None, 0.0, "accelerators_lost", {"accelerators": gone}))
        self.faults = {cam: 0 for cam in self.streams}
        # the frames move to wherever the camera's inference runs through the object store (owned here)
        self.feeds = feeds
        self.frame_refs = {cam: ray.put(feeds[cam].images) for cam in self.streams}
        self.logs = {cam: FrameLog.empty(len(feeds[cam].targets)) for cam in self.streams}
        #: the start accuracy the scheduler last observed per camera (a finished job's replaces it)
        self.seen = {p.stream: p.start_accuracy for p in told}
        # set when the clock starts (``_start_clock``): wall-clock arrivals, monotonic deadlines
        self.wall0, self.clock0, self.end, self.label_at, self.lag = 0.0, 0.0, 0.0, 0.0, 0.0
        self.arrivals: dict[str, np.ndarray] = {}
        self.train_args: dict[str, tuple[Any, ...]] = {}
        self.launched = False
        #: the shares planned (inference, training) and those really held (a change takes effect when its actor serves)
        self.shares: dict[str, tuple[float, float]] = {}
        self.effective: dict[str, tuple[float, float]] = {}
        self.timeline: dict[str, list[Segment]] = {}
        self.done: dict[str, Finished] = {}
        self.serve_done: set[str] = set()
        self.unplaced: set[str] = set()  # cameras whose accelerator left the cluster with no room elsewhere
        self.pending: dict[str, PendingLease | PendingReplacement] = {}  # share changes under way
        self.deferred: dict[str, float] = {}  # share changes waiting for room on their accelerator (or for a spare)
        #: when a replacement began waiting for a spare (the wait counts in replace_seconds)
        self.waiting: dict[str, float] = {}
        self.late: set[str] = set()  # jobs that returned after the window's end: they do not count

    # -- the window from start to end ----------------------------------------------------------------

    def run(self) -> Played:
        """Deploy the plan, start the clock, poll until the window ends and every feed is served; then wrap up."""
        self._deploy()
        self._start_clock()
        while self._step():
            pass
        self._finish()
        return Played(self.logs, self.done, self.faults, self.timeline, self.events, self.stats)

    def _now(self) -> float:
        """Window seconds since the clock started."""
        return (time.monotonic() - self.clock0) / self.scale

    def _event(self, cam: str | None, kind: str, time_s: float | None = None, **detail: Any) -> None:
        self.events.append(Event(self.k, cam, self._now() if time_s is None else time_s, kind, detail))

    def _deploy(self) -> None:
        """The plan's actors up before the clock starts: kept, resized in place, replaced or new."""
        import ray

        t_plan = time.perf_counter()
        self._drop_dead()
        resized = self._resize(self._keep_or_retire())
        fresh = self._start_servers()
        for cam in self.streams:
            sp = self.by_plan[cam]
            if sp.config is not None and sp.train_share > EPS:
                acc = self.fleet.plan_acc(sp.train_device, f"{cam}/train")
                self.fleet.start_job(cam, self.k, acc, sp.train_share, sp.config)
        self.fleet.ready({**{n: h for s in fresh.values() for n, h in s.waits.items()}, **resized,
                          **{j.job: j.handle for j in self.fleet.jobs.values()}}, f"window {self.k}")
        ray.get([s.handle.warm.remote(self.frame_refs[c]) for c, s in fresh.items() if len(self.feeds[c].targets)])
        self.stats["plan_to_running_seconds"] = [time.perf_counter() - t_plan]

    def _drop_dead(self) -> None:
        """An inference actor that died between windows is counted as a fault and replaced."""
        import ray

        for cam, server in list(self.fleet.servers.items()):
            try:
                ray.get(server.handle.ready.remote(), timeout=self.settings.ready_timeout)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
                self.faults[cam] += 1
                self._event(cam, "inference_restarted", 0.0, why=type(e).__name__, frames_lost=0)
                self.fleet.release(server)
                del self.fleet.servers[cam]

    def _keep_or_retire(self) -> dict[str, float]:
        """Inference actors are kept when the plan keeps their accelerator and share, resized in place when it keeps
        the accelerator and the actor can (CPU), else retired; the shares to resize to."""
        resize: dict[str, float] = {}
        for cam in self.streams:
            sp, old = self.by_plan[cam], self.fleet.servers.get(cam)
            acc = self.fleet.plan_acc(sp.infer_device, f"{cam}/infer") if sp.infer_share > EPS else None
            if old is not None and (acc is None or old.acc != acc or abs(old.share - sp.infer_share) > EPS):
                if acc is not None and old.acc == acc and self.fleet.in_place(old, sp.infer_share):
                    self.fleet.drop_leases(old)  # idle between windows: its duty cycle is set before it serves
                    old.share = old.base
                    resize[cam] = float(sp.infer_share)
                else:
                    self.fleet.retire(old)
                    del self.fleet.servers[cam]
        return resize

    def _resize(self, resize: dict[str, float]) -> dict[str, Any]:
        """Resize kept actors in place, booked once every shrink and retirement has freed its room; their leases."""
        import ray

        resized = {}
        for cam, share in resize.items():
            server = self.fleet.servers[cam]
            if share - server.base > EPS:
                lease = self.fleet.new_lease(cam, server.acc, share - server.base)
                server.leases.append(lease)
                resized[lease.job] = lease.handle
            ray.get(server.handle.set_share.remote(share))
            server.share = share
        return resized

    def _start_servers(self) -> dict[str, Server]:
        """A new inference actor for every camera the plan serves and no kept actor does."""
        fresh = {}
        for cam in self.streams:
            sp = self.by_plan[cam]
            if sp.infer_share > EPS and cam not in self.fleet.servers:
                acc = self.fleet.plan_acc(sp.infer_device, f"{cam}/infer")
                self.fleet.servers[cam] = fresh[cam] = self.fleet.new_server(cam, acc, sp.infer_share)
        return fresh

    def _start_clock(self) -> None:
        """The window starts: every actor serves its camera's frames as they arrive."""
        fleet, T = self.fleet, self.T
        # arrivals are wall-clock times (see the module docstring); the driver's deadlines are monotonic
        self.wall0, self.clock0 = time.time() + 0.1, time.monotonic() + 0.1
        self.end = self.clock0 + self.settings.wall
        self.arrivals = {cam: arrival_walls(self.feeds[cam].times, self.k * T, T, self.settings.wall, self.wall0)
                         for cam in self.streams}
        self.lag = self.settings.max_lag * self.scale
        for cam, server in fleet.servers.items():
            if server.version != fleet.version(cam):  # the camera's model changed between windows
                self._update_weights(server, cam)
            server.serving = server.handle.serve.remote(self.frame_refs[cam], self.arrivals[cam], 0, -1, self.lag)
        self.shares = {cam: (self.by_plan[cam].infer_share, self.by_plan[cam].train_share if cam in fleet.jobs
                             else 0.0) for cam in self.streams}
        self.effective = dict(self.shares)
        self.timeline = {cam: [Segment(0.0, self.shares[cam][0], self.shares[cam][1], fleet.version(cam))]
                         for cam in self.streams}
        self.label_at = self.clock0 + min(self.budget.label_delay, T) * self.scale
        self.serve_done = set(c for c in self.streams if c not in fleet.servers)
        self.train_args = self.job_inputs()

    def _update_weights(self, server: Server, cam: str) -> float:
        """Hot-swap the camera's current weights into an actor; the seconds the swap took."""
        import ray

        seconds = float(ray.get(server.handle.update_weights.remote(self.fleet.weights[cam], self.fleet.version(cam))))
        server.version = self.fleet.version(cam)
        return seconds

    # -- the poll loop -------------------------------------------------------------------------------

    def _step(self) -> bool:
        """One poll: launch the jobs when labels are ready, handle whatever answered; False once the window is over."""
        self.fleet.poll()
        now = time.monotonic()
        if not self.launched and now >= self.label_at:
            for cam, job in self.fleet.jobs.items():
                job.started = time.monotonic()
                job.ref = job.handle.retrain.remote(*self.train_args[cam])
            self.launched = True
        running = {job.ref: cam for cam, job in self.fleet.jobs.items()
                   if job.ref is not None and cam not in self.done and cam not in self.late}
        serving = {s.serving: cam for cam, s in self.fleet.servers.items() if cam not in self.serve_done}
        if now >= self.end and not serving:
            return False
        granted = [c for c, p in self.pending.items() if isinstance(p, PendingLease) and p.lease.handle.granted()]
        for c in granted:  # a lease is bookkeeping in Ray's control plane: asked, not waited on
            self._lease_up(c)
        starting = {p.ready: cam for cam, p in self.pending.items() if isinstance(p, PendingReplacement)}
        for ref in self._wait([*running, *serving, *starting], now):
            if ref in starting:
                self._started(starting[ref])
            elif ref in running:
                self._job_returned(running[ref], ref)
            elif ref in serving and self._serving(serving[ref], ref):
                self._served(serving[ref], ref)
        for cam in list(self.fleet.servers):
            self._collect(cam)
        return True

    def _wait(self, refs: list[Any], now: float) -> list[Any]:
        """What answers within one poll (a tenth of one while a lease is asked for), never past the label time."""
        import ray

        asked = any(isinstance(p, PendingLease) for p in self.pending.values())
        timeout = max(0.0, min(self.settings.poll / 10 if asked else self.settings.poll,
                               (self.label_at if not self.launched else self.end + 3600) - now))
        if refs:
            return list(ray.wait(refs, num_returns=1, timeout=timeout)[0])
        time.sleep(timeout)
        return []

    def _serving(self, cam: str, ref: Any) -> bool:
        server = self.fleet.servers.get(cam)
        return server is not None and server.serving == ref

    def _started(self, cam: str) -> None:
        """A replacement actor answered: switch to it; if it died starting, the old one keeps serving."""
        import ray

        try:
            (self._lease_up if isinstance(self.pending[cam], PendingLease) else self._switch)(cam)
        except ray.exceptions.RayActorError as e:
            failed = self.pending.pop(cam, None)
            if isinstance(failed, PendingLease):
                self.fleet.leases.end(failed.server.acc, failed.lease)
            elif failed is not None:
                self.fleet.release(failed.server)
            self._event(cam, "replacement_failed", why=type(e).__name__)

    def _served(self, cam: str, ref: Any) -> None:
        """A camera's serve call returned: its feed is served, or its actor died serving it."""
        import ray

        try:
            ray.get(ref)
            self.serve_done.add(cam)
        except ray.exceptions.RayActorError as e:
            self._restart(cam, type(e).__name__)

    def _collect(self, cam: str) -> None:
        """Take what a camera's actor served since the last poll into its frame log."""
        import ray

        server = self.fleet.servers.get(cam)
        if server is None:
            return
        try:
            self.logs[cam].record(ray.get(server.handle.collect.remote()))
        except ray.exceptions.RayActorError as e:
            self._restart(cam, type(e).__name__)

    def _mark(self, cam: str) -> None:
        """The camera now really holds ``effective[cam]``: a timeline segment starts here."""
        infer, train = self.effective[cam]
        self.timeline[cam].append(Segment(self._now(), infer, train, self.fleet.version(cam)))

    # -- retraining jobs -----------------------------------------------------------------------------

    def _job_returned(self, cam: str, ref: Any) -> None:
        """A camera's job answered: its weights go live, or (it failed) the camera keeps its model."""
        import ray

        job = self.fleet.jobs[cam]
        try:
            weights, report, _held = ray.get(ref)
        except ray.exceptions.RayError as e:
            self._job_failed(cam, job, e)
            return
        t_done, ctime = time.monotonic(), self._now()
        if ctime >= self.T:
            self.late.add(cam)  # too late for this window: handled as unfinished at its end
            return
        self._job_done(cam, job, weights, report, ctime, t_done)

    def _job_seconds(self, job: Job, until: float) -> float:
        return until - job.started if job.started is not None else math.nan

    def _job_failed(self, cam: str, job: Job, e: Exception) -> None:
        """A retraining actor died: its camera keeps serving the previous model; the scheduler re-plans."""
        self.faults[cam] += 1
        self.done[cam] = Finished(None, None, math.nan, self._job_seconds(job, time.monotonic()))
        self._event(cam, "retrain_failed", why=type(e).__name__)
        log.warning("window %d: %s's retraining actor failed (%s); it keeps serving its previous model",
                    self.k, cam, type(e).__name__)
        self.fleet.ledger.release(job.acc, job.job)
        del self.fleet.jobs[cam]
        self.effective[cam] = (self.effective[cam][0], 0.0)
        self.timeline[cam].append(Segment(self._now(), self.effective[cam][0], 0.0, self.fleet.version(cam)))
        self._replan(cam)
        self._retry_deferred()

    def _job_done(self, cam: str, job: Job, weights: dict[str, Any], report: Any, ctime: float,
                  t_done: float) -> None:
        """A job finished in time: its weights are the camera's next version, swapped into its live actor."""
        import ray

        weights["version"] = self.fleet.version(cam) + 1
        self.fleet.weights[cam] = weights
        live = self.fleet.servers.get(cam)
        if live is not None:
            try:
                self.stats["swap_seconds"].append(self._update_weights(live, cam))
            except ray.exceptions.RayActorError as e:
                # the server died (or its node left) as the job finished: a new one serves the new model
                self._restart(cam, type(e).__name__)
        self.done[cam] = Finished(weights, report, ctime, self._job_seconds(job, t_done))
        self.seen[cam] = (report.model_val_accuracy if math.isfinite(report.model_val_accuracy)
                          else self._target(cam))
        self._end_job(cam, job, running=False)
        self.effective[cam] = (self.effective[cam][0], 0.0)
        self.timeline[cam].append(Segment(ctime, self.effective[cam][0], 0.0, weights["version"]))
        self._replan(cam)
        self._retry_deferred()

    def _end_job(self, cam: str, job: Job, running: bool, time_s: float | None = None) -> None:
        """End a camera's retraining actor; one that outlives its booking is a fault of the window's events."""
        lingers = self.fleet.end_job(job, running=running)
        if lingers is not None:
            self._event(cam, "actor_not_gone", time_s, job=job.job, why=lingers)
        del self.fleet.jobs[cam]

    def _told_cost(self, c: str) -> float:
        cfg = self.by_plan[c].config
        cost = self.told_of[c].config(cfg).cost if cfg and c in self.told_of else math.nan
        return cost if math.isfinite(cost) else 0.0

    def _target(self, c: str) -> float:
        cfg = self.by_plan[c].config
        return self.told_of[c].config(cfg).accuracy if cfg and c in self.told_of else math.nan

    def _replan(self, cam: str) -> None:
        """A job ended (or died): the scheduler re-plans from what a deployed system observes."""
        states = [self._state(c, cam) for c in self.streams]
        new = self.scheduler.on_completion(WindowState(now=self._now(), completed=cam, streams=states), self.budget)
        if set(new) != set(self.streams):
            raise EkyaError(f"scheduler {self.scheduler.name!r} re-planned shares for {sorted(new)}, "
                            f"not the window's streams {self.streams}")
        shares = self.shares
        shares[cam] = (shares[cam][0], 0.0)
        # shrink first, so a grown share finds the room it needs
        for c in sorted(self.streams, key=lambda c: new[c][0] - shares[c][0]):
            if abs(new[c][0] - shares[c][0]) > EPS and new[c][0] > EPS and time.monotonic() < self.end:
                self._change_share(c, float(new[c][0]))
                shares[c] = (float(new[c][0]), shares[c][1])

    def _state(self, c: str, completed: str) -> StreamState:
        """Camera ``c`` as the scheduler sees it when ``completed``'s job has ended."""
        j, running = self.fleet.jobs.get(c), c in self.fleet.jobs and c not in self.done
        cost = self._told_cost(c)
        progress = 0.0  # work done so far at the job's share, as its elapsed time shows
        if j is not None and running and j.started is not None:
            progress = work_done((time.monotonic() - j.started) / self.scale, j.share, self.budget)
        sp, others = self.by_plan[c], running and c != completed
        return StreamState(
            stream=c, accuracy=self.seen[c], infer_share=self.shares[c][0], train_share=self.shares[c][1],
            config=sp.config if c in self.fleet.jobs or c in self.done else None,
            target_accuracy=self._target(c) if others else math.nan,
            remaining=max(cost - progress, 0.0) if others else 0.0,
            done=not running or c == completed, infer_device=sp.infer_device,
            train_device=sp.train_device if running or c == completed else None)

    # -- inference share changes ---------------------------------------------------------------------

    def _change_share(self, cam: str, share: float) -> None:
        """Carry out a new inference share: in place on CPU (leases), else by a replacement actor.

        A request that does not fit beside what its accelerator holds waits (``deferred``) until
        there is room: never over-committed, and the camera keeps its old share meanwhile (the
        timeline records what ran).
        """
        if cam in self.unplaced:
            return  # its accelerator left the cluster; the next window plans on what is left
        if cam in self.pending:
            self.deferred[cam] = share
            return
        old = self.fleet.servers.get(cam)
        if old is not None and not self.fleet.alive(old.acc):
            return  # the actor is gone with its node; ``_restart`` re-places it when its death is seen
        if old is not None and self.fleet.in_place(old, share):
            self._change_in_place(cam, old, share)
        else:
            self._replace(cam, old, share)

    def _change_in_place(self, cam: str, old: Server, share: float) -> None:
        """CPU: the actor books nothing itself, its share is leases.

        A grow asks Ray for a lease of the difference and raises the actor's duty cycle once the
        lease is granted (``_lease_up``); a shrink lowers the duty cycle to the new share at once and
        trades its leases for one of the new share (the ledger books it at once; Ray grants it
        within milliseconds, the shrink having freed the room). So the share a process uses never
        exceeds what the controller has booked for it.
        """
        import ray

        if share > old.share:
            need = share - old.share
            if not self.fleet.fits(old.acc, need):
                self.deferred[cam] = share
                return
        else:
            # lower the duty cycle first (to the new share, or to the actor's own booking under it),
            # then trade the leases for one of what is above that booking
            try:
                ray.get(old.handle.set_share.remote(max(share, old.base)))
            except ray.exceptions.RayActorError:
                return  # it died: ``_restart`` books its share afresh when the death is seen
            self.fleet.drop_leases(old)
            old.share = max(share, old.base)
            self.effective[cam] = (old.share, self.effective[cam][1])
            self._mark(cam)
            need = share - old.base
        if need <= EPS:
            return
        lease = self.fleet.new_lease(cam, old.acc, need)
        self.pending[cam] = PendingLease(lease, old, share, time.perf_counter())

    def _replace(self, cam: str, old: Server | None, share: float) -> None:
        """A new actor at the new share (a spare on CPU); the feed moves to it once it is up (``_switch``).

        GPUs (MPS fixes the percentage per process) and ``runtime.share_change=replace``. Both
        actors hold their shares until the switch.
        """
        fleet = self.fleet
        acc = old.acc if old is not None else fleet.plan_acc(self.by_plan[cam].infer_device, f"{cam}/infer")
        if fleet.ledger.load(acc.index) + share > 1.0 + 1e-9:
            self.deferred[cam] = share
            return
        if (fleet.settings.spares > 0 and not fleet.spares.get(acc.node)
                and any(isinstance(q, PendingReplacement) and q.server.acc.node == acc.node
                        for q in self.pending.values())):
            # no spare left, but a switch in flight frees a process in about a second: sooner than a new one
            self.deferred[cam] = share
            self.waiting.setdefault(cam, time.perf_counter())
            return
        new = fleet.new_server(cam, acc, share, spare=True)
        # the process (new or spare) is the slow part; its lease is checked when it is up
        self.pending[cam] = PendingReplacement(new, fleet.ready_ref(new.waits[new.job]),
                                               self.waiting.pop(cam, time.perf_counter()))

    def _lease_up(self, cam: str) -> None:
        """Ray granted the lease: the actor's duty cycle rises to the new share."""
        import ray

        p = self.pending.pop(cam)
        assert isinstance(p, PendingLease)
        server = p.server
        self.fleet.placed[p.lease.job] = p.lease.handle.where()
        if self.fleet.servers.get(cam) is not server:  # the actor was restarted meanwhile: ask again for the new one
            self.fleet.leases.end(server.acc, p.lease)
            self.deferred[cam] = p.share
            self._retry_deferred()
            return
        server.leases.append(p.lease)
        try:
            ray.get(server.handle.set_share.remote(p.share))
        except ray.exceptions.RayActorError as e:
            # it died as its lease came up: a new actor at its old share (the restart drops this lease too),
            # and the share change is asked for again
            self._restart(cam, type(e).__name__)
            self.deferred[cam] = p.share
            self._retry_deferred()
            return
        server.share = p.share
        self.stats["lease_seconds"].append(time.perf_counter() - p.t0)
        self.effective[cam] = (server.share, self.effective[cam][1])
        self._mark(cam)
        self._retry_deferred()

    def _switch(self, cam: str) -> None:
        """The replacement is up: warm it, hand the feed over after the old one's batch, retire the old one."""
        import ray

        p = self.pending.pop(cam)
        assert isinstance(p, PendingReplacement)
        new = p.server
        self.fleet.placed[new.job] = ray.get(p.ready)
        self.fleet.ready({n: h for n, h in new.waits.items() if n != new.job}, f"window {self.k}: {cam}'s new share")
        if len(self.feeds[cam].targets):
            ray.get(new.handle.warm.remote(self.frame_refs[cam]))
        if new.version != self.fleet.version(cam):  # a job completed while it started
            self._update_weights(new, cam)
        start, last = self._hand_off(cam)
        new.serving = new.handle.serve.remote(self.frame_refs[cam], self.arrivals[cam], start, last, self.lag)
        self.fleet.servers[cam] = new
        if start < len(self.arrivals[cam]):
            self.serve_done.discard(cam)
        self.stats["replace_seconds"].append(time.perf_counter() - p.t0)
        self.effective[cam] = (new.share, self.effective[cam][1])
        self._mark(cam)
        self._retry_deferred()

    def _hand_off(self, cam: str) -> tuple[int, int]:
        """Stop the camera's old actor after its batch and retire it; the frame to go on from and the last result."""
        import ray

        frames = self.logs[cam]
        first = frames.first_unserved()
        res = {"next": first, "last": frames.last_result(first)}
        old = self.fleet.servers.get(cam)
        if old is not None:
            try:
                ray.get(old.handle.handoff.remote())
                res = ray.get(old.serving)
                frames.record(ray.get(old.handle.collect.remote()))
                self.fleet.retire(old)
            except ray.exceptions.RayActorError as e:
                # it died meanwhile: the new one takes over where it stopped
                self._event(cam, "handoff_failed", why=type(e).__name__)
                log.warning("window %d: %s's inference actor died as it handed its feed over (%s); the new one "
                            "serves from frame %d", self.k, cam, type(e).__name__, frames.first_unserved())
                self.fleet.ledger.release(old.acc, old.job)
                first = frames.first_unserved()
                res = {"next": first, "last": frames.last_result(first)}
        return int(res["next"]), int(res["last"])

    def _retry_deferred(self) -> None:
        for c, share in list(self.deferred.items()):
            if c not in self.pending:
                del self.deferred[c]
                self._change_share(c, share)

    # -- faults --------------------------------------------------------------------------------------

    def _restart(self, cam: str, why: str) -> None:
        """An inference actor died: a new one from the last good weights; frames nobody served are lost."""
        import ray

        self.fleet.poll()  # a death may be its node leaving: look at the cluster afresh
        old = self.fleet.servers[cam]
        self.fleet.release(old)  # the new actor books the whole share itself
        self.faults[cam] += 1
        first = self.logs[cam].first_unserved()
        acc = old.acc
        if not self.fleet.alive(acc):  # its node left the cluster: re-place it where its share still fits
            room = self.fleet.room(old.share, exclude=old.acc)
            if room is None:
                self._unplace(cam, old, why, first)
                return
            acc = room
            self.events.append(Event(self.k, cam, self._now(), "inference_moved",
                                     {"from": old.acc.resource, "to": acc.resource}))
        new = self.fleet.new_server(cam, acc, old.share, spare=True)
        self.fleet.ready(new.waits, f"window {self.k}: restarting {cam}'s inference")
        if len(self.feeds[cam].targets):
            ray.get(new.handle.warm.remote(self.frame_refs[cam]))
        # compared with wall-clock arrivals, so wall clock: frames older than the lag are not caught up
        start = max(first, int(np.searchsorted(self.arrivals[cam], time.time() - self.lag, side="left")))
        lost = self.logs[cam].mark_lost(first, start)
        new.serving = new.handle.serve.remote(self.frame_refs[cam], self.arrivals[cam], start,
                                              self.logs[cam].last_result(start), self.lag)
        self.fleet.servers[cam] = new
        self._event(cam, "inference_restarted", why=why, frames_lost=lost)
        log.warning("window %d: %s's inference actor died (%s); restarted from model version %d, %d frame(s) lost",
                    self.k, cam, why, new.version, lost)

    def _unplace(self, cam: str, old: Server, why: str, first: int) -> None:
        """A camera's accelerator left the cluster and no other has room for its share: its frames are lost."""
        del self.fleet.servers[cam]
        self.serve_done.add(cam)
        self.unplaced.add(cam)
        lost = self.logs[cam].mark_lost(first, len(self.arrivals[cam]))
        self.effective[cam] = (0.0, self.effective[cam][1])
        self._mark(cam)
        self._event(cam, "inference_unplaced", why=f"{old.acc.resource} left the cluster ({why}) and no accelerator "
                                                   f"left has {old.share:g} free", frames_lost=lost)
        log.warning("window %d: %s's accelerator %s left the cluster and no other has room for its share %g: "
                    "its %d remaining frame(s) are lost this window", self.k, cam, old.acc.resource, old.share, lost)

    # -- the end -------------------------------------------------------------------------------------

    def _finish(self) -> None:
        """The window is over: unfinished jobs do not count, replacements still starting are not needed."""
        for cam, p in list(self.pending.items()):
            if isinstance(p, PendingLease):
                self.fleet.leases.end(p.server.acc, p.lease)
            else:
                self.fleet.retire(p.server)
            self._event(cam, "share_change_too_late", self.T)
        self.pending.clear()
        for cam, job in list(self.fleet.jobs.items()):
            self._event(cam, "retrain_unfinished", self.T)
            self._end_job(cam, job, running=True, time_s=self.T)
        for cam in self.streams:
            self._collect(cam)
            n_left = self.logs[cam].mark_lost(self.logs[cam].first_unserved(), len(self.arrivals[cam]))
            if n_left:
                log.warning("window %d: %d frame(s) of %s were never served", self.k, n_left, cam)
