"""The interface every runtime implements, so one window loop drives simulate and emulate alike."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ekya.errors import EkyaError
from ekya.plans.scheduler import Scheduler
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import StreamProfile
from ekya.results import schema
from ekya.results.continual import AccuracyMatrix
from ekya.results.records import WindowRecord
from ekya.streams.windows import WindowCut

if TYPE_CHECKING:  # both train models (torch); a runtime that replays profiles never imports them
    from ekya.execution.model_store import ModelStore
    from ekya.execution.retraining import RetrainingService


@dataclass(frozen=True)
class WindowSettings(WindowCut):
    """The ``window:`` group: how a stream is cut into retraining windows (``WindowCut``) and how each is played.

    Every key comes from the config (``window:`` in conf/config.yaml, where each is defined and
    documented once); ``ekya.composition.window_settings`` reads the group into this value. It is the
    cut the runtimes hand to ``cut_windows`` as it is, so the keys are checked once, here.
    """

    label_delay: float
    carry_over: bool
    segments: int
    forgetting: bool

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (math.isfinite(self.seconds) and 0 <= self.label_delay <= self.seconds):
            raise EkyaError(f"window.label_delay={self.label_delay}: must be in [0, window.seconds]")
        if int(self.segments) != self.segments or self.segments < 1:
            raise EkyaError(f"window.segments={self.segments}: must be an integer >= 1 (1 = score each model on "
                            "the whole window)")


@dataclass
class WindowResult:
    """What playing one window produced: a record per stream, the initial plan and the profiles it was made on."""

    window: int
    records: list[WindowRecord]
    plan: Plan
    told: list[StreamProfile] = field(default_factory=list)


class Runtime(ABC):
    """Plays windows one after another; its state between windows must survive a restart."""

    #: stream (camera) names, in a fixed order
    streams: list[str]
    #: the window indices this run plays, in order
    windows: list[int]
    #: the scheduler that plans every window
    scheduler: Scheduler
    #: the accelerators, window and curves every plan is made for
    budget: Budget
    #: what the run plays on (a dataset's or a profile set's name): names the MLflow experiment by default
    source: str
    #: what the run trains on and its retraining jobs, where the runtime trains for real; None where it
    #: replays measured profiles
    retraining: RetrainingService | None = None
    #: the cached models the scheduler asks for (``cache_request``), where the runtime keeps them; else None
    model_store: ModelStore | None = None

    @classmethod  # noqa: B027 - optional hook: a runtime without keys of its own has nothing to check
    def check_settings(cls, **settings: Any) -> None:
        """Raise EkyaError for a bad value among the runtime's own keys (called before any part is built)."""

    @abstractmethod
    def setup(self, saved: Any | None) -> None:
        """Build models, or restore them from a snapshot taken after an earlier window."""

    @abstractmethod
    def play(self, window: int) -> WindowResult:
        """Schedule and execute one window; one record per stream."""

    @abstractmethod
    def snapshot(self) -> Any:
        """The picklable state (plain data, no live objects) needed to continue after the last played window."""

    def accuracy_matrices(self) -> dict[str, AccuracyMatrix] | None:
        """Each camera's probe-accuracy matrix so far (``ekya.results.continual``); None where no models exist."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook: most runtimes hold nothing outside the process
        """Release what the runtime holds outside this process (actors, leases); the loop calls it at every end."""

    def describe(self) -> dict[str, str]:
        """Tags that identify this runtime in the tracking store (the composition root adds the cluster's)."""
        return {schema.SCHEDULER: self.scheduler.name}
