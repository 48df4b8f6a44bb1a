"""uniform: the paper's baseline: each stream gets an equal slice; a fixed fraction of it serves inference."""

from __future__ import annotations

from typing import Sequence

from ekya.errors import EkyaError
from ekya.plans.budget import even_units, units_per_accelerator
from ekya.plans.packing import pack
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.common import check_inputs, predict_fixed, total_units
from ekya.plans.schedulers.fair import pick_config
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile


class UniformScheduler(Scheduler):
    """"Uniform (Cfg, p%)": every stream gets capacity / streams; p of it to inference, the rest to ``config``.

    ``config`` None: each stream's first profiled config. A stream that cannot retrain gives its whole slice to inference. Each job is capped at one
    accelerator, and shares are rounded down to quanta (inference first gets its fraction, rounded
    to the nearest quantum; training gets the rest of the slice). A finished job's share goes to
    the stream's own inference (the default completion rule).
    """

    name = "uniform"
    needs_profiles = False

    def __init__(self, config: str | None = None, inference_fraction: float = 0.5) -> None:
        if not 0.0 <= inference_fraction <= 1.0:
            raise EkyaError(f"scheduler.inference_fraction must be in [0, 1], got {inference_fraction}")
        self.config = config
        self.inference_fraction = float(inference_fraction)

    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Equal per-stream slices split at the fixed fraction."""
        check_inputs(profiles, budget)
        U = units_per_accelerator(budget.delta)
        slices = even_units(total_units(budget), len(profiles), 2 * U)
        streams = []
        for p, k in zip(profiles, slices):
            config = pick_config(p, self.config)
            if config is not None:
                i = min(U, int(round(k * self.inference_fraction + 1e-9)))
                r = min(U, k - i)
            else:
                i, r = min(U, k), 0
            streams.append(StreamPlan(p.stream, config if r > 0 else None, i * budget.delta, r * budget.delta))
        return predict_fixed(profiles, pack(Plan(tuple(streams)), budget), budget)
