"""How a job holding share s of one accelerator is kept to s: a CPU duty cycle, or MPS on NVIDIA GPUs.

Ray's fractional resources are bookkeeping only, so the share is enforced in the worker itself.

**CPU (logical accelerators).** One logical accelerator is one CPU core's worth of work, and every
job runs torch on ``CPU_THREADS_PER_JOB`` = 1 thread: a share never exceeds one accelerator (a job
never spans two), so one thread can use all of it, and more threads would let a small share burst
onto several cores at once. The share is a duty cycle on that thread: after each unit of work
(an inference batch: ``with cycle.unit()``; ~20 ms of training: ``paced_training``) that held the
accelerator for b wall seconds, the worker rests b·(1-s)/s seconds, so it is busy at most a
fraction s of wall time. Owed rest below ``slack_seconds`` is deferred (short units
do not each pay a sleep at the kernel's granularity), and idle time (waiting for frames) is banked
as credit of at most ``slack_seconds``, so bursts average out but cannot exceed the share for long:
over any interval of T seconds the busy time is at most s·(T + 2·slack) plus the unit in progress.
A node should declare no more logical accelerators than it has cores, or the shares cannot all be
delivered at once.

**NVIDIA GPUs (MPS).** ``gpu_env`` gives the environment an actor's ``runtime_env`` carries: the
physical GPU, the MPS thread percentage (fixed when the process starts, so a share change needs a
new process) and the MPS pipe and log directories of the daemon ``scripts/mps.sh`` starts.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ekya.errors import EkyaError

#: torch intra-op threads of every job on a logical (CPU) accelerator; see the module docstring
CPU_THREADS_PER_JOB = 1
#: where scripts/mps.sh keeps the MPS daemon's pipe and log directories, relative to the project
#: directory (the working directory), unless EKYA_MPS_DIR names another
DEFAULT_MPS_DIR = ".ekya/mps"


def check_share(share: float) -> float:
    """The share as a float, or an EkyaError unless 0 < share <= 1 (a job never spans two accelerators)."""
    s = float(share)
    if not (0.0 < s <= 1.0) or math.isnan(s):
        raise EkyaError(f"accelerator share must be in (0, 1] (a job never spans two accelerators), got {share!r}")
    return s


@dataclass
class DutyCycle:
    """Keeps one worker thread busy at most a fraction ``share`` of wall time (see the module docstring).

    Wrap every unit of work in ``with cycle.unit(): ...``; the rest it owes is taken on leaving.
    ``clock`` and ``sleep`` are injectable so the rule can be checked on a virtual clock.
    """

    share: float
    slack_seconds: float = 0.05
    clock: Callable[[], float] = time.perf_counter
    sleep: Callable[[float], None] = time.sleep
    #: wall seconds spent inside units of work, and resting, since the first unit started
    busy_seconds: float = field(default=0.0, init=False)
    rest_seconds: float = field(default=0.0, init=False)
    _owed: float = field(default=0.0, init=False, repr=False)  # rest owed; negative = banked credit
    _first: float | None = field(default=None, init=False, repr=False)
    _last: float | None = field(default=None, init=False, repr=False)  # when the last unit (and its rest) ended

    def __post_init__(self) -> None:
        self.share = check_share(self.share)
        if not (self.slack_seconds >= 0 and math.isfinite(self.slack_seconds)):
            raise EkyaError(f"duty cycle slack must be a number of seconds >= 0, got {self.slack_seconds!r}")

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Run one unit of work, then rest as the share requires (also when the work raised)."""
        start = self.clock()
        try:
            yield
        finally:
            self.charge(start, self.clock())

    def charge(self, start: float, end: float) -> float:
        """Account work that held the accelerator from ``start`` to ``end``; rest if owed; return the rest taken."""
        busy = max(0.0, end - start)
        if self._first is None:
            self._first = start
        if self._last is not None:
            # idle time since the last unit counts as rest already taken, banked up to the slack
            self._owed -= max(0.0, start - self._last)
        self._owed = max(self._owed, -self.slack_seconds)
        self.busy_seconds += busy
        self._owed += busy * (1.0 - self.share) / self.share
        rested = 0.0
        if self._owed > 0 and self._owed >= self.slack_seconds:
            t0 = self.clock()
            self.sleep(self._owed)
            rested = max(0.0, self.clock() - t0)
            self._owed -= rested  # an oversleep becomes credit (bounded above on the next unit)
            self.rest_seconds += rested
        self._last = self.clock()
        return rested

    def busy_fraction(self) -> float:
        """Busy wall time over wall time since the first unit started (nan before any unit ended)."""
        if self._first is None or self._last is None:
            return math.nan
        elapsed = self._last - self._first
        return self.busy_seconds / elapsed if elapsed > 0 else math.nan


@contextmanager
def paced_training(cycle: DutyCycle, unit_seconds: float = 0.02) -> Iterator[DutyCycle]:
    """Hold the training inside the block (``learner.retrain(...)``, unchanged) to the cycle's share.

    The work is cut into units at torch module calls: once ``unit_seconds`` have passed since the
    unit began, the next module call ends it and takes its rest, so even one long optimizer step
    never runs at full speed for long; the time after the last cut is charged on leaving. The hook
    is process-wide, so one training job per process (a retraining actor).
    """
    start = cycle.clock()
    if cycle.share >= 1.0:  # nothing to enforce: one unit, no hook on every module call
        try:
            yield cycle
        finally:
            cycle.charge(start, cycle.clock())
        return
    from torch.nn.modules.module import register_module_forward_pre_hook

    def cut(*_: object) -> None:
        nonlocal start
        now = cycle.clock()
        if now - start >= unit_seconds:
            cycle.charge(start, now)
            start = cycle.clock()

    handle = register_module_forward_pre_hook(cut)
    try:
        yield cycle
    finally:
        handle.remove()
        cycle.charge(start, cycle.clock())


# -- NVIDIA MPS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MpsDirs:
    """The MPS daemon's pipe and log directories (absolute: Ray workers may start elsewhere)."""

    pipe: Path
    log: Path


def mps_dirs(root: str | os.PathLike[str] | None = None) -> MpsDirs:
    """The pipe and log directories scripts/mps.sh uses under ``root`` (default: $EKYA_MPS_DIR or ./.ekya/mps)."""
    base = Path(root if root is not None else os.environ.get("EKYA_MPS_DIR") or DEFAULT_MPS_DIR)
    base = base.expanduser().resolve()
    return MpsDirs(pipe=base / "pipe", log=base / "log")


def mps_percentage(share: float) -> int:
    """The MPS active-thread percentage for a share: whole percent rounded down (never above the
    share, so no GPU is over-committed), at least 1 (MPS rejects 0) and at most 100."""
    s = check_share(share)
    # the epsilon keeps 0.29 (28.999999999999996 %) at 29
    return max(1, min(100, math.floor(s * 100.0 + 1e-9)))


def gpu_env(share: float, device_index: int, pipe_dir: str | os.PathLike[str],
            log_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The ``runtime_env["env_vars"]`` of an actor holding ``share`` of physical GPU ``device_index`` under MPS.

    ``log_dir`` defaults to the ``log`` directory beside ``pipe_dir`` (the layout of scripts/mps.sh).
    The variables are in the worker's environment before its first instruction, so before CUDA starts.
    """
    if isinstance(device_index, bool) or int(device_index) != device_index or int(device_index) < 0:
        raise EkyaError(f"GPU index must be an integer >= 0, got {device_index!r}")
    pipe = Path(pipe_dir).expanduser().resolve()
    log = Path(log_dir).expanduser().resolve() if log_dir is not None else pipe.parent / "log"
    return {
        "CUDA_VISIBLE_DEVICES": str(int(device_index)),
        "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": str(mps_percentage(share)),
        "CUDA_MPS_PIPE_DIRECTORY": str(pipe),
        "CUDA_MPS_LOG_DIRECTORY": str(log),
    }
