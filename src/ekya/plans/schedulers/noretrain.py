"""noretrain: never retrain; the accelerators are split evenly over the inference jobs."""

from __future__ import annotations

from typing import Sequence

from ekya.plans.budget import even_units, units_per_accelerator
from ekya.plans.packing import pack
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.common import check_inputs, predict_fixed, total_units
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile


class NoRetrainScheduler(Scheduler):
    """All capacity to inference, even split in quanta (the first streams get the remainder), <= 1 each."""

    name = "noretrain"
    needs_profiles = False

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Even inference split, no retraining."""
        check_inputs(profiles, budget)
        units = even_units(total_units(budget), len(profiles), units_per_accelerator(budget.delta))
        streams = tuple(StreamPlan(p.stream, None, u * budget.delta, 0.0) for p, u in zip(profiles, units))
        return predict_fixed(profiles, pack(Plan(streams), budget), budget)
