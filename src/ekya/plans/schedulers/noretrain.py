"""noretrain: never retrain; the accelerators are split evenly over the inference jobs."""

from __future__ import annotations

from collections.abc import Sequence

from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.plan_building import check_inputs, pack_even, predict_fixed
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile


class NoRetrainScheduler(Scheduler):
    """All capacity to inference, split exactly evenly (not in quanta), <= 1 accelerator each."""

    name = "noretrain"
    needs_profiles = False

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Even inference split, no retraining."""
        check_inputs(profiles, budget)
        share = min(1.0, budget.capacity / len(profiles))
        streams = [StreamPlan(p.stream, None, share, 0.0) for p in profiles]
        return predict_fixed(profiles, pack_even(streams, budget), budget)
