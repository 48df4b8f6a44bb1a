"""replay: our schedule files and a fragment of the original's schedules.json."""

import json

import pytest

from ekya.errors import EkyaError
from ekya.plans.budget import make_budget
from ekya.plans.schedulers.schedule_replay import ReplayScheduler, write_schedule
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.types import Plan, StreamPlan
from ekya.profiles.synthetic import generate_profile_set

from helpers.plans import stream

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
    sch = ReplayScheduler(str(path), key="100_1_thief_True", first_task=1,
                          camera_map={"zurich": "cam0", "jena": "cam1"})
    b = make_budget(1, 100.0, 0.05)
    sch.start_window(0)
    plan = sch.plan(profiles(), b).by_stream()
    assert (plan["cam0"].config, plan["cam0"].infer_share, plan["cam0"].train_share) == ("4_17", 0.2, 0.3)
    assert (plan["cam1"].config, plan["cam1"].infer_share, plan["cam1"].train_share) == ("0_8", 0.25, 0.25)
    assert sch.plan(profiles(), b).by_stream() == plan  # plan is pure: only start_window moves on
    sch.start_window(1)
    plan2 = sch.plan(profiles(), b).by_stream()
    assert plan2["cam0"].config is None and plan2["cam0"].infer_share == 0.5


def test_a_bad_file_or_option_fails_when_the_scheduler_is_built(tmp_path):
    path = tmp_path / "schedules.json"
    path.write_text(json.dumps(ORIGINAL))
    with pytest.raises(EkyaError, match="scheduler.path: schedule file .*nope.json does not exist"):
        ReplayScheduler(str(tmp_path / "nope.json"))
    (tmp_path / "broken.json").write_text("{oops")
    with pytest.raises(EkyaError, match="broken.json: not valid JSON"):
        ReplayScheduler(str(tmp_path / "broken.json"))
    with pytest.raises(EkyaError, match="scheduler.key: .* name the key to replay, one of .*100_1_fair_True"):
        ReplayScheduler(str(path))
    with pytest.raises(EkyaError, match="scheduler.key: '100_2_thief_True' is not in"):
        ReplayScheduler(str(path), key="100_2_thief_True")
    with pytest.raises(EkyaError,
                       match=r"scheduler.config_format='\{hp\}_\{epoch\}' is not a format of \{hp\} and \{epochs\}"):
        ReplayScheduler(str(path), key="100_1_thief_True", config_format="{hp}_{epoch}")
    (tmp_path / "ours.json").write_text(json.dumps({"format": "ekya-schedule/1"}))
    with pytest.raises(EkyaError, match="field 'windows' is missing"):
        ReplayScheduler(str(tmp_path / "ours.json"))


def test_clear_errors_at_planning(tmp_path):
    path = tmp_path / "schedules.json"
    path.write_text(json.dumps(ORIGINAL))
    b = make_budget(1, 100.0, 0.05)
    sch = ReplayScheduler(str(path), key="100_1_thief_True", first_task=1,
                          camera_map={"zurich": "cam0", "jena": "cam1"})
    sch.start_window(5)
    with pytest.raises(EkyaError, match="task 6"):
        sch.plan(profiles(), b)
    with pytest.raises(EkyaError, match="cam1"):
        ReplayScheduler(str(path), key="100_1_fair_True", first_task=1,
                        camera_map={"zurich": "cam0"}).plan(profiles(), b)


def written(plan):
    """What a schedule file holds of a plan: everything but the scheduler's own prediction."""
    return [(s.stream, s.config, s.infer_share, s.train_share, s.infer_device, s.train_device) for s in plan.streams]


def test_our_format_reads_back_exactly_what_was_written(tmp_path):
    ps = generate_profile_set(streams=5, windows=3, seed=2)
    b = make_budget(2, 200.0, 0.1, label_delay=2.0)
    plans = {w: ThiefScheduler().plan(ps.truth[w], b) for w in range(2)}
    # a custom scheduler's placement that packing would not choose (first-fit puts cam1's 0.7 on accelerator 0)
    plans[2] = Plan((StreamPlan("cam0", None, 0.5, 0.0, 0, None), StreamPlan("cam1", "head_d1_e5", 0.4, 0.3, 1, 1),
                     StreamPlan("cam2", None, 0.3, 0.0, 1, None), StreamPlan("cam3", None, 0.25, 0.0, 0, None),
                     StreamPlan("cam4", None, 0.25, 0.0, 0, None)))
    write_schedule(tmp_path / "s.json", plans)
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temporary file left behind
    sch = ReplayScheduler(str(tmp_path / "s.json"))
    for w in range(3):
        sch.start_window(w)
        assert written(sch.plan(ps.truth[w], b)) == written(plans[w])


def test_a_schedule_without_devices_or_whose_devices_do_not_fit_is_packed(tmp_path):
    doc = {"format": "ekya-schedule/1", "windows": {
        "0": [{"stream": "cam0", "config": None, "infer_share": 0.5, "train_share": 0.0},
              {"stream": "cam1", "config": "0_8", "infer_share": 0.25, "train_share": 0.25}],
        "1": [{"stream": "cam0", "config": None, "infer_share": 0.5, "train_share": 0.0,
               "infer_device": 3, "train_device": None},
              {"stream": "cam1", "config": "0_8", "infer_share": 0.25, "train_share": 0.25,
               "infer_device": 0, "train_device": 0}],
    }}
    (tmp_path / "s.json").write_text(json.dumps(doc))
    sch = ReplayScheduler(str(tmp_path / "s.json"))
    for w in range(2):  # the one accelerator of this budget: everything lands on it
        sch.start_window(w)
        assert written(sch.plan(profiles(), make_budget(1, 100.0, 0.05))) == [
            ("cam0", None, 0.5, 0.0, 0, None), ("cam1", "0_8", 0.25, 0.25, 0, 0)]
