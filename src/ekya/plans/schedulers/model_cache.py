"""model_cache: the paper's model-cache baseline (section 6.4, Fig. 12), and the cached-model configs.

A cached model is offered to a scheduler as a config named ``cache:w<i>`` (``cache:<camera>:w<i>``
for another camera's model) with cost 0 and ``observables`` saying what is known of the data it
was trained on: ``window`` (i: it was trained on window i's pool, so it exists from window i + 1
on; the base model is ``w0``), ``camera``, and ``class_distribution`` / ``object_count`` /
``time_of_day`` / ``location`` where measured. The stream's own ``observables`` describe the
window as its start shows it (its ``window`` index and the previous chunk's teacher labels).

``ModelCacheScheduler`` never retrains: all accelerators go to inference (an exact even split, as
noretrain) and each stream's model is replaced by the cached model the heuristic picks, chosen only
among models of *earlier* windows. The pick needs the previous chunk's teacher labels, which are
ready at the label delay, so the picked model goes live then (a zero-cost job). Heuristics (the
paper's four): ``class_distribution`` (closest normalised class histogram, Euclidean),
``time_of_day`` and ``location`` (same value), ``object_count`` (closest objects per second).
Ties and misses (no such observable, no match) fall back to the closest class histogram, then to
the most recent model. ``oracle_accuracies`` gives the upper bound: the best candidate chosen after
the fact, on the live data.

The runtime builds the cache a scheduler asks for through ``cache_request`` (a ``CacheRequest``).
Torch-free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ekya.configspace import CACHE_PREFIX, is_cached
from ekya.errors import EkyaError
from ekya.plans.playback import play_window
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.plan_building import check_inputs, pack_even
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import ConfigProfile, StreamProfile

HEURISTICS = ("class_distribution", "time_of_day", "object_count", "location")
SOURCES = ("pretrained", "served")
# object counts closer than this (objects per second) count as a tie
_COUNT_TIE = 1e-9


@dataclass(frozen=True)
class CacheRequest:
    """The cached-model configs a scheduler wants the runtime to offer.

    source: "pretrained" (an offline, seeded pass retrains each camera's model of window i with
        ``config`` on window i's pool; not charged to any window, as the paper pre-trained its
        cache) or "served" (the base model and every model that went live in this run).
    cross_camera: also offer the other cameras' models (default: the camera's own only).
    config: the pretrained pass's retraining config (None: the configspace's first).
    measure: tell the scheduler each candidate's teacher-labelled validation accuracy on the
        window's validation set (the evaluation passes are charged as profiling cost).
    oracle: the runtime reports the best candidate chosen after the fact (``oracle_accuracy``).
    """

    source: str
    cross_camera: bool = False
    config: str | None = None
    measure: bool = False
    oracle: bool = False


def cache_name(window: int, camera: str | None = None) -> str:
    """The config name of the cached model trained on window ``window``'s pool (another camera's if given)."""
    return f"{CACHE_PREFIX}w{int(window)}" if camera is None else f"{CACHE_PREFIX}{camera}:w{int(window)}"


def cache_request(scheduler: Any) -> CacheRequest | None:
    """The scheduler's cache request, or None when it wants no cached models."""
    return getattr(scheduler, "cache_request", None)


def cached_configs(p: StreamProfile) -> list[ConfigProfile]:
    """The stream's cached-model configs."""
    return [c for c in p.configs if is_cached(c.config)]


def without_cache(profiles: Sequence[StreamProfile]) -> Sequence[StreamProfile]:
    """The profiles without cached-model configs (the very same sequence when none has any)."""
    if not any(is_cached(c.config) for p in profiles for c in p.configs):
        return profiles
    return [replace(p, configs=tuple(c for c in p.configs if not is_cached(c.config))) for p in profiles]


def source_window(c: ConfigProfile) -> int:
    """The window whose pool trained a cached model (EkyaError when the profile does not say)."""
    w = c.observables.get("window")
    if w is None:
        raise EkyaError(f"cached config {c.config!r} has no observables.window (the window whose pool trained "
                        "it); a profile set's cached configs must carry it")
    return int(w)


def current_window(p: StreamProfile, fallback: int | None) -> int:
    """The window a stream profile is for: its observables' ``window``, else the runtime's index."""
    w = p.observables.get("window", fallback)
    if w is None:
        raise EkyaError(f"stream {p.stream!r}: the window index is unknown (no observables.window and no "
                        "start_window call), so earlier-window models cannot be told apart")
    return int(w)


def earlier(p: StreamProfile, fallback: int | None = None) -> list[ConfigProfile]:
    """The stream's cached models from windows before the current one: the only ones a pick may use."""
    now = current_window(p, fallback)
    return [c for c in cached_configs(p) if source_window(c) < now]


def class_distance(a: Any, b: Any) -> float:
    """Euclidean distance of two normalised class histograms (inf when either is unknown)."""
    if a is None or b is None:
        return math.inf
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.size == 0:
        raise EkyaError(f"class distributions of different lengths ({x.size} vs {y.size}) cannot be compared")
    return float(np.linalg.norm(x / max(x.sum(), 1e-12) - y / max(y.sum(), 1e-12)))


def select(current: Mapping[str, Any], candidates: Sequence[ConfigProfile], heuristic: str) -> str | None:
    """The candidate the heuristic picks (None when there is none); ties and misses as the module doc says."""
    if heuristic not in HEURISTICS:
        raise EkyaError(f"scheduler.heuristic={heuristic!r}: use one of {list(HEURISTICS)}")
    if not candidates:
        return None
    pool = list(candidates)
    if heuristic in ("time_of_day", "location"):
        want = current.get(heuristic)
        same = [c for c in pool if want is not None and c.observables.get(heuristic) == want]
        pool = same or pool
    elif heuristic == "object_count" and current.get("object_count") is not None:
        want = float(current["object_count"])
        gap = [abs(float(c.observables["object_count"]) - want) if c.observables.get("object_count") is not None
               else math.inf for c in pool]
        best = min(gap)
        if math.isfinite(best):
            pool = [c for c, g in zip(pool, gap) if g <= best + _COUNT_TIE]
    here = current.get("class_distribution")
    # closest class histogram, then the most recent window, then the name (a total order: deterministic)
    return min(pool, key=lambda c: (class_distance(here, c.observables.get("class_distribution")),
                                    -source_window(c), c.config)).config


class ModelCacheScheduler(Scheduler):
    """No retraining; each stream switches to the cached model of an earlier window that the heuristic picks."""

    name = "model_cache"
    needs_profiles = False

    def __init__(self, heuristic: str = "class_distribution", cross_camera: bool = False,
                 cache_config: str | None = None) -> None:
        if heuristic not in HEURISTICS:
            raise EkyaError(f"scheduler.heuristic={heuristic!r}: use one of {list(HEURISTICS)}")
        self.heuristic = heuristic
        self.cross_camera = bool(cross_camera)
        self.cache_config = None if cache_config in (None, "") else str(cache_config)
        self.window: int | None = None

    @property
    def cache_request(self) -> CacheRequest:
        """An offline-pretrained cache, no validation passes, and the after-the-fact upper bound."""
        return CacheRequest("pretrained", self.cross_camera, self.cache_config, measure=False, oracle=True)

    def start_window(self, index: int) -> None:
        """Remember the window index (used when profiles do not carry observables.window)."""
        self.window = int(index)

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """An even inference split; each stream's picked cached model goes live at the label delay."""
        check_inputs(profiles, budget)
        share = min(1.0, budget.capacity / len(profiles))
        packed = pack_even([StreamPlan(p.stream, None, share, 0.0) for p in profiles], budget)
        by = {p.stream: p for p in profiles}
        out = []
        for sp in packed.streams:
            p = by[sp.stream]
            pick = select(p.observables, earlier(p, self.window), self.heuristic)
            if pick is None:
                raise EkyaError(f"scheduler=model_cache: stream {p.stream!r} has no cached model of an earlier "
                                f"window in window {current_window(p, self.window)}; in simulate, use a profile "
                                "set written by scheduler=model_cache callbacks=[default,profile_all]")
            out.append(replace(sp, config=pick))
        return Plan(tuple(out))


def oracle_accuracies(plan: Plan, truth: Sequence[StreamProfile], told: Sequence[StreamProfile], budget: Budget,
                      scheduler: Scheduler, checks: Sequence[float] = (),
                      window: int | None = None) -> dict[str, float]:
    """Per stream, the window accuracy of the best earlier-window cached model, chosen after the fact.

    Every candidate the stream was offered is played in the plan's place (same shares, swapped in
    at the label delay) against the truth; NaN for a stream with no candidate.
    """
    offered = {p.stream: [c.config for c in earlier(p, window)] for p in told}
    best = {sp.stream: math.nan for sp in plan.streams}
    for j in range(max((len(v) for v in offered.values()), default=0)):
        trial = [replace(sp, config=offered[sp.stream][j]) if j < len(offered.get(sp.stream, ())) else sp
                 for sp in plan.streams]
        out = play_window(Plan(tuple(trial)), truth, budget, scheduler, predicted=told, checks=checks)
        for sp in plan.streams:
            if j < len(offered.get(sp.stream, ())):
                a = out.streams[sp.stream].accuracy
                best[sp.stream] = a if math.isnan(best[sp.stream]) else max(best[sp.stream], a)
    return best
