"""The fleet of a ray run: every camera's actors and share leases, their bookings, spares and served weights.

The fleet starts, adopts, resizes and ends actors, books each share in the controller's ledger
before Ray is asked for it, and holds what the actors are given: the cameras' weights with their
model versions and the learner as shipped. It knows nothing of windows or plans (``window_play``
drives it) and holds no reference to the runtime, so the runtime, the window play and the fleet
import one another in one direction only.

Ray is imported inside the methods: the fleet is built before ``cluster.connect`` has set Ray's
environment, and used only after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ekya.errors import EkyaError
from ekya.execution.ray.cluster import Accelerator
from ekya.execution.ray.lease import Lease, Leases, ShareLease
from ekya.execution.ray.placement import Ledger, ray_quantity
from ekya.plans.quanta import EPS

log = logging.getLogger("ekya.ray")


@dataclass
class Server:
    """A camera's live inference actor: its handle, bookings, the share it holds, model version and serve call.

    ``base`` is what the actor itself booked when it started (0 for a CPU process, whose whole share
    is leases); a CPU share changed in place keeps the rest (``share - base``) booked by ``leases``.
    """

    handle: Any
    acc: Accelerator
    share: float
    job: str
    version: int
    base: float
    serving: Any = None
    leases: list[Lease] = field(default_factory=list)
    #: what must answer before it may serve (job -> actor handle or call ref): a new process, or a
    #: spare's ``adopt`` and its lease
    waits: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """A camera's retraining job in this window; ``started`` is the driver's monotonic clock at its launch."""

    handle: Any
    acc: Accelerator
    share: float
    job: str
    config: str
    ref: Any = None
    started: float | None = None


class Spare(NamedTuple):
    """An inference process started ahead, with no weights and no booking, and the ref of its ``ready``."""

    handle: Any
    ready: Any


@dataclass(frozen=True)
class FleetSettings:
    """The ``runtime.`` keys the fleet acts on."""

    device: str = "cpu"
    batch_size: int = 16
    ready_timeout: float = 120.0
    #: spares kept started per node (0 on GPUs: MPS fixes a process's percentage when it starts)
    spares: int = 2
    share_change: str = "auto"


def _actors() -> Any:
    """The actor module (it imports ray and torch: loaded once Ray's environment is set)."""
    from ekya.execution.ray import actors

    return actors


class Fleet:
    """Every actor and lease of a ray run, by camera; the ledger that books their shares; the weights they serve."""

    def __init__(self, accelerators: list[Accelerator], settings: FleetSettings, ship: Callable[[], Any]) -> None:
        self.accelerators = list(accelerators)
        self.settings = settings
        self.ledger = Ledger(self.accelerators)
        self.leases = Leases(self.ledger)
        self.servers: dict[str, Server] = {}
        self.jobs: dict[str, Job] = {}
        #: each camera's serving weights (``actors.numpy_state``; ``version`` counts its retrained models)
        self.weights: dict[str, Any] = {}
        self.spares: dict[str, list[Spare]] = {}
        #: where each actor ran (job name -> {"pid", "node"}), for logs and tests
        self.placed: dict[str, dict[str, Any]] = {}
        #: the accelerators a window plans on (those whose node was alive at its start)
        self.plan_accs = list(self.accelerators)
        self._ship = ship
        self._learner_ref: Any = None
        self._generation = 0
        self._nodes: dict[str, str] | None = None

    # -- the cluster's nodes, looked up once per poll ------------------------------------------------

    def poll(self) -> None:
        """Forget which nodes are alive: the next question asks Ray again (once, however many follow)."""
        self._nodes = None

    def _node_table(self) -> dict[str, str]:
        """The custom resources of every alive node, to its node id (one ``ray.nodes()`` per poll)."""
        if self._nodes is None:
            import ray

            self._nodes = {res: str(n["NodeID"]) for n in ray.nodes() if n.get("Alive")
                           for res in n.get("Resources", {})}
        return self._nodes

    def alive(self, acc: Accelerator) -> bool:
        """Whether the node holding ``acc``'s resource is alive in the Ray cluster."""
        return acc.resource in self._node_table()

    def node_id(self, acc: Accelerator) -> str | None:
        """The Ray node id of ``acc``'s node, None when it left the cluster."""
        return self._node_table().get(acc.resource)

    def plan_acc(self, index: int | None, job: str) -> Accelerator:
        """The accelerator a plan's device index names: the index-th of those still in the cluster."""
        return Ledger(self.plan_accs).accelerator(index, job)

    def fits(self, acc: Accelerator, share: float) -> bool:
        """Whether ``share`` more fits on ``acc`` beside what the ledger has booked there."""
        return self.ledger.load(acc.index) + ray_quantity(share) <= 1.0 + 1e-9

    def room(self, share: float, exclude: Accelerator | None = None) -> Accelerator | None:
        """An accelerator still in the cluster with ``share`` free in the ledger (the least loaded), or None."""
        fits = [a for a in self.accelerators if a != exclude and self.alive(a) and self.fits(a, share)]
        return min(fits, key=lambda a: (self.ledger.load(a.index), a.index)) if fits else None

    # -- weights and the learner the actors are given -----------------------------------------------

    def version(self, cam: str) -> int:
        """The model version of a camera's serving weights (0: the model it started the run with)."""
        return int(self.weights[cam].get("version", 0)) if isinstance(self.weights.get(cam), dict) else 0

    def shipped_learner(self) -> Any:
        """The learner as actors get it (a ref put once): it builds their models, memory included."""
        if self._learner_ref is None:
            import ray

            self._learner_ref = ray.put(self._ship())
        return self._learner_ref

    # -- starting actors and waiting for them --------------------------------------------------------

    def _name(self, cam: str, kind: str) -> str:
        """A job name no other actor or lease of the run has had (``cam/infer#3``, ``cam/lease#4``)."""
        self._generation += 1
        return f"{cam}/{kind}#{self._generation}"

    def options(self, acc: Accelerator, job: str, share: float) -> dict[str, Any]:
        """Book ``share`` of ``acc`` for ``job``: its Ray actor options (and, on GPUs, its MPS environment)."""
        opts = self.ledger.book(acc, job, share)
        if self.settings.device == "cuda":
            from ekya.execution.ray.share import gpu_env, mps_dirs

            opts["runtime_env"] = {"env_vars": gpu_env(share, acc.local_index, mps_dirs().pipe)}
        return opts

    @staticmethod
    def ready_ref(waited: Any) -> Any:
        """What to wait on for an actor handle (its ``ready``) or for a call already made (its ref)."""
        import ray

        return waited if isinstance(waited, ray.ObjectRef) else waited.ready.remote()

    def ready(self, handles: dict[str, Any], what: str) -> None:
        """Wait until every actor (or call) answers and every lease is granted.

        A clear error when Ray cannot do so in ``ready_timeout``.
        """
        import ray

        timeout = self.settings.ready_timeout
        leases = {name: h for name, h in handles.items() if isinstance(h, ShareLease)}
        refs = {name: self.ready_ref(h) for name, h in handles.items() if name not in leases}
        for name, held in leases.items():
            if not held.granted(timeout):
                raise EkyaError(f"{what}: Ray could not reserve {held.quantity:g} of {held.resource} for {name} within "
                                f"runtime.ready_timeout={timeout:g}s; free resources now: "
                                f"{ray.available_resources()}; another job may hold the accelerator")
            self.placed[name] = held.where()
        ready, pending = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout)
        if pending:
            name = next(n for n, r in refs.items() if r in pending)
            raise EkyaError(f"{what}: Ray could not start {name} within runtime.ready_timeout={timeout:g}s; "
                            f"free resources now: {ray.available_resources()}; another job may hold the accelerator")
        for name, ref in refs.items():
            self.placed[name] = ray.get(ref)

    def new_server(self, cam: str, acc: Accelerator, share: float, spare: bool = False) -> Server:
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
        job = self._name(cam, "infer")
        if self.settings.device == "cpu":
            taken = self.take_spare(acc) if spare else None
            handle = taken if taken is not None else self.start_inference(acc)
            try:
                lease = self.new_lease(cam, acc, share)  # refuses an over-commitment before anything changes
            except EkyaError:
                self.spares.setdefault(acc.node, []).insert(0, Spare(handle, handle.ready.remote()))
                raise
            adopted = handle.adopt.remote(self.weights[cam], self.version(cam), share)
            return Server(handle, acc, share, job, self.version(cam), base=0.0, leases=[lease],
                          waits={job: adopted, lease.job: lease.handle})
        opts = self.options(acc, job, share)
        handle = _actors().InferenceActor.options(**opts).remote(
            self.shipped_learner(), self.weights[cam], self.version(cam), share, self.settings.batch_size, False)
        return Server(handle, acc, share, job, self.version(cam), base=share, waits={job: handle})

    def start_job(self, cam: str, k: int, acc: Accelerator, share: float, config: str) -> Job:
        """A camera's retraining actor for window ``k``, booked at ``share`` of ``acc`` (its job is launched later)."""
        name = f"{cam}/train#{k}"
        opts = self.options(acc, name, share)
        handle = _actors().RetrainActor.options(**opts).remote(
            share, self.settings.device == "cpu", self.shipped_learner())
        job = Job(handle, acc, share, name, config)
        self.jobs[cam] = job
        return job

    # -- spares --------------------------------------------------------------------------------------

    def start_inference(self, acc: Accelerator) -> Any:
        """A CPU inference process with no weights and no booking, on the node of ``acc`` (it does not wait for it)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node_id = self.node_id(acc)
        if node_id is None:
            raise EkyaError(f"accelerator {acc.resource} is not in the Ray cluster: its node left; resume the run "
                            "once it is back, or drop it from runtime.nodes")
        return _actors().InferenceActor.options(
            num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)).remote(
            self.shipped_learner(), None, -1, 1.0, self.settings.batch_size, True)

    def fill_spares(self) -> None:
        """Start spares until every node still in the cluster has ``runtime.spares`` (not waiting for them).

        Called before the first window and after each one, never while a window plays: a process
        start there would take the CPU the window's jobs are running on.
        """
        if self.settings.spares <= 0:
            return
        self.poll()  # between windows: a node may have left since the last look
        for acc in self.accelerators:
            pool = self.spares.setdefault(acc.node, [])
            while len(pool) < self.settings.spares and self.alive(acc):
                handle = self.start_inference(acc)
                pool.append(Spare(handle, handle.ready.remote()))

    def take_spare(self, acc: Accelerator) -> Any | None:
        """A spare of ``acc``'s node: one already up if any, else the one started first; None when there is none."""
        import ray

        pool = self.spares.get(acc.node, [])
        while pool:
            up = [i for i, spare in enumerate(pool) if ray.wait([spare.ready], timeout=0)[0]]
            handle, ref = pool.pop(up[0] if up else 0)
            if not up:
                return handle  # still starting: ahead of a new process all the same
            try:
                ray.get(ref)
                return handle
            except ray.exceptions.RayActorError as e:
                log.debug("a spare on node %s died idle (%s): taking the next", acc.node, type(e).__name__)
        return None

    def stop_spares(self) -> None:
        """End every spare (they do no work: gracefully, not waiting for those still starting)."""
        for pool in self.spares.values():
            for spare in pool:
                spare.handle.retire.remote()
        self.spares = {}

    # -- changing and ending ---------------------------------------------------------------------

    def in_place(self, server: Server, share: float) -> bool:
        """Whether a share change of this actor can be made in place: CPU (a duty cycle), not below its own booking."""
        s = self.settings
        return s.device == "cpu" and s.share_change == "auto" and share >= server.base - EPS

    def new_lease(self, cam: str, acc: Accelerator, share: float) -> Lease:
        """Ask Ray for a lease of ``share`` of ``acc`` (booked in the ledger first)."""
        return self.leases.request(self._name(cam, "lease"), acc, share)

    def drop_leases(self, server: Server) -> None:
        """Free every lease of an inference actor (once the actor no longer uses what they hold)."""
        for lease in server.leases:
            self.leases.end(server.acc, lease)
        server.leases = []

    def release(self, server: Server) -> None:
        """Free every booking of an inference actor that serves no more (it died, or was handed off)."""
        self.ledger.release(server.acc, server.job)
        self.drop_leases(server)

    def retire(self, server: Server) -> None:
        """Free an idle or handed-off inference actor's bookings.

        Keep it as a spare if its node wants one, else end it gracefully.
        """
        import ray

        pool = self.spares.setdefault(server.acc.node, [])
        if self.settings.device == "cpu" and server.base <= 0.0 and len(pool) < self.settings.spares:
            self.release(server)  # it serves nothing now: its share goes back at once
            pool.append(Spare(server.handle, server.handle.ready.remote()))
            return
        ref = server.handle.retire.remote()
        try:
            ray.get(ref, timeout=self.settings.ready_timeout)
        except ray.exceptions.RayActorError:
            pass  # retire ends the process: the call's answer is the actor's death, as asked
        self.release(server)

    def end_job(self, job: Job, running: bool) -> str | None:
        """Free a retraining actor: gracefully when its job returned; a job still running is stopped.

        Returns why the actor may outlive its booking (None once it is gone): its ledger booking is
        freed either way, so Ray may refuse the next actor placed there.
        """
        import ray

        if running and self.settings.device == "cuda":
            # never signal-kill an MPS client with GPU work in flight: let the job end, discard it
            try:
                ray.get(job.ref)
            except ray.exceptions.RayError as e:
                log.debug("%s, discarded at the window end, failed (%s)", job.job, type(e).__name__)
            job.handle.__ray_terminate__.remote()
        elif running:
            ray.kill(job.handle, no_restart=True)
        else:
            job.handle.__ray_terminate__.remote()
        lingers = self.wait_gone(job.handle, job.job)
        self.ledger.release(job.acc, job.job)
        return lingers

    def wait_gone(self, handle: Any, name: str) -> str | None:
        """Wait (up to ``ready_timeout``) for an ended actor to be gone; why it is not, logged as a warning, or None."""
        import ray

        timeout = self.settings.ready_timeout
        deadline = time.monotonic() + timeout
        why = f"still answering after {timeout:g} s"
        while time.monotonic() < deadline:
            try:
                ray.get(handle.ready.remote(), timeout=timeout)
            except ray.exceptions.RayActorError:
                return None
            except ray.exceptions.GetTimeoutError:
                why = f"no answer within {timeout:g} s, neither alive nor gone"
                break
            time.sleep(0.05)
        log.warning("%s was ended but is %s: it may still hold its share of the accelerator", name, why)
        return why

    def close(self) -> None:
        """End every actor, lease and spare of the run."""
        import ray

        for job in list(self.jobs.values()):
            if self.settings.device != "cuda":
                ray.kill(job.handle, no_restart=True)
            self.ledger.release(job.acc, job.job)
        self.jobs = {}
        self._learner_ref = None  # owned by this driver's Ray session, which may end after this
        for server in list(self.servers.values()):
            try:
                ray.get(server.handle.retire.remote(), timeout=self.settings.ready_timeout)
            except ray.exceptions.RayError as e:
                # retire's answer is the actor's death when it exits as asked; anything else is logged
                if not isinstance(e, ray.exceptions.RayActorError):
                    log.debug("closing: %s did not retire cleanly (%s)", server.job, type(e).__name__)
            self.release(server)
        self.servers = {}
        self.leases.end_all()  # leases a change in flight had asked for
        if self.spares:
            self.stop_spares()
