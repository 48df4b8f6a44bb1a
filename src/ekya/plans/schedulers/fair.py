"""fair: the original's FairScheduler: a fixed inference weight, even splits, one fixed config."""

from __future__ import annotations

from typing import Sequence

from ekya.errors import EkyaError
from ekya.plans.budget import even_units, units_per_accelerator
from ekya.plans.packing import pack
from ekya.plans.scheduler import Scheduler, Shares, WindowState, give_to_inference
from ekya.plans.schedulers.common import check_inputs, predict_fixed, total_units
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile


def pick_config(p: StreamProfile, config: str | None) -> str | None:
    """The stream's fixed config (None -> its first profiled config); None if it cannot retrain."""
    if not p.configs:
        return None
    if config is None:
        return p.configs[0].config
    if any(c.config == config for c in p.configs):
        return config
    raise EkyaError(f"scheduler.config: stream {p.stream!r} has no profile for config {config!r}; "
                    f"choose one of {[c.config for c in p.configs]}")


class FairScheduler(Scheduler):
    """``inference_weight`` of the capacity split evenly over inference jobs, the rest over training jobs.

    Every stream that can retrain uses ``config`` (None: each stream's first profiled config, which
    is the configspace default when profiles list the space in order). When a job completes, its share is split evenly
    over the inference jobs on the freed accelerator (the original's fair_reallocation).
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
        U, K = units_per_accelerator(budget.delta), total_units(budget)
        picks = {p.stream: pick_config(p, self.config) for p in profiles}
        trainers = [p for p in profiles if picks[p.stream] is not None]
        w = self.inference_weight if trainers else 1.0
        k_inf = int(round(K * w + 1e-9))
        inf = even_units(k_inf, len(profiles), U)
        tr = dict(zip((p.stream for p in trainers), even_units(K - k_inf, len(trainers), U)))
        streams = []
        for p, i in zip(profiles, inf):
            r = tr.get(p.stream, 0)
            streams.append(StreamPlan(p.stream, picks[p.stream] if r > 0 else None, i * budget.delta, r * budget.delta))
        return predict_fixed(profiles, pack(Plan(tuple(streams)), budget), budget)

    def on_completion(self, state: WindowState, budget: Budget) -> Shares:
        """Split the freed share evenly over the inference jobs on its accelerator."""
        return give_to_inference(state, budget, fair=True)
