"""uniform: the paper's baseline: each stream gets an equal slice; a fixed fraction of it serves inference."""

from __future__ import annotations

from collections.abc import Sequence

from ekya.errors import EkyaError
from ekya.plans.packing import slice_units
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.plan_building import check_inputs, pick_config, predict_fixed, units_plan
from ekya.plans.types import Budget, Plan
from ekya.profiles.types import StreamProfile


class UniformScheduler(Scheduler):
    """"Uniform (Cfg, p%)": every stream gets an even slice of the quanta; p of it to inference, the rest to ``config``.

    ``config`` None: each stream's first profiled config. A stream that cannot retrain gives its
    whole slice to inference. Shares are whole quanta of Delta, spread as evenly as whole quanta
    allow (``slice_units``: the inference part is p x slice rounded half up, at least one quantum;
    each job is capped at one accelerator), the same allocation the thief's 'uniform' start makes.
    A finished job's share goes to the stream's own inference (the default completion rule).
    """

    name = "uniform"
    needs_profiles = False

    def __init__(self, config: str | None = None, inference_fraction: float = 0.5) -> None:
        if not 0.0 <= inference_fraction <= 1.0:
            raise EkyaError(f"scheduler.inference_fraction must be in [0, 1], got {inference_fraction}")
        self.config = config
        self.inference_fraction = float(inference_fraction)

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Even per-stream slices of the quanta, split at the fixed fraction."""
        check_inputs(profiles, budget)
        configs = [pick_config(p, self.config) for p in profiles]
        units = slice_units([None if c is None else self.inference_fraction for c in configs], budget)
        return predict_fixed(profiles, units_plan([p.stream for p in profiles], configs, units, budget), budget)
