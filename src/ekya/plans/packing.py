"""Place every job of a plan on a physical accelerator (capacity 1 each); repair plans that do not fit.

Items: a stream whose two jobs fit on one accelerator (I + R <= 1) is packed as one bundle so both
jobs land on the same device; that is what lets a finished training job hand its share to the
stream's own inference (see accuracy.py). Streams with I + R > 1 pack as two separate jobs.

Packing is first-fit decreasing (largest item first; ties broken by stream order, then inference
before training), which is deterministic; when FFD fails on a small plan (<= 40 items) an exhaustive
search looks for a placement before anything is repaired. If some item does not fit, the plan is repaired: one
job at a time is shrunk by one quantum delta, choosing the job whose shrinking loses the least
(``loss`` callback; by default the largest job, which has the most share to spare), until
everything fits. An inference job is never shrunk below one quantum while another job can give
(so a plan with a quantum of inference per stream keeps it). A training share shrunk to zero
drops the stream's config. Nothing is ever over-subscribed.

The fixed-split baselines' allocations live here too (``slice_units``, ``fair_units``): even splits
of the cluster's quanta, on the same grid of whole quanta as the thief's plans, lowered quantum by
quantum until they pack; a cluster with fewer quanta than streams is refused (``check_quanta``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ekya.errors import EkyaError
from ekya.plans.quanta import EPS, even_units, round_half_up, total_units, units_per_accelerator
from ekya.plans.types import Budget, Plan, StreamPlan

log = logging.getLogger(__name__)

# loss(stream_plan, kind) -> accuracy lost by shrinking that job ('infer' or 'train') by one quantum.
LossFn = Callable[[StreamPlan, str], float]


def job_items(streams: Sequence[StreamPlan]) -> list[tuple[float, int, int]]:
    """The items to pack: (size, stream index, kind), kind 0 = inference, 1 = training, 2 = both as one bundle.

    A stream whose two jobs fit on one accelerator is one bundle, so both land on the same device.
    """
    out = []
    for k, s in enumerate(streams):
        i, r = s.infer_share, s.train_share
        if i > EPS and r > EPS and i + r <= 1.0 + EPS:
            out.append((i + r, k, 2))
        else:
            if i > EPS:
                out.append((i, k, 0))
            if r > EPS:
                out.append((r, k, 1))
    return out


def first_fit_decreasing(sizes: Sequence[float], bins: int, capacity: float = 1.0) -> list[int] | None:
    """Bin of each item under first-fit decreasing (stable order for ties), or None if one does not fit."""
    order = sorted(range(len(sizes)), key=lambda k: (-sizes[k], k))
    used = [0.0] * bins
    where = [-1] * len(sizes)
    for k in order:
        for b in range(bins):
            if used[b] + sizes[k] <= capacity + EPS:
                used[b] += sizes[k]
                where[k] = b
                break
        else:
            return None
    return where


def exact_fit(sizes: Sequence[float], bins: int, capacity: float = 1.0, node_limit: int = 200_000) -> list[int] | None:
    """Bin of each item from an exhaustive search (for small instances), or None if none exists.

    Raises RuntimeError if the search exceeds ``node_limit`` nodes (the caller then falls back).
    """
    ffd = first_fit_decreasing(sizes, bins, capacity)
    if ffd is not None:
        return ffd
    if sum(sizes) > bins * capacity + EPS or any(s > capacity + EPS for s in sizes):
        return None
    order = sorted(range(len(sizes)), key=lambda k: (-sizes[k], k))
    used = [0.0] * bins
    where = [-1] * len(sizes)
    nodes = 0

    def go(pos: int) -> bool:
        nonlocal nodes
        nodes += 1
        if nodes > node_limit:
            raise RuntimeError("exact_fit: node limit exceeded")
        if pos == len(order):
            return True
        k = order[pos]
        seen: set[float] = set()
        for b in range(bins):
            key = round(used[b], 9)
            if key in seen:  # bins with equal load are interchangeable
                continue
            seen.add(key)
            if used[b] + sizes[k] <= capacity + EPS:
                used[b] += sizes[k]
                where[k] = b
                if go(pos + 1):
                    return True
                used[b] -= sizes[k]
        return False

    return where if go(0) else None


def packable(streams: Sequence[StreamPlan], accelerators: int) -> bool:
    """Whether the plan's jobs can be placed (bundles kept together) on the accelerators."""
    sizes = [it[0] for it in job_items(streams)]
    try:
        return exact_fit(sizes, accelerators) is not None
    except RuntimeError:
        return first_fit_decreasing(sizes, accelerators) is not None


def _assign(streams: Sequence[StreamPlan], accelerators: int) -> list[StreamPlan] | None:
    items = job_items(streams)
    sizes = [it[0] for it in items]
    where = first_fit_decreasing(sizes, accelerators)
    if where is None and len(sizes) <= 40:
        try:  # FFD can miss a packing that exists; search exhaustively on small plans
            where = exact_fit(sizes, accelerators)
        except RuntimeError:
            where = None
    if where is None:
        return None
    dev: dict[tuple[int, int], int] = {}
    for (_, k, kind), b in zip(items, where):
        if kind in (0, 2):
            dev[(k, 0)] = b
        if kind in (1, 2):
            dev[(k, 1)] = b
    return [
        replace(
            s,
            infer_share=s.infer_share if s.infer_share > EPS else 0.0,
            train_share=s.train_share if s.train_share > EPS else 0.0,
            config=s.config if s.train_share > EPS else None,
            infer_device=dev.get((k, 0)),
            train_device=dev.get((k, 1)),
        )
        for k, s in enumerate(streams)
    ]


def _shrunk(share: float, delta: float) -> float:
    """One quantum less (down to the previous multiple of delta for shares that are not multiples)."""
    n = share / delta
    below = math.floor(n + 1e-9) if abs(n - round(n)) > 1e-6 else round(n) - 1
    return max(0.0, below * delta)


def _default_loss(s: StreamPlan, kind: str) -> float:
    return -(s.infer_share if kind == "infer" else s.train_share)


def pack(plan: Plan, budget: Budget, loss: LossFn | None = None) -> Plan:
    """The plan with devices assigned, repaired (shrunk quantum by quantum) if it does not fit."""
    streams = list(plan.streams)
    for s in streams:
        if s.infer_share < -EPS or s.train_share < -EPS:
            raise ValueError(f"plan for stream {s.stream!r} has a negative share")
    loss = loss or _default_loss
    repaired = False
    while True:
        placed = _assign(streams, budget.accelerators)
        if placed is not None:
            break
        repaired = True
        # A job bigger than one accelerator can never be placed: shrink it first.
        jobs = [(k, kind, v) for k, s in enumerate(streams)
                for kind, v in (("infer", s.infer_share), ("train", s.train_share))]
        big = [(k, kind) for k, kind, v in jobs if v > 1.0 + EPS]
        shrinkable = [(k, kind) for k, kind, v in jobs if v > EPS]
        # an inference job of one quantum or less is shrunk only if nothing else can give (never
        # when the cluster has a quantum per stream): shrinking it would starve its stream
        fed = [(k, kind) for k, kind in shrinkable
               if kind == "train" or streams[k].infer_share > budget.delta + EPS]
        cands = big or fed or shrinkable
        k, kind = min(cands, key=lambda c: (loss(streams[c[0]], c[1]), c[0], c[1]))
        s = streams[k]
        if kind == "infer":
            streams[k] = replace(s, infer_share=_shrunk(s.infer_share, budget.delta))
        else:
            r = _shrunk(s.train_share, budget.delta)
            streams[k] = replace(s, train_share=r, config=s.config if r > EPS else None)
    if repaired:
        log.info("plan did not fit on %d accelerator(s); shrank it until it packed", budget.accelerators)
    return replace(plan, streams=tuple(placed))


# ----------------------------------------------------------------- even splits on the quanta grid
def check_quanta(streams: int, budget: Budget) -> None:
    """Raise EkyaError if the cluster has fewer quanta than streams (each stream needs one for inference)."""
    have = total_units(budget)
    if streams > have:
        # the largest delta giving ceil(streams / G) quanta per accelerator, truncated so that it still does
        delta = math.floor(1e4 / math.ceil(streams / budget.accelerators)) / 1e4
        raise EkyaError(f"cluster.delta={budget.delta:g} on cluster.accelerators={budget.accelerators} gives {have} "
                        f"quanta for {streams} streams, and every stream needs at least one quantum of inference: "
                        f"set cluster.delta <= {delta:g} or cluster.accelerators >= "
                        f"{math.ceil(streams / units_per_accelerator(budget.delta))}")


def _largest_packable(split: Callable[[int], np.ndarray], streams: int, budget: Budget) -> np.ndarray:
    """``split(total)`` for the largest total <= the cluster's quanta whose jobs pack (a job never spans two).

    Lowering the total one quantum at a time keeps the split as even as whole quanta allow; it is
    the quantised form of scaling every share down by one common factor. At total = streams every
    job is one quantum, which always packs.
    """
    check_quanta(streams, budget)
    d = budget.delta
    for total in range(total_units(budget), streams - 1, -1):
        units = split(total)
        plans = [StreamPlan(str(s), None, int(i) * d, int(r) * d) for s, (i, r) in enumerate(units)]
        if packable(plans, budget.accelerators):
            return units
    raise AssertionError("one quantum of inference per stream always packs when there are enough quanta")


def slice_units(fractions: Sequence[float | None], budget: Budget) -> np.ndarray:
    """Quanta (inference, training) per stream of an even split by slices: the Uniform baseline's allocation.

    Each stream's slice is its even share of the cluster's quanta (``even_units``: the spare quanta
    go one each to the first streams, so 6 streams on 20 quanta get 4, 4, 3, 3, 3, 3), at most two
    accelerators' worth. ``fractions[s]`` None: the stream does not retrain and its slice (at most
    one accelerator) serves inference; else inference gets ``round_half_up(fraction x slice)``
    quanta, at least one (no stream is starved) and at most one accelerator, and training the rest
    of the slice, at most one accelerator. If these jobs cannot be placed, the quanta spread are
    lowered until they can (``_largest_packable``).
    """
    U, n = units_per_accelerator(budget.delta), len(fractions)

    def split(total: int) -> np.ndarray:
        units = np.zeros((n, 2), dtype=np.int64)
        for s, (piece, f) in enumerate(zip(even_units(total, n, 2 * U), fractions)):
            if f is None:
                units[s] = (min(U, piece), 0)
            else:
                i = min(U, piece, max(1, round_half_up(f * piece)))
                units[s] = (i, min(U, piece - i))
        return units

    return _largest_packable(split, n, budget) if n else np.zeros((0, 2), dtype=np.int64)


def fair_units(trains: Sequence[bool], inference_weight: float, budget: Budget) -> np.ndarray:
    """Quanta (inference, training) per stream of the fair baseline's split.

    ``round_half_up(inference_weight x total)`` quanta (at least one per stream) are spread evenly
    over the inference jobs and the rest evenly over the training jobs (``trains[s]``), each job at
    most one accelerator; spare quanta go one each to the first jobs in stream order. Without any
    training job everything goes to inference. Lowered until the jobs pack, as ``slice_units``.
    """
    U, n = units_per_accelerator(budget.delta), len(trains)
    trainers = [s for s, t in enumerate(trains) if t]

    def split(total: int) -> np.ndarray:
        infer = total if not trainers else min(total, max(n, round_half_up(inference_weight * total)))
        units = np.zeros((n, 2), dtype=np.int64)
        units[:, 0] = even_units(infer, n, U)
        for s, r in zip(trainers, even_units(total - infer, len(trainers), U)):
            units[s, 1] = r
        return units

    return _largest_packable(split, n, budget) if n else np.zeros((0, 2), dtype=np.int64)
