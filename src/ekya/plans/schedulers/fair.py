"""fair: the original's FairScheduler: a fixed inference weight, even splits, one fixed config."""

from __future__ import annotations

from collections.abc import Sequence

from ekya.errors import EkyaError
from ekya.plans.scheduler import Scheduler, Shares, WindowState, give_to_inference
from ekya.plans.schedulers.plan_building import check_inputs, pack_even, pick_config, predict_fixed
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile


class FairScheduler(Scheduler):
    """``inference_weight`` of the capacity split evenly over inference jobs, the rest over training jobs.

    Every stream that can retrain uses ``config`` (None: each stream's first profiled config, which
    is the configspace default when profiles list the space in order). When a job completes, its share is split evenly
    over the inference jobs on the freed accelerator (the original's fair_reallocation). Shares are
    exact even splits, not multiples of Delta (see ``pack_even``).
    """

    name = "fair"
    needs_profiles = False

    def __init__(self, config: str | None = None, inference_weight: float = 0.5) -> None:
        if not 0.0 <= inference_weight <= 1.0:
            raise EkyaError(f"scheduler.inference_weight must be in [0, 1], got {inference_weight}")
        self.config = config
        self.inference_weight = float(inference_weight)

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Fixed-weight even split."""
        check_inputs(profiles, budget)
        picks = {p.stream: pick_config(p, self.config) for p in profiles}
        trainers = [p for p in profiles if picks[p.stream] is not None]
        w = self.inference_weight if trainers else 1.0
        inf = min(1.0, budget.capacity * w / len(profiles))
        tr = min(1.0, budget.capacity * (1.0 - w) / len(trainers)) if trainers else 0.0
        streams = []
        for p in profiles:
            r = tr if picks[p.stream] is not None else 0.0
            streams.append(StreamPlan(p.stream, picks[p.stream] if r > 0 else None, inf, r))
        return predict_fixed(profiles, pack_even(streams, budget), budget)

    def on_completion(self, state: WindowState, budget: Budget) -> Shares:
        """Split the freed share evenly over the inference jobs on its accelerator."""
        return give_to_inference(state, budget, fair=True)
