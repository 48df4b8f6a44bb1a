"""Packing jobs onto accelerators, and repairing plans that do not fit."""

import pytest

from ekya.plans.budget import make_budget
from ekya.plans.packing import exact_fit, first_fit_decreasing, pack, packable
from ekya.plans.types import Plan, StreamPlan


def test_ffd_is_deterministic_and_respects_capacity():
    where = first_fit_decreasing([0.6, 0.4, 0.5, 0.5], 2)
    assert where == [0, 0, 1, 1]
    assert first_fit_decreasing([0.6, 0.6, 0.6], 2) is None


def test_exact_fit_finds_what_ffd_misses():
    sizes = [0.5, 0.4, 0.3, 0.3, 0.3, 0.2]  # FFD: [.5,.4] [.3,.3,.3] then .2 fails; exact: [.5,.3,.2] [.4,.3,.3]
    assert first_fit_decreasing(sizes, 2) is None
    where = exact_fit(sizes, 2)
    assert where is not None
    loads = [sum(s for s, b in zip(sizes, where) if b == g) for g in range(2)]
    assert max(loads) <= 1 + 1e-9


def test_colocatable_streams_keep_both_jobs_on_one_device():
    b = make_budget(2, 100, 0.1)
    plan = pack(Plan((StreamPlan("a", "c", 0.3, 0.4), StreamPlan("b", "c", 0.5, 0.5),
                      StreamPlan("c", None, 0.2, 0.0))), b)
    for sp in plan.streams:
        if sp.train_share > 0:
            assert sp.infer_device == sp.train_device


def test_stream_larger_than_one_accelerator_is_split():
    b = make_budget(2, 100, 0.1)
    plan = pack(Plan((StreamPlan("a", "c", 0.5, 1.0),)), b)
    sp = plan.streams[0]
    assert sp.infer_device != sp.train_device


def test_unpackable_plan_is_repaired_by_shrinking_never_oversubscribed():
    b = make_budget(2, 100, 0.1)
    # 3 bundles of 0.7 on 2 accelerators: total 2.1 > 2 and no two fit together.
    plan = Plan(tuple(StreamPlan(n, "c", 0.3, 0.4) for n in "xyz"))
    assert not packable(plan.streams, 2)
    fixed = pack(plan, b)
    assert packable(fixed.streams, 2)
    loads = {}
    for sp in fixed.streams:
        for dev, v in ((sp.infer_device, sp.infer_share), (sp.train_device, sp.train_share)):
            if v > 0:
                loads[dev] = loads.get(dev, 0.0) + v
    assert all(v <= 1 + 1e-9 for v in loads.values())
    # each shrink removes one quantum; shares stay multiples of delta
    for sp in fixed.streams:
        for v in (sp.infer_share, sp.train_share):
            assert abs(v / 0.1 - round(v / 0.1)) < 1e-6


def test_repair_uses_the_loss_function():
    b = make_budget(1, 100, 0.1)
    plan = Plan((StreamPlan("a", "c", 0.5, 0.3), StreamPlan("b", None, 0.4, 0.0)))  # 1.2 on one device
    loss = lambda sp, kind: 0.0 if (sp.stream, kind) == ("a", "train") else 1.0  # noqa: E731
    fixed = pack(plan, b, loss=loss)
    by = fixed.by_stream()
    assert by["a"].train_share == pytest.approx(0.1)
    assert by["a"].infer_share == pytest.approx(0.5) and by["b"].infer_share == pytest.approx(0.4)


def test_training_shrunk_to_zero_drops_config():
    b = make_budget(1, 100, 0.1)
    fixed = pack(Plan((StreamPlan("a", "c", 1.0, 0.1),)), b, loss=lambda sp, kind: 0.0 if kind == "train" else 1.0)
    assert fixed.streams[0].config is None and fixed.streams[0].train_share == 0.0
