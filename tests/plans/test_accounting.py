"""What a window costs and what a scheduler may know: the accounting rules of play_window and the tables."""

from dataclasses import replace

import pytest

from ekya.plans.budget import make_budget
from ekya.plans.playback import play_window
from ekya.plans.scheduler import Scheduler
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.types import Plan, StreamPlan
from ekya.plans.value_tables import build_tables
from ekya.profiles.types import ConfigProfile, StreamProfile

from helpers.plans import stream


def profiling_budget(accelerators=1, window=100.0, delay=2.0, seconds=8.0, fraction=0.5):
    """A budget whose micro-profiling trials hold ``fraction`` of the accelerators over [delay, delay + seconds)."""
    b = make_budget(accelerators, window, 0.05, label_delay=delay + seconds, throughput="linear")
    return replace(b, profiling_seconds=seconds, profiling_fraction=fraction)


def test_micro_profiling_takes_its_share_from_inference_in_play_and_in_the_tables():
    b = profiling_budget()
    truth = [stream(f"s{k}", 0.8) for k in range(6)]
    sch = NoRetrainScheduler()
    out = play_window(sch.plan(truth, b), truth, b, sch)
    # 20 quanta of 0.05 over 6 streams: 4, 4, 3, 3, 3, 3; all below the 0.25 an inference job needs:
    # it subsamples, and with half of its share more so
    shares = [0.2, 0.2, 0.15, 0.15, 0.15, 0.15]
    expected = sum(0.8 * (b.infer_scale(s) * 92 + b.infer_scale(s / 2) * 8) / 100 for s in shares) / 6
    assert out.accuracy == pytest.approx(expected, rel=1e-12)
    served = sum(0.8 * b.infer_scale(s) for s in shares) / 6
    assert out.accuracy < served - 1e-3  # today's main charged nothing here
    # the thief's value tables price the same interval the same way
    tables = build_tables(truth, b)
    assert tables.value(0, 3, 0) == pytest.approx(0.8 * (b.infer_scale(0.15) * 92 + b.infer_scale(0.075) * 8) / 100)


def test_the_thief_predicts_what_play_window_then_charges_for_profiling():
    b = profiling_budget(delay=2.0, seconds=20.0)
    truth = [stream(f"s{k}", 0.6, ("c", 0.9, 10.0)) for k in range(6)]
    thief = ThiefScheduler()
    plan = thief.plan(truth, b)
    out = play_window(plan, truth, b, ThiefScheduler(replan_on_completion=False))
    assert out.accuracy == pytest.approx(plan.predicted_accuracy, abs=1e-9)
    free = replace(b, profiling_seconds=0.0, profiling_fraction=0.0)
    assert plan.predicted_accuracy < ThiefScheduler().plan(truth, free).predicted_accuracy


class Recorder(ThiefScheduler):
    """A thief that records what each re-planning event told it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def on_completion(self, state, budget):
        self.seen.append({s.stream: s.accuracy for s in state.streams})
        return super().on_completion(state, budget)


def test_re_planning_learns_validation_accuracy_never_live_truth():
    b = make_budget(1, 100.0, 0.05, label_delay=2.0, throughput="linear")
    # live truth: start 0.50, retrained 0.95; observable: start 0.60 (validation), retrained 0.77
    truth = [StreamProfile("a", 0.50, (ConfigProfile("c", 0.95, 5.0, val_accuracy=0.77),)),
             StreamProfile("b", 0.40, (ConfigProfile("c", 0.90, 15.0, val_accuracy=0.70),))]
    told = [stream("a", 0.60, ("c", 0.85, 5.0)), stream("b", 0.55, ("c", 0.80, 15.0))]
    plan = Plan((StreamPlan("a", "c", 0.25, 0.25, 0, 0), StreamPlan("b", "c", 0.25, 0.25, 0, 0)))
    rec = Recorder()
    play_window(plan, truth, b, rec, predicted=told)
    assert rec.seen[0] == {"a": 0.77, "b": 0.55}  # a's new model by its validation, b's old one by its start
    assert rec.seen[1] == {"a": 0.77, "b": 0.70}
    # without a measured validation accuracy (simulate), it learns the prediction, not the truth
    truth = [stream("a", 0.50, ("c", 0.95, 5.0)), stream("b", 0.40, ("c", 0.90, 15.0))]
    rec = Recorder()
    play_window(plan, truth, b, rec, predicted=told)
    assert rec.seen[0] == {"a": 0.85, "b": 0.55}


def test_each_model_is_scored_on_the_segments_it_serves():
    b = make_budget(1, 100.0, 0.05, label_delay=2.0, throughput="linear")
    # the old model is right early and wrong late, the new one the reverse; the job ends at t = 50
    drifting = StreamProfile("a", 0.5, (ConfigProfile("c", 0.5, 24.0, segments=(0.0, 1.0)),), start_segments=(1.0, 0.0))
    plan = Plan((StreamPlan("a", "c", 0.5, 0.5, 0, 0),))
    out = play_window(plan, [drifting], b, NoRetrainScheduler())
    assert out.streams["a"].completion_time == pytest.approx(50.0)
    assert out.accuracy == pytest.approx(1.0)
    flat = StreamProfile("a", 0.5, (ConfigProfile("c", 0.5, 24.0),))
    assert play_window(plan, [flat], b, NoRetrainScheduler()).accuracy == pytest.approx(0.5)


def test_a_job_that_will_not_finish_gives_its_share_back_at_a_progress_check():
    b = make_budget(1, 100.0, 0.05, label_delay=2.0, throughput="linear")
    told = [stream("a", 0.5, ("c", 0.95, 5.0))] + [stream(f"s{k}", 0.8) for k in range(5)]
    # really the job needs forty times the predicted work: it cannot finish in the window
    truth = [stream("a", 0.5, ("c", 0.95, 200.0))] + [stream(f"s{k}", 0.8) for k in range(5)]
    thief = ThiefScheduler()
    plan = thief.plan(told, b)
    assert plan.by_stream()["a"].train_share > 0
    blind = play_window(plan, truth, b, ThiefScheduler())
    checked = play_window(plan, truth, b, ThiefScheduler(), predicted=told, checks=[10.0 * j for j in range(1, 10)])
    assert blind.streams["a"].completion_time is None and checked.streams["a"].completion_time is None
    assert blind.streams["a"].segments[-1].train_share > 0  # held to the end for nothing
    assert checked.streams["a"].segments[-1].train_share == 0.0
    assert checked.accuracy > blind.accuracy + 1e-3


class Keep(Scheduler):
    name = "keep"

    def plan(self, profiles, budget):
        return Plan(())


def test_progress_checks_change_nothing_for_schedulers_that_keep_their_plan():
    b = make_budget(1, 100.0, 0.05, label_delay=2.0, throughput="linear")
    truth = [stream("a", 0.5, ("c", 0.95, 200.0)), stream("b", 0.6, ("c", 0.9, 20.0))]
    plan = Plan((StreamPlan("a", "c", 0.25, 0.25, 0, 0), StreamPlan("b", "c", 0.25, 0.25, 0, 0)))
    a = play_window(plan, truth, b, Keep())
    c = play_window(plan, truth, b, Keep(), checks=[25.0, 50.0, 75.0])
    assert a.accuracy == c.accuracy
