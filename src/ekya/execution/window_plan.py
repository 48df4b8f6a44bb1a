"""A window's plan in a run that trains for real: what the scheduler is told, the budget left, the plan.

``runtime=emulate`` and ``runtime=ray`` plan every window the same way, here: each camera's serving
model is micro-profiled (when the scheduler plans on profiles) or scored on its validation samples;
the cached models a model store offers are told as configs; micro-profiling delays retraining and
shares the accelerator with inference (``window_budget``); the scheduler plans, timed
(``plan_window``). The runtimes differ only in how they then play the plan.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ekya.plans.scheduler import Scheduler
from ekya.plans.types import Budget, Plan
from ekya.profiles.microprofiler import MicroProfiler
from ekya.profiles.types import ConfigProfile, StreamProfile

if TYPE_CHECKING:  # both train models (torch)
    import torch

    from ekya.execution.model_store import ModelStore
    from ekya.execution.retraining import RetrainingService

log = logging.getLogger("ekya.plan")


@dataclass(frozen=True)
class PlannedWindow:
    """Window ``k``'s plan and what it was made from: the profiles told, profiling spent, the budget, the time."""

    k: int
    plan: Plan
    #: one profile per camera, as the scheduler was told it
    told: list[StreamProfile]
    #: camera -> accelerator-seconds (full share) its micro-profiling cost
    spent: dict[str, float]
    #: the window's budget, after micro-profiling took its part
    budget: Budget
    #: wall seconds the scheduler took to plan
    scheduler_seconds: float

    def predicted_cost(self, cam: str) -> float:
        """The cost the scheduler was told for the camera's planned job (NaN: no job)."""
        config = self.plan.by_stream()[cam].config
        return {p.stream: p for p in self.told}[cam].config(config).cost if config else math.nan


def told_profiles(service: RetrainingService, scheduler: Scheduler, models: Mapping[str, torch.nn.Module],
                  store: ModelStore | None, k: int) -> tuple[list[StreamProfile], dict[str, float]]:
    """Profiles the scheduler plans window k with (from each camera's serving model), and the profiling spent."""
    out, spent, notes = [], {}, []
    preds = service.profile_fleet(models, k) if scheduler.needs_profiles else {}
    for cam in service.cameras:
        if scheduler.needs_profiles:
            pred = preds[cam]
            out.append(pred.profile)
            spent[cam] = pred.cost
            notes += pred.notes
        else:
            start = service.val_accuracy(cam, models[cam], k)
            out.append(StreamProfile(cam, start, tuple(ConfigProfile(n, math.nan, math.nan) for n in service.space)))
            spent[cam] = 0.0
        if store is not None:  # cached models as configs; measuring them is profiling work
            out[-1], cost = store.tell(cam, out[-1])
            spent[cam] += cost
    if notes:
        n = sum(len(p.configs) for p in out)
        log.warning("window %d: %d of %d micro-profiling fits fell back to the conservative estimate "
                    "(best accuracy observed); e.g. %s", k, len(notes), n, notes[0])
    return out, spent


def window_budget(budget: Budget, profiler: MicroProfiler, profiling_cost: float) -> Budget:
    """The budget left after micro-profiling: retraining waits for it, inference shares with it."""
    if profiling_cost <= 0:
        return budget
    t = profiler.wall_seconds(profiling_cost, budget.accelerators, budget.train_rate)
    delay = min(budget.window, budget.label_delay + t)
    if delay >= budget.window:
        log.warning("micro-profiling takes %.1f s of the %.0f s window: no time is left to retrain",
                    t, budget.window)
    return dataclasses.replace(budget, label_delay=delay, profiling_seconds=delay - budget.label_delay,
                               profiling_fraction=profiler.held_fraction(budget.accelerators))


def plan_window(scheduler: Scheduler, k: int, told: list[StreamProfile], spent: dict[str, float],
                budget: Budget) -> PlannedWindow:
    """The scheduler starts window k and plans it on what it was told, timed."""
    scheduler.start_window(k)
    t0 = time.perf_counter()
    plan = scheduler.plan(told, budget)
    return PlannedWindow(k, plan, told, spent, budget, time.perf_counter() - t0)
