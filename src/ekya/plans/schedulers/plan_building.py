"""Turning a scheduler's decision into a packed Plan: input checks, plans from quanta or even splits, predictions.

Table-driven schedulers (thief, optimal) decide quanta per stream and build their plan with
``plan_from_tables``; the fixed-split baselines (fair, uniform, noretrain) pick each stream's fixed
config with ``pick_config``, pack exact even shares with ``pack_even`` and fill the predicted
accuracies with ``predict_fixed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.accuracy import window_accuracy
from ekya.plans.budget import check_budget
from ekya.plans.packing import LossFn, pack, packable
from ekya.plans.quanta import to_units
from ekya.plans.types import Budget, Plan, StreamPlan
from ekya.plans.value_tables import ValueTables
from ekya.profiles.types import StreamProfile


def check_inputs(profiles: Sequence[StreamProfile], budget: Budget) -> None:
    """Validate the budget and that stream names are unique."""
    check_budget(budget)
    names = [p.stream for p in profiles]
    if len(set(names)) != len(names):
        raise EkyaError(f"duplicate stream names in profiles: {sorted({n for n in names if names.count(n) > 1})}")


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


def table_loss(tables: ValueTables, index: dict[str, int], delta: float) -> LossFn:
    """Repair loss from value tables: the value a stream loses when a job gives up one quantum."""

    def loss(sp: StreamPlan, kind: str) -> float:
        s = index[sp.stream]
        i, r = to_units(sp.infer_share, delta), to_units(sp.train_share, delta)
        ni, nr = (max(i - 1, 0), r) if kind == "infer" else (i, max(r - 1, 0))
        return tables.value(s, i, r) - tables.value(s, ni, nr)

    return loss


def plan_from_tables(profiles: Sequence[StreamProfile], tables: ValueTables, units: np.ndarray, budget: Budget) -> Plan:
    """A packed plan from quanta per stream, configs chosen by the tables; predictions from the tables."""
    d = budget.delta
    streams = []
    for s, p in enumerate(profiles):
        i, r = int(units[s, 0]), int(units[s, 1])
        c = int(tables.choice[s, i, r])
        config = p.configs[c].config if c >= 0 and r > 0 else None
        streams.append(StreamPlan(p.stream, config, i * d, (r * d) if config else 0.0))
    index = {p.stream: s for s, p in enumerate(profiles)}
    packed = pack(Plan(tuple(streams)), budget, loss=table_loss(tables, index, d))
    out = []
    for s, sp in enumerate(packed.streams):
        # repair may have shrunk a job: the best config at the final quanta can differ
        i, r = to_units(sp.infer_share, d), to_units(sp.train_share, d)
        c = int(tables.choice[s, i, r]) if r > 0 else -1
        if c < 0:
            sp = replace(sp, config=None, train_share=0.0, train_device=None)
        else:
            sp = replace(sp, config=profiles[s].configs[c].config)
        out.append(replace(sp, predicted_accuracy=tables.value(s, i, r)))
    mean = float(np.mean([sp.predicted_accuracy for sp in out])) if out else math.nan
    return Plan(tuple(out), predicted_accuracy=mean)


def predict_fixed(profiles: Sequence[StreamProfile], plan: Plan, budget: Budget) -> Plan:
    """Fill predicted accuracies of a plan whose configs were fixed, where the profiles know them."""
    by = {p.stream: p for p in profiles}
    out = []
    for sp in plan.streams:
        p = by[sp.stream]
        cp = p.config(sp.config) if sp.config is not None else None
        known = not math.isnan(p.start_accuracy) and (cp is None or (cp.known and math.isfinite(cp.cost)))
        if not known:
            v = math.nan
        elif cp is None or sp.train_share <= 0:
            v = float(window_accuracy(p.start_accuracy, 0.0, 0.0, sp.infer_share, 0.0, budget, sp.stream))
        else:
            v = float(window_accuracy(p.start_accuracy, cp.accuracy, cp.cost, sp.infer_share, sp.train_share, budget,
                                      sp.stream))
        out.append(replace(sp, predicted_accuracy=v))
    vals = [sp.predicted_accuracy for sp in out]
    mean = float(np.mean(vals)) if vals and not any(math.isnan(v) for v in vals) else math.nan
    return Plan(tuple(out), predicted_accuracy=mean)


def pack_even(streams: Sequence[StreamPlan], budget: Budget) -> Plan:
    """Pack a plan of exact, unquantised even shares (the baselines split like the original did).

    Quantising an even split to Delta starves some streams (6 streams on 1 accelerator at
    Delta = 0.1 would leave one with nothing), so fixed-split baselines keep exact shares. If the
    jobs cannot be placed without spanning accelerators, every share is scaled down by the
    largest common factor that packs (found by bisection), so the split stays even.
    """

    def scaled(c: float) -> list[StreamPlan]:
        return [replace(sp, infer_share=sp.infer_share * c, train_share=sp.train_share * c) for sp in streams]

    c = 1.0
    if not packable(scaled(1.0), budget.accelerators):
        lo, hi = 0.0, 1.0
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if packable(scaled(mid), budget.accelerators) else (lo, mid)
        c = lo
    return pack(Plan(tuple(scaled(c))), budget)
