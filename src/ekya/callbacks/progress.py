"""Progress a person can see: a line per played window with what the scheduler decided, and the slow starts.

Lines go to stderr (never stdout, where the summary table is). ``show: auto`` prints them on a
terminal and keeps pipes, CI logs and tests quiet (there they are logged at INFO, shown by
``log_level=info``); ``on`` prints them anywhere, ``off`` never.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig

from ekya.errors import EkyaError
from ekya.execution.hooks import Callback, RunContext
from ekya.execution.runtime import WindowResult
from ekya.results.records import WindowRecord

log = logging.getLogger("ekya.progress")

#: what ``show`` may be; YAML reads a bare on/off as a boolean, so those count too
_SHOW = {"auto": "auto", "on": "on", "true": "on", "off": "off", "false": "off"}


def _mean(values: Sequence[float]) -> float:
    finite = [float(v) for v in values if not math.isnan(float(v))]
    return sum(finite) / len(finite) if finite else math.nan


def _frames(records: Sequence[WindowRecord]) -> str | None:
    """The window's frames classified, skipped and lost over its cameras (runtime=ray), None where not measured."""
    if all(math.isnan(r.frames_classified) for r in records):
        return None
    total = {name: round(sum(v for r in records if not math.isnan(v := getattr(r, name))))
             for name in ("frames_classified", "frames_skipped", "frames_lost", "faults")}
    out = (f"frames {total['frames_classified']} classified, {total['frames_skipped']} skipped, "
           f"{total['frames_lost']} lost")
    return out + (f", {total['faults']} actor fault(s)" if total["faults"] else "")


def _retrained(r: WindowRecord, device: int | None, accelerators: int) -> str:
    where = f" of accelerator {device}" if device is not None and accelerators > 1 else ""
    live = "not live in the window" if math.isnan(r.completion_time) else f"live at {r.completion_time:.0f} s"
    return f"{r.stream} ({r.config}, train {r.train_share:.2f}{where}, {live})"


def window_line(result: WindowResult, scheduler: str, position: tuple[int, int] | None = None,
                seconds: float | None = None, accelerators: int = 1) -> str:
    """One played window as a line: the scheduler's decisions, mean accuracy against no retraining, frames, time."""
    records = sorted(result.records, key=lambda r: r.stream)
    plans = result.plan.by_stream()
    head = f"window {result.window}" + (f" ({position[0]}/{position[1]})" if position else "")
    retrained = [_retrained(r, getattr(plans.get(r.stream), "train_device", None), accelerators)
                 for r in records if r.config != "none"]
    parts = [f"{head}: {scheduler} retrained " + (", ".join(retrained) if retrained else "no camera")]
    served_only = sum(r.config == "none" for r in records)
    if served_only and retrained:
        parts.append(f"{served_only} camera{'s' if served_only > 1 else ''} served only")
    starved = [r.stream for r in records if r.infer_share <= 0]
    if starved:
        parts.append(f"no inference share: {', '.join(starved)}")
    parts.append(f"mean accuracy {_mean([r.accuracy for r in records]):.3f} "
                 f"(no retraining {_mean([r.noretrain_accuracy for r in records]):.3f})")
    frames = _frames(records)
    if frames:
        parts.append(frames)
    if seconds is not None:
        parts.append(f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s")
    return "; ".join(parts)


def _show(value: Any) -> str:
    key = str(value).strip().lower()
    if key not in _SHOW:
        raise EkyaError(f"callbacks.progress.show={value!r}: use auto (on a terminal only), on or off")
    return _SHOW[key]


class Progress(Callback):
    """Prints a line when data is loaded and base models are trained, and one per window after it is played."""

    order = 25  # after the checkpoint (10) restored a resumed run, before the summary table (30)

    def __init__(self, show: Any = "auto") -> None:
        self.show = _show(show)
        self._started = math.nan

    def on_screen(self) -> bool:
        """Whether lines go to stderr now: ``on``, or ``auto`` with stderr a terminal and log_level not error."""
        if self.show != "auto":
            return self.show == "on"
        quiet = logging.getLogger("ekya").getEffectiveLevel() > logging.WARNING
        return not quiet and sys.stderr is not None and sys.stderr.isatty()

    def say(self, line: str) -> None:
        """Print ``line`` on stderr when on screen, else log it at INFO (``log_level=info`` shows it)."""
        if self.on_screen():
            from tqdm.auto import tqdm

            tqdm.write(line, file=sys.stderr)  # above any progress bar, which redraws below it
        elif self.show == "auto":
            log.info(line)

    def building(self, part: str, cfg: DictConfig) -> None:
        """Before the composition root builds ``part``: name the slow ones (loading or generating data)."""
        if part != "stream_set":
            return
        dataset = cfg.get("dataset") or {}
        name, root = dataset.get("name", "?"), dataset.get("root", "?")
        first = " (generated there on first use, a few seconds)" if "synthetic" in str(dataset.get("_target_")) else ""
        self.say(f"data: loading dataset {name!r} from {root}{first}")

    def on_run_start(self, run: RunContext) -> None:
        """Say how the run starts: resumed at a window, or the Ray cluster and base models on their way."""
        rt = run.runtime
        if run.tags.get("runtime") == "ray":
            address = getattr(rt, "address", None)
            self.say(f"ray: joining the cluster at {address}" if address else "ray: starting a local cluster")
        if run.next_window is not None:  # the checkpoint (order 10) restored a saved run
            left = sum(w >= run.next_window for w in rt.windows)
            self.say(f"resuming at window {run.next_window}: {left} of {len(rt.windows)} windows left to play")
        elif hasattr(rt, "cached_base_models"):  # emulate and ray: a base model per camera first
            cached = rt.cached_base_models()
            train = len(rt.streams) - len(cached)
            said = [f"training {train} on window 0" if train else "",
                    f"loading {len(cached)} from runtime.base_cache" if cached else ""]
            self.say(f"base models: {' and '.join(s for s in said if s)} ({len(rt.streams)} cameras)")

    def on_window_start(self, run: RunContext, window: int) -> None:
        """Start the window's clock."""
        self._started = time.perf_counter()

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """The window's line: what the scheduler decided, and the accuracy it gave."""
        rt = run.runtime
        position = (rt.windows.index(result.window) + 1, len(rt.windows)) if result.window in rt.windows else None
        seconds = time.perf_counter() - self._started if not math.isnan(self._started) else None
        self.say(window_line(result, rt.scheduler.name, position, seconds, int(rt.budget.accelerators)))


def preparing(callbacks: Mapping[str, Callback], cfg: DictConfig) -> Callable[[str], None] | None:
    """What the composition root calls before building each part, where a Progress callback is configured."""
    shown = [cb for cb in callbacks.values() if isinstance(cb, Progress)]
    if not shown:
        return None

    def before(part: str) -> None:
        for cb in shown:
            cb.building(part, cfg)

    return before
