"""model_cache and cached-model configs: causal picks, the four heuristics, zero-cost jobs, the thief, files."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ekya.errors import EkyaError
from ekya.execution.simulate import SimulateRuntime
from ekya.plans.budget import make_budget
from ekya.plans.playback import play_window
from ekya.plans.schedulers.model_cache import (
    HEURISTICS,
    ModelCacheScheduler,
    cache_name,
    earlier,
    oracle_accuracies,
    select,
)
from ekya.plans.schedulers.noretrain import NoRetrainScheduler
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.types import Plan, StreamPlan
from ekya.profiles.io import parse_profiles, read_profiles, to_document, write_profiles
from ekya.profiles.types import ConfigProfile, ProfileSet, StreamProfile

from helpers.windows import configured_window


def cached(window: int, acc: float = math.nan, **obs) -> ConfigProfile:
    """A cached-model config trained on window ``window``'s pool, with observables."""
    return ConfigProfile(cache_name(window), acc, 0.0, observables={"window": window, **obs})


def here(window: int, **obs) -> dict:
    return {"window": window, **obs}


# -- causality -------------------------------------------------------------------------------------

observable = st.fixed_dictionaries({
    "class_distribution": st.lists(st.floats(0, 1), min_size=3, max_size=3),
    "object_count": st.floats(0, 5),
    "time_of_day": st.sampled_from(["dawn", "day", "night"]),
    "location": st.sampled_from(["sf", "phx"]),
})


@settings(max_examples=200, deadline=None)
@given(now=st.integers(1, 8), cands=st.lists(st.tuples(st.integers(0, 12), observable), min_size=1, max_size=10),
       current=observable, heuristic=st.sampled_from(HEURISTICS))
def test_model_cache_never_selects_a_model_from_the_current_or_a_later_window(now, cands, current, heuristic):
    configs = tuple(ConfigProfile(f"cache:x{n}:w{w}", math.nan, 0.0, observables={"window": w, **o})
                    for n, (w, o) in enumerate(cands))
    p = StreamProfile("s", 0.5, configs, observables={"window": now, **current})
    allowed = earlier(p)
    assert all(c.observables["window"] < now for c in allowed)
    pick = select(p.observables, allowed, heuristic)
    if not allowed:
        assert pick is None
        return
    assert p.config(pick).observables["window"] < now
    b = make_budget(1, 100.0, 0.1)
    sch = ModelCacheScheduler(heuristic)
    (sp,) = sch.plan([p], b).streams
    assert p.config(sp.config).observables["window"] < now


def test_model_cache_refuses_a_window_without_earlier_models():
    p = StreamProfile("s", 0.5, (cached(1), cached(2)), observables=here(1))
    with pytest.raises(EkyaError, match="no cached model of an earlier window"):
        ModelCacheScheduler().plan([p], make_budget(1, 100.0, 0.1))


# -- the four heuristics ------------------------------------------------------------------------------

A, B, C = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]


def test_class_distribution_picks_the_closest_histogram_even_if_older():
    cands = [cached(0, class_distribution=A), cached(1, class_distribution=B), cached(2, class_distribution=C)]
    assert select(here(3, class_distribution=[0.9, 0.1, 0.0]), cands, "class_distribution") == "cache:w0"
    # raw counts are normalised first: [30, 0, 0] is the same mix as A
    assert select(here(3, class_distribution=[0.0, 30.0, 0.0]), cands, "class_distribution") == "cache:w1"


def test_ties_fall_back_to_the_most_recent_model():
    cands = [cached(0, class_distribution=A), cached(2, class_distribution=A), cached(1, class_distribution=A)]
    assert select(here(3, class_distribution=A), cands, "class_distribution") == "cache:w2"
    assert select(here(3), cands, "class_distribution") == "cache:w2"  # nothing observable: the newest


def test_time_of_day_matches_first_then_class_distribution():
    cands = [cached(0, class_distribution=A, time_of_day="night"), cached(1, class_distribution=B, time_of_day="day"),
             cached(2, class_distribution=C, time_of_day="night")]
    now = here(3, class_distribution=B, time_of_day="night")
    # among the night models, C is closer to B than A is
    assert select(now, cands, "time_of_day") == "cache:w2"
    # a miss (no model of that time of day, or no such column) falls back to the class histogram
    assert select(here(3, class_distribution=B, time_of_day="dawn"), cands, "time_of_day") == "cache:w1"
    assert select(here(3, class_distribution=B), cands, "time_of_day") == "cache:w1"


def test_object_count_picks_the_closest_count_ties_by_class_distribution():
    cands = [cached(0, class_distribution=A, object_count=1.0), cached(1, class_distribution=B, object_count=3.0),
             cached(2, class_distribution=C, object_count=3.0)]
    assert select(here(3, class_distribution=A, object_count=1.2), cands, "object_count") == "cache:w0"
    assert select(here(3, class_distribution=A, object_count=2.9), cands, "object_count") == "cache:w2"
    assert select(here(3, class_distribution=B, object_count=2.9), cands, "object_count") == "cache:w1"


def test_location_matches_the_same_place():
    cands = [cached(0, class_distribution=A, location="phx"), cached(1, class_distribution=B, location="sf"),
             cached(2, class_distribution=B, location="phx")]
    assert select(here(3, class_distribution=B, location="phx"), cands, "location") == "cache:w2"
    assert select(here(3, class_distribution=A, location="sf"), cands, "location") == "cache:w1"
    assert select(here(3, class_distribution=A, location="la"), cands, "location") == "cache:w0"


def test_unknown_heuristic_is_a_user_error():
    with pytest.raises(EkyaError, match="scheduler.heuristic"):
        ModelCacheScheduler("weather")


# -- zero-cost jobs in playback ----------------------------------------------------------------------

def test_a_zero_cost_job_without_a_share_goes_live_at_the_label_delay():
    b = make_budget(1, 100.0, 0.1, label_delay=10.0, throughput="linear", inference={"max_share": 0.5})
    truth = [StreamProfile("s", 0.4, (ConfigProfile("cache:w0", 0.9, 0.0),))]
    plan = Plan((StreamPlan("s", "cache:w0", 0.5, 0.0, infer_device=0),))
    out = play_window(plan, truth, b, NoRetrainScheduler())
    res = out.streams["s"]
    assert res.completion_time == pytest.approx(10.0)
    assert res.accuracy == pytest.approx((0.4 * 10 + 0.9 * 90) / 100)
    # a config of positive cost and no share is still no job at all (unchanged behaviour)
    costly = [StreamProfile("s", 0.4, (ConfigProfile("cache:w0", 0.9, 5.0),))]
    res = play_window(plan, costly, b, NoRetrainScheduler()).streams["s"]
    assert res.completion_time is None and res.accuracy == pytest.approx(0.4)


def test_a_zero_cost_job_with_a_training_share_hands_it_to_inference():
    b = make_budget(1, 100.0, 0.25, label_delay=10.0, throughput="linear", inference={"max_share": 0.5})
    truth = [StreamProfile("s", 0.4, (ConfigProfile("cache:w0", 0.9, 0.0),))]
    plan = Plan((StreamPlan("s", "cache:w0", 0.25, 0.25, infer_device=0, train_device=0),))
    res = play_window(plan, truth, b, ThiefScheduler(cached_models=True)).streams["s"]
    assert res.completion_time == pytest.approx(10.0)
    # co-located: the stream serves with 0.5 (saturated) before the delay and after completion
    assert res.accuracy == pytest.approx((0.4 * 10 + 0.9 * 90) / 100)


# -- the thief with cached models ---------------------------------------------------------------------

def _scene_returned():
    """Two streams whose scene came back: an old cached model beats every retraining config."""
    b = make_budget(1, 100.0, 0.1, label_delay=2.0, throughput="mps")
    told = [StreamProfile("a", 0.40, (ConfigProfile("c1", 0.70, 60.0), ConfigProfile("c2", 0.75, 90.0),
                                      cached(1, 0.85))),
            StreamProfile("b", 0.60, (ConfigProfile("c1", 0.65, 20.0), cached(0, 0.50)))]
    truth = [StreamProfile("a", 0.40, (ConfigProfile("c1", 0.70, 60.0), ConfigProfile("c2", 0.75, 90.0),
                                       ConfigProfile("cache:w1", 0.85, 0.0, val_accuracy=0.85))),
             StreamProfile("b", 0.60, (ConfigProfile("c1", 0.65, 20.0),
                                       ConfigProfile("cache:w0", 0.50, 0.0, val_accuracy=0.50)))]
    return b, told, truth


def test_thief_with_cached_models_is_never_worse_planned_and_takes_the_better_cached_model():
    b, told, truth = _scene_returned()
    plain, with_cache = ThiefScheduler(), ThiefScheduler(cached_models=True)
    p0, p1 = plain.plan(told, b), with_cache.plan(told, b)
    assert p0.by_stream()["a"].config in (None, "c1", "c2")  # cached configs are ignored without the key
    assert p1.by_stream()["a"].config == "cache:w1"
    assert p1.predicted_accuracy >= p0.predicted_accuracy - 1e-12
    played0 = play_window(p0, truth, b, plain, predicted=told).accuracy
    played1 = play_window(p1, truth, b, with_cache, predicted=told).accuracy
    assert played1 > played0
    # a cached model holds its quantum only as inference: every share of the plan serves someone
    assert sum(sp.infer_share + sp.train_share for sp in p1.streams) == pytest.approx(1.0)


def test_thief_without_the_key_plans_exactly_as_on_profiles_without_cached_configs():
    b, told, _ = _scene_returned()
    stripped = [StreamProfile(p.stream, p.start_accuracy,
                              tuple(c for c in p.configs if not c.config.startswith("cache:")))
                for p in told]
    assert ThiefScheduler().plan(told, b) == ThiefScheduler().plan(stripped, b)


# -- the upper bound ----------------------------------------------------------------------------------

def test_oracle_is_the_best_earlier_candidate_after_the_fact():
    b = make_budget(1, 100.0, 0.1, label_delay=2.0)
    told = [StreamProfile("s", 0.5, (cached(0, class_distribution=A), cached(1, class_distribution=B),
                                     cached(2, class_distribution=B)), observables=here(2, class_distribution=A))]
    truth = [StreamProfile("s", 0.5, (ConfigProfile("cache:w0", 0.6, 0.0), ConfigProfile("cache:w1", 0.8, 0.0),
                                      ConfigProfile("cache:w2", 0.99, 0.0)))]
    sch = ModelCacheScheduler()
    plan = sch.plan(told, b)
    assert plan.streams[0].config == "cache:w0"  # closest histogram
    played = play_window(plan, truth, b, sch, predicted=told).streams["s"].accuracy
    best = oracle_accuracies(plan, truth, told, b, sch)["s"]
    # w2 (0.99) is from the current window: never a candidate, not even for the upper bound
    want = play_window(Plan((replace(plan.streams[0], config="cache:w1"),)), truth, b, sch,
                       predicted=told).streams["s"].accuracy
    assert best == pytest.approx(want) and best > played


# -- the profile file and simulate ------------------------------------------------------------------------

def _profile_set() -> ProfileSet:
    truth, pred = [], []
    for w in (1, 2):
        obs = here(w, class_distribution=A if w == 1 else B, object_count=1.0)
        cands_t = tuple(ConfigProfile(cache_name(i), 0.5 + 0.1 * i, 0.0, val_accuracy=0.45 + 0.1 * i,
                                      observables={"window": i, "class_distribution": A if i == 0 else B})
                        for i in range(w))
        cands_p = tuple(ConfigProfile(c.config, c.val_accuracy, 0.0, observables=c.observables) for c in cands_t)
        truth.append((StreamProfile("cam0", 0.5, (ConfigProfile("c1", 0.7, 30.0),) + cands_t, observables=obs),))
        pred.append((StreamProfile("cam0", 0.48, (ConfigProfile("c1", 0.65, 28.0),) + cands_p, observables=obs),))
    return ProfileSet(tuple(truth), tuple(pred), ("1", "2"), {"c1": {"epochs": 1}})


def test_profile_file_round_trips_observables_and_cached_configs(tmp_path):
    ps = _profile_set()
    write_profiles(tmp_path / "p.json", ps)
    back = read_profiles(tmp_path / "p.json")
    assert back.truth == ps.truth and back.predicted == ps.predicted
    doc = to_document(ps)
    del doc["streams"]["cam0"][0]["configs"]["cache:w0"]["observables"]
    with pytest.raises(EkyaError, match=r"cache:w0\.observables\.window is missing"):
        parse_profiles(doc)


def test_old_profile_files_still_load(tmp_path):
    doc = {"format": "ekya-profiles/1", "streams": {"s": [{"start_accuracy": 0.5, "configs": {"c": {"accuracy": 0.7,
                                                                                                    "cost": 3.0}}}]}}
    (tmp_path / "old.json").write_text(json.dumps(doc))
    ps = read_profiles(tmp_path / "old.json")
    assert ps.truth[0][0] == StreamProfile("s", 0.5, (ConfigProfile("c", 0.7, 3.0),))


def _simulate(tmp_path, scheduler):
    write_profiles(tmp_path / "p.json", _profile_set())
    budget = make_budget(1, 100.0, 0.1, label_delay=2.0)
    rt = SimulateRuntime(scheduler=scheduler, budget=budget, window=configured_window(seconds=100.0, segments=1),
                         seed=0, space={}, profiles=str(tmp_path / "p.json"))
    return [r for w in rt.windows for r in rt.play(w).records]


def test_simulate_plays_model_cache_with_its_upper_bound(tmp_path):
    recs = _simulate(tmp_path, ModelCacheScheduler())
    assert [r.config for r in recs] == ["cache:w0", "cache:w1"]  # window 2 looks like w1's data (B)
    assert all(r.train_share == 0 and r.retrain_cost == 0 and r.completion_time == 2.0 for r in recs)
    assert recs[0].accuracy == pytest.approx((0.5 * 2 + 0.5 * 98) / 100)
    assert recs[1].accuracy == pytest.approx((0.5 * 2 + 0.6 * 98) / 100)
    assert all(r.oracle_accuracy >= r.accuracy - 1e-12 for r in recs)
    assert np.isnan(_simulate(tmp_path, ThiefScheduler())[0].oracle_accuracy)


def test_simulate_thief_ignores_cached_configs_unless_asked(tmp_path):
    plain = _simulate(tmp_path, ThiefScheduler())
    assert all(not r.config.startswith("cache:") for r in plain)
    with_cache = _simulate(tmp_path, ThiefScheduler(cached_models=True))
    assert np.mean([r.accuracy for r in with_cache]) >= np.mean([r.accuracy for r in plain]) - 1e-12
