"""One allocation grid for every scheduler: whole quanta of Delta at the window start, no stream starved."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ekya.errors import EkyaError
from ekya.plans.budget import make_budget
from ekya.plans.packing import pack, packable
from ekya.plans.quanta import to_units, total_units, units_per_accelerator
from ekya.plans.schedulers.fair import FairScheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.schedulers.plan_building import plan_from_tables
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.schedulers.uniform import UniformScheduler
from ekya.plans.types import Plan, StreamPlan
from ekya.plans.value_tables import build_tables
from ekya.profiles.types import ConfigProfile, StreamProfile

from helpers.plans import stream

grid_instances = st.tuples(
    st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=12),  # (start accuracy, retrains)
    st.integers(1, 4),
    st.sampled_from([0.05, 0.1, 0.125, 0.2, 0.25, 0.3, 1 / 3]),
    st.floats(0.0, 1.0),
)


def _units(plan, delta):
    """(inference, training) quanta per stream, asserting every share is a whole number of quanta."""
    out = []
    for sp in plan.streams:
        for share in (sp.infer_share, sp.train_share):
            assert abs(share / delta - round(share / delta)) < 1e-9, (sp, delta)
        out.append((to_units(sp.infer_share, delta), to_units(sp.train_share, delta)))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grid_instances)
def test_every_baseline_plans_whole_quanta_within_capacity_and_the_thief_can_start_from_it(inst):
    raw, accelerators, delta, p = inst
    budget = make_budget(accelerators, 200.0, delta)
    assume(total_units(budget) >= len(raw))
    profiles = [StreamProfile(f"s{k}", a0, (ConfigProfile("c", 0.9, 20.0),) if retrains else ())
                for k, (a0, retrains) in enumerate(raw)]
    U = units_per_accelerator(delta)
    for sch in (NoRetrainScheduler(), FairScheduler(None, p), UniformScheduler(None, p)):
        plan = sch.plan(profiles, budget)
        units = _units(plan, delta)
        assert sum(i + r for i, r in units) <= total_units(budget)
        assert all(i >= 1 and i <= U and r <= U for i, r in units), (sch.name, units)  # nobody starved
        assert packable(plan.streams, accelerators)
        if isinstance(sch, UniformScheduler):
            # the thief's 'uniform' start at the same fraction is exactly this allocation
            thief = ThiefScheduler(starts=("uniform",), uniform_fractions=(p,))
            jobs = thief._jobs(profiles)
            (start,) = thief._starts(thief.starts, jobs, profiles, budget, total_units(budget), U)
            assert [tuple(map(int, row)) for row in start] == units
        if isinstance(sch, NoRetrainScheduler):
            thief = ThiefScheduler(starts=("inference",))
            (start,) = thief._starts(thief.starts, thief._jobs(profiles), profiles, budget, total_units(budget), U)
            assert [tuple(map(int, row)) for row in start] == units


def test_six_cameras_on_twenty_quanta_two_get_four_and_four_get_three():
    budget = make_budget(1, 200.0, 0.05)
    profiles = [stream(f"cam{k}", 0.7, ("c", 0.9, 20.0)) for k in range(6)]
    assert _units(NoRetrainScheduler().plan(profiles, budget), 0.05) == [(4, 0), (4, 0), (3, 0), (3, 0), (3, 0), (3, 0)]
    # a slice's inference part is half of it rounded half up: 3 quanta -> 2 + 1
    uniform = _units(UniformScheduler("c", 0.5).plan(profiles, budget), 0.05)
    assert uniform == [(2, 2), (2, 2), (2, 1), (2, 1), (2, 1), (2, 1)]
    # fair: 10 quanta over the 6 inference jobs, 10 over the 6 training jobs
    assert _units(FairScheduler("c", 0.5).plan(profiles, budget), 0.05) == [(2, 2), (2, 2), (2, 2), (2, 2), (1, 1),
                                                                             (1, 1)]


def test_a_small_fraction_of_a_small_slice_still_serves_inference():
    # 20 streams on 20 quanta: a slice of one quantum; 30 % of it rounds to 0, the floor keeps 1 for inference
    budget = make_budget(1, 200.0, 0.05)
    profiles = [stream(f"s{k}", 0.7, ("c", 0.9, 20.0)) for k in range(20)]
    for sch in (UniformScheduler("c", 0.3), UniformScheduler("c", 0.0), FairScheduler("c", 0.0)):
        assert all(u == (1, 0) for u in _units(sch.plan(profiles, budget), 0.05)), sch.name


@pytest.mark.parametrize("make", [ThiefScheduler, NoRetrainScheduler, lambda: FairScheduler("c"),
                                  lambda: UniformScheduler("c")], ids=["thief", "noretrain", "fair", "uniform"])
def test_fewer_quanta_than_streams_is_refused_at_plan_time_naming_the_fix(make):
    budget = make_budget(1, 200.0, 0.2)  # 5 quanta
    profiles = [stream(f"s{k}", 0.7, ("c", 0.9, 20.0)) for k in range(7)]
    with pytest.raises(EkyaError) as err:
        make().plan(profiles, budget)
    message = str(err.value)
    assert "\n" not in message
    assert "cluster.delta=0.2" in message and "cluster.accelerators=1" in message and "7 streams" in message
    # the fix it names works
    assert "cluster.delta <= 0.1428" in message and "cluster.accelerators >= 2" in message
    assert len(make().plan(profiles, make_budget(1, 200.0, 0.1428)).streams) == 7
    assert len(make().plan(profiles, make_budget(2, 200.0, 0.2)).streams) == 7


def test_fewer_quanta_than_streams_is_one_line_on_the_command_line(tmp_path, monkeypatch, capfd):
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", ["ekya", "runtime=simulate", "runtime.synthetic.streams=12",
                                      "runtime.synthetic.windows=2", "cluster.delta=0.1", "cluster.accelerators=1",
                                      "~tracking"])
    with pytest.raises(SystemExit) as done:
        cli()
    lines = capfd.readouterr().err.strip().splitlines()
    assert done.value.code == 2
    assert len(lines) == 1 and lines[0].startswith("ekya: error: cluster.delta=0.1 on cluster.accelerators=1 gives "
                                                   "10 quanta for 12 streams"), lines


def test_fewer_quanta_than_cameras_is_refused_before_any_base_model_trains(tmp_path, monkeypatch, capfd):
    # emulate learns the camera count from the dataset: the refusal comes as soon as it is known, not
    # after every camera's base model has trained and the first window is planned
    from ekya.__main__ import cli
    from ekya.execution import camera_models

    def no_training(*_a, **_k):
        raise AssertionError("a base model trained before the cluster was refused")

    monkeypatch.setattr(camera_models.CameraModels, "_base_model", no_training)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", ["ekya", "experiment=tiny", "threads=1", "cluster.delta=1.0",
                                      "cluster.accelerators=1", "~tracking"])
    with pytest.raises(SystemExit) as done:
        cli()
    lines = capfd.readouterr().err.strip().splitlines()
    assert done.value.code == 2
    assert len(lines) == 1 and "gives 1 quanta for 2 streams" in lines[0], lines


def test_packing_repair_never_shrinks_a_one_quantum_inference_job_while_training_can_give():
    b = make_budget(1, 200.0, 0.5)  # two quanta; the plan asks for three, every job one quantum
    plan = pack(Plan((StreamPlan("a", "c", 0.5, 0.5), StreamPlan("b", None, 0.5, 0.0))), b)
    by = plan.by_stream()
    assert by["a"].infer_share == by["b"].infer_share == 0.5 and by["a"].train_share == 0.0


def test_a_table_plan_without_inference_is_repaired_not_emitted():
    b = make_budget(1, 200.0, 0.1)
    profiles = [stream("a", 0.5, ("c", 0.9, 30.0)), stream("b", 0.5, ("c", 0.9, 30.0)), stream("z", 0.5)]
    tables = build_tables(profiles, b)
    # a starves with training of its own: one quantum moves from it to inference; z starves with
    # nothing and no free quanta: the largest holder (b's training, 5 quanta) gives one
    units = np.array([[0, 4], [1, 5], [0, 0]])
    plan = plan_from_tables(profiles, tables, units, b)
    got = {sp.stream: (to_units(sp.infer_share, 0.1), to_units(sp.train_share, 0.1)) for sp in plan.streams}
    assert got["a"][0] == 1 and got["z"][0] == 1 and got["b"] == (1, 4)
    assert sum(i + r for i, r in got.values()) <= 10
    assert 0.0 <= plan.predicted_accuracy <= 1.0
