"""Turning a scheduler's decision into a packed Plan: input checks, plans on the quanta grid, predictions.

Every scheduler plans the window start on one grid: whole quanta of ``budget.delta`` (see quanta.py).
Table-driven schedulers (thief, optimal) decide quanta per stream and build their plan with
``plan_from_tables``; the fixed-split baselines (uniform, noretrain: ``packing.slice_units``; fair:
``packing.fair_units``) spread the cluster's quanta as evenly as whole quanta allow, pick each stream's fixed
config with ``pick_config``, place the plan with ``pack_even`` and fill the predicted accuracies with
``predict_fixed``. The thief's 'uniform' and 'inference' starts are ``slice_units`` itself, so the
thief can always start from exactly the allocation the Uniform and NoRetrain baselines make.

No plan gives a stream zero inference: every baseline gives each stream at least one quantum of
inference, ``plan_from_tables`` repairs a table plan that has none (``feed_inference``), and a
cluster with fewer quanta than streams is refused (``packing.check_quanta``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.accuracy import window_accuracy
from ekya.plans.budget import check_budget
from ekya.plans.packing import LossFn, check_quanta, pack, packable, slice_units
from ekya.plans.quanta import EPS, to_units, total_units
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


def feed_inference(units: np.ndarray, budget: Budget) -> np.ndarray:
    """``units`` with one quantum of inference given to every stream that has none (no stream is starved).

    The quantum comes from the cluster's free quanta if any, else from the stream's own training,
    else from the largest holder (the job with the most quanta; an inference job keeps at least
    one; ties go to the earlier stream, inference before training).
    """
    u = np.array(units, dtype=np.int64, copy=True)
    starved = np.flatnonzero(u[:, 0] == 0).tolist() if u.size else []
    if starved:
        check_quanta(u.shape[0], budget)
    for s in starved:
        if total_units(budget) - int(u.sum()) > 0:
            pass
        elif u[s, 1] > 0:
            u[s, 1] -= 1
        else:
            spare = u - np.array([[1, 0]])  # what each job can give without starving its stream
            t, k = divmod(int(np.argmax(spare)), 2)
            u[t, k] -= 1
        u[s, 0] = 1
    return u


def plan_from_tables(profiles: Sequence[StreamProfile], tables: ValueTables, units: np.ndarray, budget: Budget) -> Plan:
    """A packed plan from quanta per stream, configs chosen by the tables; predictions from the tables.

    A stream left without inference first gets one quantum (``feed_inference``); packing never
    shrinks an inference job below one quantum when anything else can give.
    """
    d = budget.delta
    units = feed_inference(units, budget)
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


def packed_units(tables: ValueTables, units: np.ndarray, budget: Budget) -> np.ndarray:
    """The quanta ``plan_from_tables`` would end with for ``units`` (after feeding inference and packing)."""
    d = budget.delta
    units = feed_inference(units, budget)
    streams = [StreamPlan(str(s), None, int(i) * d, int(r) * d) for s, (i, r) in enumerate(units)]
    if packable(streams, budget.accelerators):
        return units
    index = {sp.stream: s for s, sp in enumerate(streams)}
    packed = pack(Plan(tuple(streams)), budget, loss=table_loss(tables, index, d))
    return np.array([[to_units(sp.infer_share, d), to_units(sp.train_share, d)] for sp in packed.streams],
                    dtype=np.int64)


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
    """Place a baseline's even split, on the quanta grid, on the accelerators.

    The baselines (uniform, fair, noretrain) build their shares from ``slice_units`` / ``fair_units``:
    whole quanta that are known to pack, so this only assigns devices. A plan whose shares are not
    whole quanta (a caller still passing an exact 1/n split, as the model-cache baseline does) is
    first put on the grid: the cluster's quanta are re-spread by ``slice_units``, each stream keeping
    the inference fraction of its given shares (all of it for a stream without a training share).
    Either way every share is a multiple of delta and no stream gets zero inference.
    """
    d = budget.delta
    on_grid = all(abs(v / d - round(v / d)) <= 1e-6 for sp in streams for v in (sp.infer_share, sp.train_share))
    if not on_grid:
        fractions = [sp.infer_share / (sp.infer_share + sp.train_share)
                     if sp.train_share > EPS and sp.config is not None else None for sp in streams]
        units = slice_units(fractions, budget)
        streams = [replace(sp, infer_share=int(i) * d, train_share=int(r) * d, config=sp.config if r > 0 else None)
                   for sp, (i, r) in zip(streams, units)]
    return pack(Plan(tuple(streams)), budget)


def units_plan(names: Sequence[str], configs: Sequence[str | None], units: np.ndarray, budget: Budget) -> Plan:
    """A packed plan from quanta per stream and each stream's fixed config (used only where it trains)."""
    d = budget.delta
    streams = [StreamPlan(n, c if r > 0 and c is not None else None, int(i) * d, int(r) * d if c is not None else 0.0)
               for n, c, (i, r) in zip(names, configs, units)]
    return pack_even(streams, budget)
