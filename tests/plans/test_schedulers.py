"""Schedulers on small hand-checkable instances, and the exact solver against brute force."""

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.plans.accuracy import window_accuracy
from ekya.plans.budget import make_budget
from ekya.plans.scheduler import StreamState, WindowState, give_to_inference
from ekya.plans.schedulers.fair import FairScheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.schedulers.optimal import OptimalScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.schedulers.uniform import UniformScheduler
from ekya.profiles.synthetic import generate_profile_set
from ekya.profiles.types import ConfigProfile, StreamProfile

from helpers.plans import stream


def lin(acc=1, window=100.0, delta=0.1, delay=0.0):
    return make_budget(acc, window, delta, label_delay=delay, throughput="linear")


def test_noretrain_even_split_in_quanta():
    # 10 quanta of 0.1 over 3 streams: the spare quantum goes to the first stream
    plan = NoRetrainScheduler().plan([stream(n, 0.5) for n in "abc"], lin(1))
    assert [sp.infer_share for sp in plan.streams] == pytest.approx([0.4, 0.3, 0.3])
    assert all(sp.config is None and sp.train_share == 0 for sp in plan.streams)


def test_fair_weights_and_unknown_accuracies_are_fine():
    nan = float("nan")
    profiles = [StreamProfile(n, nan, (ConfigProfile("c", nan, nan),)) for n in "ab"]
    plan = FairScheduler("c", inference_weight=0.6).plan(profiles, make_budget(2, 100, 0.1))
    assert [sp.infer_share for sp in plan.streams] == pytest.approx([0.6, 0.6])
    assert [sp.train_share for sp in plan.streams] == pytest.approx([0.4, 0.4])
    assert all(sp.config == "c" for sp in plan.streams)


def test_fair_rejects_unknown_config():
    with pytest.raises(EkyaError, match="no profile for config 'zz'"):
        FairScheduler("zz").plan([stream("a", 0.5, ("c", 0.8, 10))], lin())


@pytest.mark.parametrize("make, message", [
    (lambda: ThiefScheduler(starts=("fair", "greedy")),
     r"scheduler.starts: unknown start\(s\) \['greedy'\]; use starts from \['fair', 'inference', 'pool', 'uniform'\]"),
    (lambda: ThiefScheduler(starts=()), r"scheduler.starts must be a non-empty list of starts from \['fair'"),
    (lambda: ThiefScheduler(starts="fair"), r"scheduler.starts must be a non-empty list"),
    (lambda: ThiefScheduler(rule="double"), r"scheduler.rule must be one of \['single', 'sweep'\], got 'double'"),
    (lambda: ThiefScheduler(variant="x"), r"scheduler.variant must be one of \['paper', 'sco'\]"),
    (lambda: ThiefScheduler(a_min=1.5), r"scheduler.a_min must be in \[0, 1\]"),
    (lambda: ThiefScheduler(iterations=0), r"scheduler.iterations must be an integer >= 1"),
    (lambda: ThiefScheduler(max_passes=0), r"scheduler.max_passes must be an integer >= 1"),
    (lambda: OptimalScheduler(a_min=-0.1), r"scheduler.a_min must be in \[0, 1\]"),
    (lambda: OptimalScheduler(time_limit=0), r"scheduler.time_limit must be > 0 seconds, got 0"),
    (lambda: FairScheduler(inference_weight=1.2), r"scheduler.inference_weight must be in \[0, 1\]"),
    (lambda: UniformScheduler(inference_fraction=-1), r"scheduler.inference_fraction must be in \[0, 1\]"),
])
def test_a_bad_scheduler_option_fails_at_construction_naming_the_key(make, message):
    with pytest.raises(EkyaError, match=message):
        make()


def test_uniform_split_per_stream():
    plan = UniformScheduler("c", inference_fraction=0.3).plan([stream(n, 0.5, ("c", 0.8, 10)) for n in "ab"], lin(1))
    # a slice of 5 quanta of 0.1 per stream: 30 % of it (1.5 quanta, rounded half up) to inference,
    # the rest to training
    shares = [v for sp in plan.streams for v in (sp.infer_share, sp.train_share)]
    assert shares == pytest.approx([0.2, 0.3, 0.2, 0.3])


def test_baselines_never_starve_a_stream_when_delta_does_not_divide_the_split():
    # 6 streams on one accelerator at Delta = 0.1: 10 quanta; every stream keeps at least one quantum
    # of inference, the spare quanta go to the first streams, and nothing is left idle.
    profiles = [stream(f"s{k}", 0.5, ("c", 0.8, 10)) for k in range(6)]
    for sch in (NoRetrainScheduler(), FairScheduler("c"), UniformScheduler("c", 0.5)):
        plan = sch.plan(profiles, lin(1))
        assert min(sp.infer_share for sp in plan.streams) == pytest.approx(0.1)
        assert sum(sp.infer_share + sp.train_share for sp in plan.streams) == pytest.approx(1.0)


def test_even_split_that_cannot_pack_is_lowered_evenly():
    # 3 streams on 2 accelerators of 10 quanta: 7, 7, 6 cannot be placed without spanning; the quanta
    # spread are lowered until the even split packs: 16 as 6 | 5 + 5.
    plan = NoRetrainScheduler().plan([stream(n, 0.5) for n in "abc"], lin(2))
    assert [sp.infer_share for sp in plan.streams] == pytest.approx([0.6, 0.5, 0.5])
    assert plan.streams[1].infer_device == plan.streams[2].infer_device != plan.streams[0].infer_device


def state(now, completed, rows):
    return WindowState(now=now, completed=completed, streams=[StreamState(**r) for r in rows])


def test_default_rule_gives_the_freed_share_to_own_inference():
    st = state(40.0, "a", [
        dict(stream="a", accuracy=0.8, infer_share=0.2, train_share=0.3, done=True, infer_device=0, train_device=0),
        dict(stream="b", accuracy=0.6, infer_share=0.2, train_share=0.3, done=False, remaining=5.0,
             target_accuracy=0.9, config="c", infer_device=0, train_device=0),
    ])
    shares = give_to_inference(st, lin(), fair=False)
    assert shares["a"] == pytest.approx((0.5, 0.0))
    assert shares["b"] == pytest.approx((0.2, 0.3))


def test_fair_reallocation_splits_over_inference_jobs_on_that_device():
    st = state(40.0, "a", [
        dict(stream="a", accuracy=0.8, infer_share=0.1, train_share=0.4, done=True, infer_device=0, train_device=0),
        dict(stream="b", accuracy=0.6, infer_share=0.1, train_share=0.4, done=False, remaining=5.0, infer_device=0,
             train_device=0),
        dict(stream="c", accuracy=0.6, infer_share=0.5, train_share=0.0, done=True, infer_device=1),
    ])
    shares = FairScheduler("c").on_completion(st, lin(2))
    assert shares["a"] == pytest.approx((0.3, 0.0))
    assert shares["b"] == pytest.approx((0.3, 0.4))
    assert shares["c"] == pytest.approx((0.5, 0.0))


def test_thief_one_camera_matches_brute_force(brute):
    b = lin(1)
    p = [stream("a", 0.5, ("slow", 0.9, 50.0), ("quick", 0.7, 5.0))]
    plan = ThiefScheduler().plan(p, b)
    sp = plan.streams[0]
    assert sp.config == "quick"
    assert plan.predicted_accuracy == pytest.approx(brute(p, b))
    assert plan.predicted_accuracy == pytest.approx(window_accuracy(0.5, 0.7, 5.0, sp.infer_share, sp.train_share, b))


def test_thief_two_cameras_trains_the_bigger_gain(brute):
    b = lin(1, window=100.0)
    p = [stream("small", 0.80, ("c", 0.82, 40.0)), stream("big", 0.50, ("c", 0.90, 40.0))]
    plan = ThiefScheduler().plan(p, b)
    by = plan.by_stream()
    assert by["big"].config == "c" and by["small"].config is None
    assert plan.predicted_accuracy == pytest.approx(brute(p, b), abs=1e-9)


def test_paper_single_step_rule_runs_and_is_never_better_than_optimum(brute):
    b = lin(1, delta=0.2)
    p = [stream("a", 0.6, ("c1", 0.8, 20.0), ("c2", 0.9, 60.0)), stream("b", 0.4, ("c1", 0.7, 10.0))]
    best = brute(p, b)
    for rule in ("single", "sweep"):
        got = ThiefScheduler(rule=rule, starts=("fair",)).plan(p, b).predicted_accuracy
        assert got <= best + 1e-12
        assert got >= 0.95 * best


@pytest.mark.parametrize("seed", range(6))
def test_optimal_equals_brute_force_on_tiny_instances(brute, seed):
    rng = np.random.default_rng(seed)
    b = make_budget(int(rng.integers(1, 3)), float(rng.uniform(60, 150)), float(rng.choice([0.2, 0.25])),
                    label_delay=float(rng.choice([0.0, 5.0])), throughput=str(rng.choice(["mps", "linear"])))
    p = list(generate_profile_set(streams=int(rng.integers(1, 4)), windows=1, seed=seed, n_configs=3).truth[0])
    got = OptimalScheduler().plan(p, b).predicted_accuracy
    assert got == pytest.approx(brute(p, b), abs=1e-9)


def test_optimal_uses_the_integer_programme_when_packing_binds(brute):
    # Three streams that each want a 0.6 bundle on 2 accelerators: the relaxed DP optimum does not pack.
    b = lin(2, window=100.0, delta=0.2)
    p = [stream(n, 0.3, ("c", 0.95, 12.0)) for n in "xyz"]
    got = OptimalScheduler().plan(p, b)
    assert got.predicted_accuracy == pytest.approx(brute(p, b), abs=1e-9)


def test_a_min_keeps_inference_accuracy_up():
    b = lin(1, window=100.0)
    p = [stream("a", 0.5, ("c", 0.95, 60.0))]
    free = ThiefScheduler().plan(p, b).streams[0]
    held = ThiefScheduler(a_min=0.48).plan(p, b).streams[0]
    # unconstrained it trades inference (0.2 -> scale 0.945) for faster training
    assert free.infer_share == pytest.approx(0.2) and 0.5 * b.infer_scale(free.infer_share) < 0.48
    assert held.config == "c" and 0.5 * b.infer_scale(held.infer_share) >= 0.48


def test_sco_variant_produces_a_valid_competitive_plan():
    ps = generate_profile_set(streams=4, windows=1, seed=3)
    b = make_budget(2, 200.0, 0.1)
    sco = ThiefScheduler(variant="sco").plan(ps.truth[0], b)
    paper = ThiefScheduler().plan(ps.truth[0], b)
    fair = FairScheduler("full_d0.5_e15").plan(ps.truth[0], b)
    assert sco.predicted_accuracy > fair.predicted_accuracy
    assert sco.predicted_accuracy <= paper.predicted_accuracy + 0.02


def test_thief_is_deterministic():
    ps = generate_profile_set(streams=6, windows=1, seed=9)
    b = make_budget(3, 200.0, 0.1)
    assert ThiefScheduler().plan(ps.truth[0], b) == ThiefScheduler().plan(ps.truth[0], b)


def test_thief_needs_profiles():
    nan = float("nan")
    with pytest.raises(EkyaError, match="unknown"):
        ThiefScheduler().plan([StreamProfile("a", 0.5, (ConfigProfile("c", nan, 3.0),))], lin())


def test_per_camera_inference_curves(brute):
    # cam "hungry" needs half a GPU of inference for full accuracy; "easy" uses the default curve.
    b = make_budget(1, 100.0, 0.1, throughput="linear",
                    stream_inference={"hungry": {"max_share": 0.5, "subsampling": [1, 2, 4],
                                                 "relative_accuracy": [1.0, 0.5, 0.1]}})
    assert b.scale_for("hungry")(0.3) < b.scale_for("easy")(0.3) == 1.0
    p = [stream("hungry", 0.7, ("c", 0.8, 30.0)), stream("easy", 0.7, ("c", 0.8, 30.0))]
    plan = ThiefScheduler().plan(p, b)
    by = plan.by_stream()
    assert by["hungry"].infer_share > by["easy"].infer_share
    assert plan.predicted_accuracy == pytest.approx(brute(p, b))
    assert OptimalScheduler().plan(p, b).predicted_accuracy == pytest.approx(brute(p, b))
