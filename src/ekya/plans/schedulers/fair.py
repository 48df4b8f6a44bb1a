"""fair: the original's FairScheduler: a fixed inference weight, even splits, one fixed config."""

from __future__ import annotations

from collections.abc import Sequence

from ekya.errors import EkyaError
from ekya.plans.packing import fair_units
from ekya.plans.scheduler import Scheduler, Shares, WindowState, give_to_inference
from ekya.plans.schedulers.plan_building import check_inputs, pick_config, predict_fixed, units_plan
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import StreamProfile


class FairScheduler(Scheduler):
    """``inference_weight`` of the capacity split evenly over inference jobs, the rest over training jobs.

    Every stream that can retrain uses ``config`` (None: each stream's first profiled config, which
    is the configspace default when profiles list the space in order). At the window start every
    share is whole quanta of Delta, spread as evenly as whole quanta allow (``fair_units``; every
    stream gets at least one quantum of inference). When a job completes, its share is split evenly
    over the inference jobs on the freed accelerator (the original's fair_reallocation); that even
    split need not be whole quanta, so after a completion fair's shares may leave the grid, as the
    original's did.
    """

    name = "fair"
    needs_profiles = False

    def __init__(self, config: str | None = None, inference_weight: float = 0.5) -> None:
        if not 0.0 <= inference_weight <= 1.0:
            raise EkyaError(f"scheduler.inference_weight must be in [0, 1], got {inference_weight}")
        self.config = config
        self.inference_weight = float(inference_weight)

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Fixed-weight even split in quanta."""
        check_inputs(profiles, budget)
        configs = [pick_config(p, self.config) for p in profiles]
        units = fair_units([c is not None for c in configs], self.inference_weight, budget)
        return predict_fixed(profiles, units_plan([p.stream for p in profiles], configs, units, budget), budget)

    def on_completion(self, state: WindowState, budget: Budget) -> Shares:
        """Split the freed share evenly over the inference jobs on its accelerator."""
        return give_to_inference(state, budget, fair=True)
