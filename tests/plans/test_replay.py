"""replay: our schedule files and a fragment of the original's schedules.json."""

import json

import pytest

from ekya.errors import EkyaError
from ekya.plans.budget import make_budget
from ekya.plans.schedulers.replay import ReplayScheduler, write_schedule
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.profiles.synthetic import generate
from conftest import stream

ORIGINAL = {
    "100_1_thief_True": {
        "1": {"0": {"zurich_train_4_17": 0.3, "zurich": 0.2, "jena_train_0_8": 0.25, "jena": 0.25},
              "41.5": {"zurich": 0.5, "jena_train_0_8": 0.25, "jena": 0.25}},
        "2": {"0": {"zurich": 0.5, "jena": 0.5}},
    },
    "100_1_fair_True": {"1": {"0": {"zurich": 1.0}}},
}


def profiles():
    return [stream("cam0", 0.6, ("4_17", 0.8, 10.0), ("0_8", 0.7, 2.0)), stream("cam1", 0.5, ("0_8", 0.7, 2.0))]


def test_replays_the_original_t0_allocation(tmp_path):
    path = tmp_path / "schedules.json"
    path.write_text(json.dumps(ORIGINAL))
    sch = ReplayScheduler(str(path), key="100_1_thief_True", first_task=1, camera_map={"zurich": "cam0", "jena": "cam1"})
    b = make_budget(1, 100.0, 0.05)
    sch.start_window(0)
    plan = sch.plan(profiles(), b).by_stream()
    assert (plan["cam0"].config, plan["cam0"].infer_share, plan["cam0"].train_share) == ("4_17", 0.2, 0.3)
    assert (plan["cam1"].config, plan["cam1"].infer_share, plan["cam1"].train_share) == ("0_8", 0.25, 0.25)
    plan2 = sch.plan(profiles(), b).by_stream()  # the next window follows
    assert plan2["cam0"].config is None and plan2["cam0"].infer_share == 0.5


def test_clear_errors(tmp_path):
    path = tmp_path / "schedules.json"
    path.write_text(json.dumps(ORIGINAL))
    b = make_budget(1, 100.0, 0.05)
    with pytest.raises(EkyaError, match="100_2_thief_True"):
        ReplayScheduler(str(path), key="100_2_thief_True").plan(profiles(), b)
    sch = ReplayScheduler(str(path), key="100_1_thief_True", first_task=1, camera_map={"zurich": "cam0", "jena": "cam1"})
    sch.start_window(5)
    with pytest.raises(EkyaError, match="task 6"):
        sch.plan(profiles(), b)
    with pytest.raises(EkyaError, match="cam1"):
        ReplayScheduler(str(path), key="100_1_fair_True", first_task=1, camera_map={"zurich": "cam0"}).plan(profiles(), b)
    with pytest.raises(EkyaError, match="does not exist"):
        ReplayScheduler(str(tmp_path / "nope.json")).plan(profiles(), b)


def test_our_format_round_trip(tmp_path):
    ps = generate(streams=3, windows=2, seed=2)
    b = make_budget(1, 200.0, 0.1)
    plans = {w: ThiefScheduler().plan(ps.truth[w], b) for w in range(2)}
    write_schedule(tmp_path / "s.json", plans)
    sch = ReplayScheduler(str(tmp_path / "s.json"))
    for w in range(2):
        sch.start_window(w)
        got = sch.plan(ps.truth[w], b)
        assert [(s.config, s.infer_share, s.train_share) for s in got.streams] == \
            [(s.config, s.infer_share, s.train_share) for s in plans[w].streams]
