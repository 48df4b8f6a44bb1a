"""thief: the paper's thief scheduler (Algorithms 1 and 2), plus the original code's SCO variant.

``variant="paper"`` (default): PickConfigs + EstimateAccuracy are folded into per-stream value tables
(best config or none for every (inference, training) quanta pair, value_tables.py); Algorithm 1 then
starts from a fair allocation and lets every job steal quanta Delta = budget.delta from every other
job while the mean predicted window accuracy rises (steal.py). Improvements over a single greedy
run, measured by ``python -m ekya.bench optimality``: ``rule="sweep"`` (default) tries every steal
amount for a pair, not only one quantum at a time (the single-quantum rule stalls where a training
job is worthless until it has enough share to finish); quanta a job holds without gaining from
them go to a pool that thieves draw on (always on); and ``starts`` re-runs the search from
several initial allocations and keeps the best after packing (each start is itself a candidate,
since packing may repair a stealing result below it): 'fair' (every job an equal share),
'inference' (all capacity to inference: exactly the NoRetrain baseline's allocation), 'pool'
(nothing allocated) and 'uniform' (for each of ``uniform_fractions``, exactly the allocation the
Uniform baseline makes: ``packing.slice_units``). Quanta still unused at the end go to inference
(they cost nothing and help when predictions are off). Because the value tables hold the best
config (or none) at every (inference, training) pair and stealing only accepts improvements, the
plan's predicted accuracy is never below that of a Uniform(config, p) plan, p in
``uniform_fractions``, or of the NoRetrain plan, predicted from the same profiles (unless a_min
forbids that plan).
``a_min`` (default 0.4, the paper's a_MIN; 0 = off) makes options whose inference accuracy ever
drops below it infeasible, for every stream whose even share of the cluster meets it
(value_tables.config_values; the 'inference' start meets all of them at once). Independently, no
stream is ever given zero inference (value_tables.py, plan_building.feed_inference); a cluster
with fewer quanta than streams is refused.
``cached_models`` (beyond the paper): the stream's own earlier models (the base model and every
model that went live in an earlier window) are candidates beside the retraining configs, named
``cache:w<i>``: zero retraining cost, predicted accuracy = their measured validation accuracy on
the window's validation set (those evaluation passes are charged as profiling). Such a "job"
completes at the label delay; its one quantum of training share serves inference the whole
window (co-located: before the delay as the stream's allotment, after it as the freed share), so
no share is wasted on it. Without the option, cached configs in the profiles are ignored.

``variant="sco"``: the original code's thief_sco_scheduler for reproduction: ``iterations`` rounds of
(a) per-stream config choice at the current shares (single-camera optimiser), then (b) a stealing
pass with those configs fixed, started from an equal split over all jobs and using the
original's full sweep of steal amounts. Differences from the original, all deliberate: candidates
are scored with our exact window-accuracy model (not a per-second nested simulation), and a
finished job's share goes to the stream's own inference (not spread over all jobs).

Ablations (the paper's Fig. 10a), both opt-in: ``fixed_split`` ("Ekya-FixedRes") keeps the 'fair'
start (every job an equal share) with no stealing; each stream's config is still the value tables'
best for its share, a training share that buys nothing there (not retraining is better) goes to
the stream's own inference as a completed job's would, quanta left over go to inference as the
thief's pool does, and completions hand the freed share to inference without re-planning.
``fixed_config`` ("Ekya-FixedConfig") restricts every stream's candidates to one named config (its
cached models stay candidates when ``cached_models`` is on); the allocation is the thief's as usual,
so a stream may still not retrain where that config does not pay. Each ablation changes the
scheduler's ``name`` (thief-fixed_split, thief-fixed_config, thief-fixed_split-fixed_config) so
that runs and their MLflow ``scheduler`` tag tell the cells apart.

On completion (both variants) the thief re-plans what can still change: the jobs on the
accelerator that the finished job freed (their inference shares and running retraining shares),
valued over the rest of the window with the running jobs' remaining work; jobs on other
accelerators keep their shares, because a job cannot move between accelerators mid-window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ekya.configspace import is_cached
from ekya.errors import EkyaError
from ekya.plans.packing import check_quanta, slice_units
from ekya.plans.quanta import EPS, even_units, to_units, total_units, units_per_accelerator
from ekya.plans.scheduler import Scheduler, Shares, WindowState, give_to_inference
from ekya.plans.schedulers.model_cache import CacheRequest, without_cache
from ekya.plans.schedulers.plan_building import check_inputs, packed_units, plan_from_tables
from ekya.plans.steal import RULES, steal, total_value
from ekya.plans.types import Budget, Plan
from ekya.plans.value_tables import (
    INFEASIBLE,
    ValueTables,
    build_tables,
    config_values,
    fixed_tables,
    relaxed,
    remaining_tables,
)
from ekya.profiles.types import StreamProfile

# The initial allocations the search may start from (scheduler.starts), and the variants.
STARTS = ("fair", "inference", "pool", "uniform")
# The robustness benchmark's Uniform family fractions (ekya.bench.robustness.UNIFORM_FRACTIONS), kept equal by a test.
UNIFORM_FRACTIONS = (0.3, 0.5, 0.9)
# The paper's a_MIN: its illustrative example keeps every camera's inference accuracy >= 40 %.
A_MIN = 0.4
VARIANTS = ("paper", "sco")


def start_units(kind: str, jobs: list[tuple[int, int]], streams: int, K: int, U: int) -> np.ndarray:
    """Initial quanta per (stream, kind): 'fair' (equal per job), 'inference' (all to inference) or 'pool' (none).

    ('uniform' and the thief's 'inference' start need the budget: they are ``packing.slice_units``.)
    """
    units = np.zeros((streams, 2), dtype=np.int64)
    if kind == "fair":
        holders = jobs
    elif kind == "inference":
        holders = [j for j in jobs if j[1] == 0]
    elif kind == "pool":
        holders = []
    else:  # 'uniform' is built by slice_units, not here
        raise EkyaError(f"scheduler.starts: unknown start {kind!r}; use one of {list(STARTS)}")
    for (s, k), u in zip(holders, even_units(K, len(holders), U)):
        units[s, k] = u
    return units


def give_pool_to_inference(values: np.ndarray, units: np.ndarray, pool: int, jobs: list[tuple[int, int]],
                           U: int) -> np.ndarray:
    """Hand quanta left in the pool to inference jobs, round-robin, wherever that loses nothing.

    They add no predicted value (else stealing would have taken them) but idle capacity helps
    when predictions are off; packing trims them first if space is tight (their loss is zero).
    """
    u = units.copy()
    holders = [s for s, k in jobs if k == 0]
    while pool > 0 and holders:
        progress = False
        for s in holders:
            if pool == 0:
                break
            i, r = int(u[s, 0]), int(u[s, 1])
            if i < U and values[s, i + 1, r] >= values[s, i, r]:
                u[s, 0] += 1
                pool -= 1
                progress = True
        if not progress:
            break
    return u


class ThiefScheduler(Scheduler):
    """Resource stealing over per-stream value tables (see the module docstring for the options)."""

    name = "thief"
    needs_profiles = True

    def __init__(
        self,
        a_min: float = A_MIN,
        rule: str = "sweep",
        starts: Sequence[str] = ("fair", "inference", "uniform"),
        uniform_fractions: Sequence[float] = UNIFORM_FRACTIONS,
        variant: str = "paper",
        iterations: int = 3,
        replan_on_completion: bool = True,
        max_passes: int = 100,
        cached_models: bool = False,
        fixed_split: bool = False,
        fixed_config: str | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise EkyaError(f"scheduler.variant must be one of {list(VARIANTS)}, got {variant!r}")
        if rule not in RULES:
            raise EkyaError(f"scheduler.rule must be one of {list(RULES)}, got {rule!r}")
        if isinstance(starts, str) or not starts:
            raise EkyaError(f"scheduler.starts must be a non-empty list of starts from {list(STARTS)}, got {starts!r}")
        unknown = [s for s in starts if s not in STARTS]
        if unknown:
            raise EkyaError(f"scheduler.starts: unknown start(s) {unknown}; use starts from {list(STARTS)}")
        if not 0.0 <= a_min <= 1.0:
            raise EkyaError(f"scheduler.a_min must be in [0, 1], got {a_min}")
        if isinstance(uniform_fractions, (str, int, float)) or any(
                isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 <= f <= 1.0
                for f in uniform_fractions):
            raise EkyaError(f"scheduler.uniform_fractions must be a list of inference fractions in [0, 1], "
                            f"got {uniform_fractions!r}")
        if "uniform" in starts and not uniform_fractions:
            raise EkyaError("scheduler.starts has 'uniform' but scheduler.uniform_fractions is empty; give at least "
                            "one inference fraction (e.g. [0.5]) or drop 'uniform' from starts")
        if int(iterations) < 1:
            raise EkyaError(f"scheduler.iterations must be an integer >= 1 (rounds of the sco variant), "
                            f"got {iterations!r}")
        if int(max_passes) < 1:
            raise EkyaError(f"scheduler.max_passes must be an integer >= 1 (stealing passes), got {max_passes!r}")
        self.a_min = float(a_min)
        self.rule = rule
        self.starts = tuple(starts)
        self.uniform_fractions = tuple(float(f) for f in uniform_fractions)
        self.variant = variant
        self.iterations = int(iterations)
        self.replan_on_completion = bool(replan_on_completion)
        self.max_passes = int(max_passes)
        self.cached_models = bool(cached_models)
        self.fixed_split = bool(fixed_split)
        self.fixed_config = None if fixed_config in (None, "") else str(fixed_config)
        if self.fixed_split and variant == "sco":
            raise EkyaError("scheduler.fixed_split=true needs variant=paper: the sco variant's rounds are stealing "
                            "passes, which a fixed split forbids")
        if self.fixed_config is not None and is_cached(self.fixed_config):
            raise EkyaError(f"scheduler.fixed_config={self.fixed_config!r} is a cached model; name a retraining "
                            "config of the configspace (cached models are offered by scheduler.cached_models)")
        ablations = [k for k, on in (("fixed_split", self.fixed_split), ("fixed_config", self.fixed_config)) if on]
        if ablations:
            # the run name and the MLflow ``scheduler`` tag come from it: ablation cells must differ
            self.name = "-".join(["thief", *ablations])

    @property
    def cache_request(self) -> CacheRequest | None:
        """With cached_models: the run's own earlier models, each told with its measured validation accuracy."""
        return CacheRequest("served", measure=True) if self.cached_models else None

    # ----------------------------------------------------------------- window start
    def plan(self, profiles: Sequence[StreamProfile], budget: Budget) -> Plan:
        """Algorithm 1 (or the SCO variant) at the window start."""
        check_inputs(profiles, budget)
        check_quanta(len(profiles), budget)
        profiles = list(profiles if self.cached_models else without_cache(profiles))
        if self.fixed_config is not None:
            profiles = [self._only_fixed_config(p) for p in profiles]
        if not profiles:
            return Plan(())
        if self.variant == "sco":
            tables, units = self._sco(profiles, budget)
        else:
            tables = build_tables(profiles, budget, self.a_min)
            split = self._fixed if self.fixed_split else self._search
            units = split(tables, profiles, budget)
        plan = plan_from_tables(profiles, tables, units, budget)
        if any(sp.predicted_accuracy <= INFEASIBLE / 2 for sp in plan.streams):
            # The allocation holds a stream below a_min (the fixed split or the sco variant cannot
            # always avoid it): such a stream gets its best option at its share regardless of a_min.
            plan = plan_from_tables(profiles, relaxed(tables, build_tables(profiles, budget)), units, budget)
        return plan

    def _only_fixed_config(self, p: StreamProfile) -> StreamProfile:
        """The stream's profile with fixed_config as its only retraining config (cached models kept)."""
        retrain = [c.config for c in p.configs if not is_cached(c.config)]
        if retrain and self.fixed_config not in retrain:
            raise EkyaError(f"scheduler.fixed_config={self.fixed_config!r}: stream {p.stream!r} has no profile for "
                            f"it; choose one of {retrain} (a configspace config missing here was pruned by the "
                            "micro-profiler: set profiler.prune_every=0)")
        return replace(p, configs=tuple(c for c in p.configs if c.config == self.fixed_config or is_cached(c.config)))

    def _fixed(self, tables: ValueTables, profiles: Sequence[StreamProfile], budget: Budget) -> np.ndarray:
        """The 'fair' start kept as the allocation (fixed_split): no stealing, unused quanta to inference."""
        U, K = tables.units, total_units(budget)
        jobs = self._jobs(profiles)
        units = start_units("fair", jobs, len(profiles), K, U)
        pool = K - int(units.sum())
        for s in range(len(profiles)):
            i, r = int(units[s, 0]), int(units[s, 1])
            if r > 0 and tables.choice[s, i, r] < 0:
                # not retraining is best at this share: it is free at once, as a completed job's would be
                own = min(r, U - i)
                units[s] = (i + own, 0)
                pool += r - own
        return give_pool_to_inference(tables.values, units, pool, jobs, U)

    def _jobs(self, profiles: Sequence[StreamProfile]) -> list[tuple[int, int]]:
        inf = [(s, 0) for s in range(len(profiles))]
        tr = [(s, 1) for s, p in enumerate(profiles) if p.configs]
        return inf + tr

    def _search(self, tables: ValueTables, profiles: Sequence[StreamProfile], budget: Budget,
                starts: Sequence[str] | None = None) -> np.ndarray:
        """The best allocation after packing over the starts (default: ``starts``) and the steals from them."""
        U, K = tables.units, total_units(budget)
        jobs = self._jobs(profiles)
        starts = self.starts if starts is None else starts
        best, best_v = None, -np.inf
        for u0 in self._starts(starts, jobs, profiles, budget, K, U):
            u, pool = steal(tables.values, u0, jobs, U, self.rule, self.max_passes, free=K - int(u0.sum()))
            u = give_pool_to_inference(tables.values, u, pool, jobs, U)
            # the start itself is a candidate: stealing's result may lose value when packing repairs it
            for cand in (u, u0):
                placed = packed_units(tables, cand, budget)
                v = total_value(tables.values, placed)
                if v > best_v + 1e-12:
                    best, best_v = placed, v
        assert best is not None, "starts is non-empty and a start's value is finite"
        stranded = tables.values[np.arange(len(best)), best[:, 0], best[:, 1]] <= INFEASIBLE / 2
        if "inference" not in starts and bool(stranded.any()):
            # a start stranded a stream below a_min (one-quantum steals cannot lift it): the NoRetrain
            # allocation meets every held a_min, so the search from it is the fallback
            return self._search(tables, profiles, budget, ("inference",))
        return best

    def _starts(self, starts: Sequence[str], jobs: list[tuple[int, int]], profiles: Sequence[StreamProfile],
                budget: Budget, K: int, U: int) -> list[np.ndarray]:
        """The initial allocations of ``starts``, in order ('uniform': one per fraction of ``uniform_fractions``)."""
        out = []
        for kind in starts:
            if kind == "uniform":
                out += [slice_units([f if p.configs else None for p in profiles], budget)
                        for f in self.uniform_fractions]
            elif kind == "inference":  # the NoRetrain baseline's allocation, which meets every held a_min
                out.append(slice_units([None] * len(profiles), budget))
            else:
                out.append(start_units(kind, jobs, len(profiles), K, U))
        return out

    def _sco(self, profiles: Sequence[StreamProfile], budget: Budget) -> tuple[ValueTables, np.ndarray]:
        U, K = units_per_accelerator(budget.delta), total_units(budget)
        val, base = config_values(profiles, budget, self.a_min)
        S = len(profiles)
        # The original starts every stream at inference = training = R / (2 |V|).
        per = [min(U, u) for u in even_units(K, 2 * S, U)]
        units = np.array([[per[2 * s], per[2 * s + 1]] for s in range(S)], dtype=np.int64)
        tables = fixed_tables(val, base, [-1] * S)
        for _ in range(self.iterations):
            picks = []
            for s in range(S):
                i, r = int(units[s, 0]), int(units[s, 1])
                v = val[s, i, r] if r > 0 else np.full(val.shape[3], -np.inf)
                c = int(np.argmax(v))  # first config wins ties, as in the original
                picks.append(c if np.isfinite(v[c]) and v[c] > base[s, i, r] + 1e-12 else -1)
            tables = fixed_tables(val, base, picks)
            jobs = [(s, 0) for s in range(S)] + [(s, 1) for s in range(S) if picks[s] >= 0]
            start = np.zeros((S, 2), dtype=np.int64)
            for (s, k), u in zip(jobs, even_units(K, len(jobs), U)):  # equal split over all jobs
                start[s, k] = u
            units, pool = steal(tables.values, start, jobs, U, "sweep", self.max_passes, free=K - int(start.sum()))
            units = give_pool_to_inference(tables.values, units, pool, jobs, U)
        return tables, units

    # ----------------------------------------------------------------- completion
    def on_completion(self, state: WindowState, budget: Budget) -> Shares:
        """Re-run stealing over the jobs on the freed accelerator, valued over the rest of the window."""
        shares = give_to_inference(state, budget, fair=False)
        if not self.replan_on_completion or self.fixed_split:
            return shares
        assert state.completed is not None, "called when a job completes, so a stream has completed"
        return self._replan(state, budget, shares, state.by_stream()[state.completed].train_device)

    def on_progress(self, state: WindowState, budget: Budget) -> Shares | None:
        """Re-plan the accelerators of jobs that, as their progress shows, will not finish in the window.

        Such a job's share buys nothing (a model counts only once its job completes), so stealing
        over the rest of the window hands it to whoever gains from it, e.g. inference.
        """
        if not self.replan_on_completion or self.fixed_split:
            return None
        late = [s for s in state.streams if not s.done and s.train_share > EPS and
                state.now + s.remaining / max(budget.train_rate(s.train_share), 1e-12) > budget.window + EPS]
        if not late:
            return None
        shares: Shares = {s.stream: (s.infer_share, 0.0 if s.done else s.train_share) for s in state.streams}
        for dev in dict.fromkeys(s.train_device for s in late):
            shares = self._replan(state, budget, shares, dev)
        return shares

    def _replan(self, state: WindowState, budget: Budget, shares: Shares, dev: int | None) -> Shares:
        """Stealing over the jobs on accelerator ``dev`` (None: all), valued over the rest of the window."""
        d = budget.delta
        U = units_per_accelerator(d)
        members = [s for s in state.streams
                   if dev is None or s.infer_device == dev or (not s.done and s.train_device == dev)]
        # Only plans made of whole quanta can be re-planned in quanta; leave anything else alone.
        for s in members:
            for v in shares[s.stream]:
                if abs(v / d - round(v / d)) > 1e-6:
                    return shares
        running = np.array([not s.done for s in members])  # a job with ~0 work left still holds its share
        units = np.array([[to_units(shares[s.stream][0], d), to_units(shares[s.stream][1], d)] for s in members],
                         dtype=np.int64)
        tables = remaining_tables(
            accuracy=np.array([s.accuracy for s in members]),
            target=np.array([s.target_accuracy for s in members]),
            remaining=np.array([s.remaining for s in members]),
            running=running,
            now=state.now,
            budget=budget,
            names=[s.stream for s in members],
            a_min=self.a_min,
            held_at=units,
        )
        on_dev = lambda device: dev is None or device == dev  # noqa: E731
        jobs = [(n, 0) for n, s in enumerate(members) if on_dev(s.infer_device)]
        jobs += [(n, 1) for n, s in enumerate(members) if running[n] and on_dev(s.train_device)]
        units, pool = steal(tables.values, units, jobs, U, self.rule, self.max_passes)
        units = give_pool_to_inference(tables.values, units, pool, jobs, U)
        for n, s in enumerate(members):
            i, r = int(units[n, 0]) * d, int(units[n, 1]) * d
            shares[s.stream] = (i, r if running[n] and r > EPS else 0.0)
        return shares
