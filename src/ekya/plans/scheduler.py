"""The scheduler interface: plan a window, and re-plan the rest of it as retraining jobs progress.

A scheduler is a small object configured by its constructor (so Hydra can ``instantiate`` it from a
YAML with ``_target_``). ``plan`` is a pure function of (profiles, budget); ``on_completion`` (a job
finished) and ``on_progress`` (a periodic check of running jobs) receive a ``WindowState``
snapshot of what a deployed system can observe and return the new shares of every stream.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from ekya.plans.quanta import EPS
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import StreamProfile

# New shares per stream: stream name -> (infer_share, train_share).
Shares = dict[str, tuple[float, float]]


@dataclass
class StreamState:
    """One stream at an instant of the window (the executor owns it; schedulers only read it).

    accuracy: the observable full-share accuracy of the model serving now: its teacher-labelled
        validation accuracy (the new model's once its job is done), never live ground truth.
    config / target_accuracy / remaining: the window's retraining job (None / NaN / 0 when none);
        target_accuracy is the *predicted* accuracy of the job's model, remaining the
        accelerator-seconds of work left as the job's progress shows it (the prediction before it
        has made any progress).
    done: True once the job has completed or when the stream has no job; a done stream's
        training share must be 0 after re-planning.
    """

    stream: str
    accuracy: float
    infer_share: float
    train_share: float
    config: str | None = None
    target_accuracy: float = float("nan")
    remaining: float = 0.0
    done: bool = True
    infer_device: int | None = None
    train_device: int | None = None


@dataclass
class WindowState:
    """Snapshot passed to ``on_completion`` / ``on_progress``: time since the window start and every stream's state.

    ``completed`` names the stream whose job just finished (None at a progress check); its entry
    has done=True and still carries the training share that is now free.
    """

    now: float
    completed: str | None
    streams: list[StreamState] = field(default_factory=list)

    def by_stream(self) -> Mapping[str, StreamState]:
        """Stream states keyed by stream name."""
        return {s.stream: s for s in self.streams}


def give_to_inference(state: WindowState, budget: Budget, fair: bool) -> Shares:
    """Hand the completed job's share to inference on the device it freed.

    fair=False (the default rule): the stream's own inference gets it when both jobs share a
    device (always the case when they fit on one, see packing); fair=True (the original's
    fair_reallocation): it is split evenly over the inference jobs on that device. If the stream's
    inference sits on another device, the freed share goes to that device's inference jobs, since
    a job cannot span two accelerators. An even split need not be a multiple of delta (as in the
    original); the own-inference rule keeps shares multiples of delta.
    """
    shares: Shares = {s.stream: (s.infer_share, 0.0 if s.done else s.train_share) for s in state.streams}
    assert state.completed is not None, "called when a job completes, so a stream has completed"
    done = state.by_stream()[state.completed]
    freed = done.train_share
    if freed <= EPS:
        return shares
    dev = done.train_device
    same = dev is None or done.infer_device is None or done.infer_device == dev
    if same and not fair:
        receivers = [done]
    else:
        receivers = [s for s in state.streams if (dev is None or s.infer_device == dev) and s.infer_share > EPS]
        if dev is not None and done.infer_device == dev and done not in receivers:
            receivers.append(done)
    if not receivers:
        return shares  # nothing on that device can use it; it stays idle
    gifts = [freed / len(receivers)] * len(receivers)
    for s, g in zip(receivers, gifts):
        i, r = shares[s.stream]
        shares[s.stream] = (min(1.0, i + g), r)
    return shares


class Scheduler(ABC):
    """Base class of every scheduler: ``plan`` at window start, ``on_completion`` when a job finishes."""

    #: the run's name and MLflow tag; a class default an instance may refine (thief's ablation cells)
    name: str = "base"
    # False for schedulers that never read predicted accuracies (they accept NaN accuracies).
    needs_profiles: ClassVar[bool] = True

    @abstractmethod
    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Configs and shares for every stream for the window; the plan must be packed."""

    def on_completion(self, state: WindowState, budget: Budget) -> Shares:
        """New shares of every stream after ``state.completed``'s job finished (default: own inference)."""
        return give_to_inference(state, budget, fair=False)

    def on_progress(self, state: WindowState, budget: Budget) -> Shares | None:
        """New shares at a periodic progress check, or None to keep them (default: keep)."""
        return None

    def start_window(self, index: int) -> None:  # noqa: B027 - optional hook: only replay needs the index
        """Called by executors before ``plan`` with the window's index (replay uses it; default: ignore)."""
