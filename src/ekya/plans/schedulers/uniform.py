"""uniform: the paper's baseline: each stream gets an equal slice; a fixed fraction of it serves inference."""

from __future__ import annotations

from collections.abc import Sequence

from ekya.errors import EkyaError
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.plan_building import check_inputs, pack_even, pick_config, predict_fixed
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.profiles.types import StreamProfile


class UniformScheduler(Scheduler):
    """"Uniform (Cfg, p%)": every stream gets capacity / streams; p of it to inference, the rest to ``config``.

    ``config`` None: each stream's first profiled config. A stream that cannot retrain gives its
    whole slice to inference. Each job is capped at one accelerator; shares are exact (not
    multiples of Delta, see ``pack_even``). A finished job's share goes to the stream's own
    inference (the default completion rule).
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
        slice_ = budget.capacity / len(profiles)
        streams = []
        for p in profiles:
            config = pick_config(p, self.config)
            if config is not None:
                i = min(1.0, slice_ * self.inference_fraction)
                r = min(1.0, slice_ - i)
            else:
                i, r = min(1.0, slice_), 0.0
            streams.append(StreamPlan(p.stream, config if r > 0 else None, i, r))
        return predict_fixed(profiles, pack_even(streams, budget), budget)
