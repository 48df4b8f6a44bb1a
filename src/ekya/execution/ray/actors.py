"""The two Ray actors of a camera: inference (serves frames, hot-swaps weights) and retraining (returns weights).

Import this module only after ``ekya.execution.ray.cluster.connect`` (it imports ray).

Weights travel as numpy arrays (``numpy_state``): a retraining actor *returns* them, so the
controller owns them (an object a worker ``ray.put``s would die with it) and the trainer can exit
at once. The inference actor is a threaded actor: ``serve`` runs the frame loop on the default
thread and reads ``self._model`` once per batch; the "control" group (one thread) loads new
weights into a standby model and swaps it in under a lock, so a swap lands between two batches
and no frame waits for it.

Spares: an inference actor started without weights books nothing and serves nothing until the
controller takes it for a camera (loading the weights, setting the share, and booking that share
with a ``lease.ShareLease`` on the accelerator's node), so a share change or a restart on CPU does
not wait for a new process to import torch.

Shares: on logical (CPU) accelerators both actors keep their thread to the share with
``share.DutyCycle`` (inference: one unit per batch; retraining: the training loop is cut into
units at module calls, at most ``UNIT_SECONDS`` long). On NVIDIA GPUs MPS enforces the share
(the actor's ``runtime_env`` carries it) and the duty cycle is off.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import ray
import torch

from ekya.execution.ray.serving import CLASSIFIED, SKIPPED
from ekya.execution.ray.share import CPU_THREADS_PER_JOB, DutyCycle, check_share

#: longest stretch of training charged as one duty-cycle unit (seconds)
UNIT_SECONDS = 0.02


def numpy_state(state: dict[str, Any]) -> dict[str, Any]:
    """A ``model_state`` dict with its weights as numpy arrays (zero-copy through Ray's object store).

    Every other entry (a learner's memory: replay buffer, iCaRL exemplars) is plain data and travels as is.
    """
    rest = {k: v for k, v in state.items() if k != "state_dict"}
    return {**rest, "weights": OrderedDict((k, v.detach().cpu().numpy()) for k, v in state["state_dict"].items())}


def torch_state(state: dict[str, Any]) -> dict[str, Any]:
    """The ``model_state`` dict back from ``numpy_state`` (copies: arrays from the object store are read-only)."""
    rest = {k: v for k, v in state.items() if k != "weights"}
    return {**rest, "state_dict": OrderedDict((k, torch.from_numpy(np.array(v))) for k, v in state["weights"].items())}


def _build(learner: Any, weights: dict[str, Any]) -> torch.nn.Module:
    """The learner's own model from shipped weights (its model class and memory included)."""
    return learner.load_model_state(torch_state(weights))


def _cycle(share: float, enforce: bool) -> DutyCycle:
    return DutyCycle(share if enforce else 1.0)


# Ray's typed overloads of ray.remote leave out concurrency_groups, which it accepts for actor classes
@ray.remote(concurrency_groups={"control": 1}, max_restarts=0)  # type: ignore[call-overload]
class InferenceActor:
    """Classifies a camera's frames in time order at its share; swaps in new weights between batches."""

    def __init__(self, learner: Any, weights: dict[str, Any] | None, version: int, share: float, batch_size: int,
                 duty_cycle: bool) -> None:
        torch.set_num_threads(CPU_THREADS_PER_JOB)
        self._learner = learner
        # no weights: a spare, started ahead so a replacement needs no process start; it gets its
        # camera's weights and share when the controller takes it (``update_weights``, ``set_share``)
        self._model = _build(learner, weights) if weights is not None else None
        self._version = int(version)
        self._lock = threading.Lock()
        self._cycle, self._enforce = _cycle(share, duty_cycle), bool(duty_cycle)
        self._batch = int(batch_size)
        self._rows: list[tuple[int, int, int, int, float]] = []
        self._rows_lock = threading.Lock()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()

    @ray.method(concurrency_group="control")
    def ready(self) -> dict[str, Any]:
        """Where the actor runs (process id and Ray node id)."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    @ray.method(concurrency_group="control")
    def warm(self, frames: np.ndarray) -> float:
        """Run the model once on a few frames (first-call costs paid before serving); the seconds it took."""
        t0 = time.perf_counter()
        assert self._model is not None, "an actor warms once it has weights (a spare after adopt)"
        with torch.no_grad():
            self._model(torch.from_numpy(np.array(frames[: self._batch])))
        return time.perf_counter() - t0

    @ray.method(concurrency_group="control")
    def update_weights(self, weights: dict[str, Any], version: int) -> float:
        """Load new weights into a standby model and swap it in between batches; the seconds the swap took."""
        t0 = time.perf_counter()
        standby = _build(self._learner, weights)
        with self._lock:
            self._model, self._version = standby, int(version)
        return time.perf_counter() - t0

    @ray.method(concurrency_group="control")
    def adopt(self, weights: dict[str, Any], version: int, share: float) -> dict[str, Any]:
        """A spare taken for a camera: its weights and share; then where it runs, as ``ready`` answers."""
        # inside the actor a @ray.method is the plain method; Ray types it as a remote method only
        self.update_weights(weights, version)  # type: ignore[operator]
        self.set_share(share)  # type: ignore[operator]
        return self.ready()  # type: ignore[operator]

    @ray.method(concurrency_group="control")
    def set_share(self, share: float) -> None:
        """Hold the duty cycle to a new share from the next unit of work on (CPU; the booking moves by leases)."""
        if self._enforce:  # under MPS the percentage is fixed per process: a change there is a new actor
            self._cycle.share = check_share(share)

    @ray.method(concurrency_group="control")
    def collect(self) -> list[tuple[int, int, int, int, float]]:
        """The (frame, kind, class, model version, wall time) rows served since the last call."""
        with self._rows_lock:
            rows, self._rows = self._rows, []
        return rows

    @ray.method(concurrency_group="control")
    def handoff(self) -> None:
        """Stop serving after the batch in progress (``serve`` then returns where the next actor takes over)."""
        self._stop.set()

    @ray.method(concurrency_group="control")
    def retire(self) -> None:
        """Finish the batch in progress, then exit the actor process gracefully (never a signal kill)."""
        self._stop.set()
        self._idle.wait()
        ray.actor.exit_actor()

    def serve(self, frames: np.ndarray, arrivals: np.ndarray, start: int, last: int,
              max_lag_wall: float) -> dict[str, Any]:
        """Serve frames ``start..`` as they arrive (see ``serving``); return where it stopped and the last result."""
        self._stop.clear()
        self._idle.clear()
        i, n, classified = int(start), len(arrivals), 0
        t_start = time.time()
        try:
            while i < n and not self._stop.is_set():
                now = time.time()
                if arrivals[i] > now:
                    time.sleep(min(arrivals[i] - now, 0.02))
                    continue
                rows = []
                while i < n and arrivals[i] <= now and now - arrivals[i] > max_lag_wall:
                    rows.append((i, SKIPPED, int(last), -1, now))
                    i += 1
                j = i
                while j < n and j - i < self._batch and arrivals[j] <= now:
                    j += 1
                if j > i:
                    with self._lock:
                        model, version = self._model, self._version
                    assert model is not None, "an actor serves once it has weights (a spare after adopt)"
                    with self._cycle.unit():
                        with torch.no_grad():
                            pred = model(torch.from_numpy(np.array(frames[i:j]))).argmax(dim=1).numpy()
                    done = time.time()
                    rows += [(i + q, CLASSIFIED, int(c), version, done) for q, c in enumerate(pred)]
                    last, classified, i = int(pred[-1]), classified + (j - i), j
                with self._rows_lock:
                    self._rows += rows
        finally:
            self._idle.set()
        return {"next": i, "last": int(last), "classified": classified, "busy_seconds": self._cycle.busy_seconds,
                "wall_seconds": time.time() - t_start}


@contextmanager
def _paced(cycle: DutyCycle) -> Iterator[None]:
    """Charge all torch module calls of this process to ``cycle`` in units of at most UNIT_SECONDS."""
    if cycle.share >= 1.0:
        yield
        return
    unit_start = [time.perf_counter()]

    def hook(module: torch.nn.Module, args: Any) -> None:
        now = time.perf_counter()
        if now - unit_start[0] >= UNIT_SECONDS:
            cycle.charge(unit_start[0], now)
            unit_start[0] = time.perf_counter()

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@ray.remote(max_restarts=0)
class RetrainActor:
    """Runs one retraining job at its share and returns the new weights (the controller owns them)."""

    def __init__(self, share: float, duty_cycle: bool, learner: Any = None) -> None:
        # ``learner``, the one the job will be called with, is unused here: unpickling it imports its modules
        # (Lightning's several seconds among them) while the process starts, before the window's clock, and
        # not inside the job, where they would count against its share of the window
        torch.set_num_threads(CPU_THREADS_PER_JOB)
        self._cycle = _cycle(share, duty_cycle)

    def ready(self) -> dict[str, Any]:
        """Where the actor runs (process id and Ray node id)."""
        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def retrain(self, learner: Any, weights: dict[str, Any], config: Any, train_df: Any, val_df: Any,
                stream_set: Any, seed: int, crops: Any = None) -> tuple[dict[str, Any], Any, float]:
        """``learner.retrain`` from the given weights: (new weights as numpy, the report, busy fraction held).

        ``crops`` (a ``CropPack``): the job's data, decoded by the controller and shipped with the
        call, so this node reads nothing from the dataset's files.
        """
        if crops is not None:
            learner.crops(stream_set).preload(crops)
        model = _build(learner, weights)
        with _paced(self._cycle):
            new, report = learner.retrain(model, config, train_df, val_df, stream_set, seed)
        return numpy_state(learner.model_state(new)), report, self._cycle.busy_fraction()

