"""Place every job of a plan on a physical accelerator (capacity 1 each); repair plans that do not fit.

Items: a stream whose two jobs fit on one accelerator (I + R <= 1) is packed as one bundle so both
jobs land on the same device; that is what lets a finished training job hand its share to the
stream's own inference (see accuracy.py). Streams with I + R > 1 pack as two separate jobs.

Packing is first-fit decreasing (largest item first; ties broken by stream order, then inference
before training), which is deterministic; when FFD fails on a small plan (<= 40 items) an exhaustive
search looks for a placement before anything is repaired. If some item does not fit, the plan is repaired: one
job at a time is shrunk by one quantum delta, choosing the job whose shrinking loses the least
(``loss`` callback; by default the largest job, which has the most share to spare), until
everything fits. A training share shrunk to zero drops the stream's config. Nothing is ever
over-subscribed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace

from ekya.plans.quanta import EPS
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
        cands = big or [(k, kind) for k, kind, v in jobs if v > EPS]
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
