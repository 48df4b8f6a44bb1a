"""The paper's illustrative example (section 3.2, Table 1, Fig. 4), window 1, under our model.

Setup from the paper: 3 GPUs, streams A and B, a 120 s window, start accuracy A 65 %, B 50 %;
configs Cfg1A 75 % / 85 GPU-s, Cfg2A 70 % / 65, Cfg1B 90 % / 80, Cfg2B 85 % / 50 (GPU-seconds at
a full GPU). The paper reports: uniform (even split, most accurate configs) 56 %; the
accuracy-optimised scheduler 73 %, never below a_MIN = 40 %.

Assumptions the paper leaves open, and ours:
* Throughput: linear in the GPU share (the paper's arithmetic only works with linear scaling).
* Inference profile: the paper's uniform drops A 65 -> 49 % and B 50 -> 37.5 % while retraining,
  i.e. a stream keeps 75 % of its accuracy with half a GPU of inference. We use exactly that
  profile: I_max = 1 GPU and relative accuracy 1 at subsampling 1, 0.75 at subsampling 2.
* Uniform: each stream gets 1.5 GPUs, 0.5 for inference and 1.0 for retraining (the split that
  reproduces the paper's drop), configs Cfg1A / Cfg1B (the most accurate).
* A job never spans two GPUs (our packing rule). This is where we depart from the paper's
  numbers: the paper's 56 % needs a finished job's GPU to go to its stream's inference (with a
  0.5 + 1.0 GPU stream that is a second GPU: (0.65*0.75*85 + 0.75*35)/120 and
  (0.5*0.75*80 + 0.9*40)/120 average to 55.7 %), and its 73 % needs B's retraining to use two
  GPUs at once (25 s), then A's (32.5 s). Under our rule the freed GPU cannot reach inference
  that sits on another GPU, so uniform measures 49.2 %, and the best static plan is: A does not
  retrain (65 % throughout, 1 GPU of inference), B retrains Cfg2B on a full GPU next to a full GPU
  of inference and finishes at 50 s: (65 + (50*50 + 85*70)/120) / 2 = 67.7 %.

What we assert, honestly: uniform = 49.2 % (hand-computed); the thief finds the exact optimum of
our plan space (67.7 %, equal to brute force), picks the cheaper Cfg2B, gives B priority (its gain
is the larger), respects a_MIN = 40 %, and beats uniform by >= 15 points (the paper: 17 points).
"""

import pytest

from ekya.plans.budget import make_budget
from ekya.plans.curves import InferenceCurve
from ekya.plans.playback import play_window
from ekya.plans.schedulers.optimal import OptimalScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.schedulers.uniform import UniformScheduler

from helpers.plans import stream

BUDGET = make_budget(3, 120.0, 0.1, throughput="linear",
                     inference=InferenceCurve(subsampling=(1, 2), relative_accuracy=(1.0, 0.75), max_share=1.0))
A = stream("A", 0.65, ("cfg1", 0.75, 85.0), ("cfg2", 0.70, 65.0))
B = stream("B", 0.50, ("cfg1", 0.90, 80.0), ("cfg2", 0.85, 50.0))


def test_uniform_most_accurate_configs():
    sch = UniformScheduler("cfg1", inference_fraction=1 / 3)
    plan = sch.plan([A, B], BUDGET)
    assert [v for sp in plan.streams for v in (sp.infer_share, sp.train_share)] == pytest.approx([0.5, 1.0, 0.5, 1.0])
    out = play_window(plan, [A, B], BUDGET, sch)
    assert out.streams["A"].completion_time == pytest.approx(85.0)
    assert out.streams["B"].completion_time == pytest.approx(80.0)
    a = (0.65 * 0.75 * 85 + 0.75 * 0.75 * 35) / 120
    b = (0.50 * 0.75 * 80 + 0.90 * 0.75 * 40) / 120
    assert out.accuracy == pytest.approx((a + b) / 2)
    assert out.accuracy == pytest.approx(0.492, abs=5e-4)


def test_accuracy_optimised_schedule(brute):
    thief = ThiefScheduler(a_min=0.40)
    plan = thief.plan([A, B], BUDGET)
    out = play_window(plan, [A, B], BUDGET, thief)
    by = plan.by_stream()
    assert by["B"].config == "cfg2"  # the cheaper config
    assert by["A"].config is None  # B's gain (+35 %) beats A's (+5 %)
    best = (0.65 + (0.5 * 50 + 0.85 * 70) / 120) / 2
    assert out.accuracy == pytest.approx(best)
    assert plan.predicted_accuracy == pytest.approx(brute([A, B], BUDGET))
    assert OptimalScheduler().plan([A, B], BUDGET).predicted_accuracy == pytest.approx(best)
    for res in out.streams.values():  # a_MIN: inference never below 40 %
        for seg in res.segments:
            acc = {"A": (0.65, 0.70), "B": (0.50, 0.85)}[res.stream][seg.model == "new"]
            assert acc * BUDGET.infer_scale(seg.infer_share) >= 0.40 - 1e-9
    uniform = play_window(UniformScheduler("cfg1", 1 / 3).plan([A, B], BUDGET), [A, B], BUDGET,
                          UniformScheduler("cfg1", 1 / 3))
    assert out.accuracy - uniform.accuracy >= 0.15
