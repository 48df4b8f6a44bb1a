"""play_window: exact event-driven playback, hand-computed."""

import math

import pytest

from ekya.errors import EkyaError
from ekya.plans.budget import make_budget
from ekya.plans.playback import play_window
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.fair import FairScheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.schedulers.uniform import UniformScheduler
from ekya.plans.types import Plan, StreamPlan

from helpers.plans import stream


def test_fair_reallocation_timeline_hand_computed():
    # 1 GPU, delta 0.25, linear; I_max = 0.5 so scale(.25) = .78, scale(.375) = 1 - .333*.22, scale(.5) = 1.
    b = make_budget(1, 100.0, 0.25, throughput="linear", inference={"max_share": 0.5})
    truth = [stream("a", 0.5, ("c", 0.8, 10.0)), stream("b", 0.6, ("c", 0.9, 20.0))]
    sch = FairScheduler("c", inference_weight=0.5)
    plan = sch.plan(truth, b)
    assert [(sp.infer_share, sp.train_share) for sp in plan.streams] == [(0.25, 0.25), (0.25, 0.25)]
    out = play_window(plan, truth, b, sch)
    s375 = 1 - (0.5 / 0.375 - 1) * 0.22
    assert out.streams["a"].completion_time == pytest.approx(40.0)
    assert out.streams["b"].completion_time == pytest.approx(80.0)
    assert out.streams["a"].accuracy == pytest.approx((0.5 * 0.78 * 40 + 0.8 * s375 * 40 + 0.8 * 20) / 100)
    assert out.streams["b"].accuracy == pytest.approx((0.6 * 0.78 * 40 + 0.6 * s375 * 40 + 0.9 * 20) / 100)
    segs = out.streams["a"].segments
    assert [(s.t0, s.t1, s.model) for s in segs] == [(0.0, 40.0, "old"), (40.0, 80.0, "new"), (80.0, 100.0, "new")]
    assert out.completions == ((40.0, "a"), (80.0, "b"))


def test_label_delay_then_own_inference_rule_matches_the_model():
    b = make_budget(1, 100.0, 0.1, label_delay=10.0, throughput="mps")
    truth = [stream("a", 0.6, ("c", 0.9, 20.0))]
    sch = UniformScheduler("c", inference_fraction=0.2)  # I = 0.2, R = 0.8
    plan = sch.plan(truth, b)
    out = play_window(plan, truth, b, sch)
    rate = b.train_rate(0.8)
    tc = 10.0 + 20.0 / rate
    assert out.streams["a"].completion_time == pytest.approx(tc)
    assert out.streams["a"].accuracy == pytest.approx((0.6 * 10 + 0.6 * 0.945 * (tc - 10) + 0.9 * (100 - tc)) / 100)
    assert out.streams["a"].accuracy == pytest.approx(plan.streams[0].predicted_accuracy)
    assert out.streams["a"].segments[0].infer_share == pytest.approx(1.0)  # whole allotment during the delay


def test_truth_differs_from_prediction():
    b = make_budget(1, 100.0, 0.1, throughput="linear")
    told = [stream("a", 0.5, ("c", 0.9, 10.0))]
    truth = [stream("a", 0.5, ("c", 0.7, 1000.0))]  # really far more expensive: never finishes
    sch = ThiefScheduler()
    plan = sch.plan(told, b)
    out = play_window(plan, truth, b, sch, predicted=told)
    assert plan.predicted_accuracy > 0.8
    assert out.streams["a"].completion_time is None
    assert out.streams["a"].accuracy == pytest.approx(0.5 * b.infer_scale(plan.streams[0].infer_share))


def test_thief_replans_the_freed_accelerator():
    # b's short job finishes first; re-planning hands its freed share to a's running job, which
    # then finishes sooner than under the static own-inference rule.
    b = make_budget(1, 100.0, 0.1, throughput="linear")
    truth = [stream("a", 0.5, ("c", 0.9, 25.0)), stream("b", 0.5, ("c", 0.9, 6.0))]
    thief = ThiefScheduler()
    plan = thief.plan(truth, b)
    replanned = play_window(plan, truth, b, thief)
    static = play_window(plan, truth, b, ThiefScheduler(replan_on_completion=False))
    assert static.accuracy == pytest.approx(plan.predicted_accuracy)
    assert replanned.accuracy > static.accuracy + 0.01
    assert replanned.streams["a"].completion_time < static.streams["a"].completion_time
    first = replanned.completions[0]
    assert first[1] == "b"
    a_after = [s for s in replanned.streams["a"].segments if s.t0 == first[0]][0]
    assert a_after.train_share > plan.by_stream()["a"].train_share  # took the freed share


class Greedy(Scheduler):
    name = "greedy"

    def plan(self, profiles, budget):
        return Plan(tuple(StreamPlan(p.stream, p.configs[0].config, 0.25, 0.25, 0, 0) for p in profiles))

    def on_completion(self, state, budget):
        return {s.stream: (1.0, 0.0 if s.done else 1.0) for s in state.streams}


class HalfHalfEach(Greedy):
    name = "halfhalf"

    def plan(self, profiles, budget):
        return Plan(tuple(StreamPlan(p.stream, p.configs[0].config, 0.5, 0.5, 0, 0) for p in profiles))


def test_a_scheduler_that_oversubscribes_on_completion_is_caught():
    b = make_budget(1, 100.0, 0.1, throughput="linear")
    truth = [stream("a", 0.5, ("c", 0.9, 5.0)), stream("b", 0.5, ("c", 0.9, 50.0))]
    with pytest.raises(EkyaError, match=r"scheduler 'greedy': re-planned shares at t=20.000s add up to 3"):
        play_window(Greedy().plan(truth, b), truth, b, Greedy())


def test_an_oversubscribed_initial_plan_fails_before_it_is_played():
    b = make_budget(1, 100.0, 0.1, throughput="linear")
    truth = [stream(n, 0.5, ("c", 0.9, 5.0)) for n in "abc"]
    with pytest.raises(EkyaError, match=r"scheduler 'halfhalf': its plan puts 3 of accelerator 0 to use"):
        play_window(HalfHalfEach().plan(truth, b), truth, b, HalfHalfEach())


def test_an_unplaced_job_on_several_accelerators_fails():
    b = make_budget(2, 100.0, 0.1, throughput="linear")
    truth = [stream("a", 0.5, ("c", 0.9, 5.0))]
    plan = Plan((StreamPlan("a", "c", 0.5, 0.5),))
    with pytest.raises(EkyaError, match="is on no accelerator of the 2; place the plan with ekya.plans.packing.pack"):
        play_window(plan, truth, b, NoRetrainScheduler())
    with pytest.raises(EkyaError, match="accelerator 5, but the cluster has 2"):
        play_window(Plan((StreamPlan("a", "c", 0.5, 0.5, 5, 5),)), truth, b, NoRetrainScheduler())


def test_missing_truth_is_an_error():
    b = make_budget(1, 100.0, 0.1)
    plan = Plan((StreamPlan("a", "zz", 0.5, 0.5, 0, 0),))
    with pytest.raises(EkyaError, match="zz"):
        play_window(plan, [stream("a", 0.5, ("c", 0.9, 5.0))], b, NoRetrainScheduler())


def test_an_empty_plan_plays_to_an_empty_outcome():
    b = make_budget(1, 100.0, 0.1, label_delay=2.0)
    out = play_window(ThiefScheduler().plan([], b), [], b, ThiefScheduler(), checks=[50.0])
    assert out.streams == {} and out.completions == () and math.isnan(out.accuracy)
