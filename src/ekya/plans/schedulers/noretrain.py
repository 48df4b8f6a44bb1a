"""noretrain: never retrain; the accelerators are split evenly over the inference jobs."""

from __future__ import annotations

from collections.abc import Sequence

from ekya.plans.packing import slice_units
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.plan_building import check_inputs, predict_fixed, units_plan
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import StreamProfile


class NoRetrainScheduler(Scheduler):
    """All capacity to inference, as evenly as whole quanta of Delta allow (``slice_units``), <= 1 accelerator each."""

    name = "noretrain"
    needs_profiles = False

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Even inference split in quanta, no retraining."""
        check_inputs(profiles, budget)
        units = slice_units([None] * len(profiles), budget)
        names = [p.stream for p in profiles]
        return predict_fixed(profiles, units_plan(names, [None] * len(profiles), units, budget), budget)
