"""The thief's Fig. 10a ablations: a fixed fair split (Ekya-FixedRes) and one fixed config (Ekya-FixedConfig)."""

import math

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR
from ekya.plans.accuracy import window_accuracy
from ekya.plans.budget import make_budget
from ekya.plans.quanta import total_units, units_per_accelerator
from ekya.plans.scheduler import StreamState, WindowState, give_to_inference
from ekya.plans.schedulers.thief import ThiefScheduler, start_units
from ekya.profiles.synthetic import generate_profile_set
from ekya.profiles.types import ConfigProfile, StreamProfile

from helpers.plans import stream


def lin(acc=1, window=100.0, delta=0.1, delay=0.0):
    return make_budget(acc, window, delta, label_delay=delay, throughput="linear")


def fair_shares(profiles, budget):
    """Per stream, the (inference, training) shares of the thief's 'fair' start."""
    jobs = [(s, 0) for s in range(len(profiles))] + [(s, 1) for s, p in enumerate(profiles) if p.configs]
    u = start_units("fair", jobs, len(profiles), total_units(budget), units_per_accelerator(budget.delta))
    return {p.stream: (u[s, 0] * budget.delta, u[s, 1] * budget.delta) for s, p in enumerate(profiles)}


def best_config(p, infer, train, budget):
    """The config (or None) with the best predicted window accuracy at fixed shares, computed directly."""
    best, value = None, window_accuracy(p.start_accuracy, 0.0, 0.0, infer, 0.0, budget, p.stream)
    for c in p.configs:
        v = window_accuracy(p.start_accuracy, c.accuracy, c.cost, infer, train, budget, p.stream)
        if v > value + 1e-12:
            best, value = c.config, v
    return best


def six_streams():
    return list(generate_profile_set(streams=6, windows=1, seed=9).truth[0]), make_budget(3, 200.0, 0.1)


# -- fixed_split ------------------------------------------------------------------------------------

def test_fixed_split_keeps_the_fair_split_where_the_thief_steals():
    profiles, b = six_streams()
    thief, fixed = ThiefScheduler().plan(profiles, b), ThiefScheduler(fixed_split=True).plan(profiles, b)
    fair = fair_shares(profiles, b)
    for sp in fixed.streams:
        p = next(q for q in profiles if q.stream == sp.stream)
        assert sp.config is not None  # every stream retrains at its fair share here
        assert (sp.infer_share, sp.train_share) == pytest.approx(fair[sp.stream])
        assert sp.config == best_config(p, sp.infer_share, sp.train_share, b)
    # the full thief moves training quanta between streams and gains from it
    assert any((sp.infer_share, sp.train_share) != pytest.approx(fair[sp.stream]) for sp in thief.streams)
    assert thief.predicted_accuracy > fixed.predicted_accuracy + 1e-6


def test_fixed_split_gives_a_training_share_that_buys_nothing_to_the_streams_inference():
    # "b" cannot finish its job on a fair quarter (160 s > 100 s), so its training quarter buys nothing;
    # the thief gives it to a's training, the fixed split to b's own inference.
    b = lin(1, delta=0.125)
    p = [stream("a", 0.5, ("quick", 0.7, 5.0), ("slow", 0.9, 50.0)), stream("b", 0.4, ("c", 0.9, 40.0))]
    thief, fixed = ThiefScheduler().plan(p, b).by_stream(), ThiefScheduler(fixed_split=True).plan(p, b).by_stream()
    assert thief["a"].train_share == pytest.approx(0.5)  # stolen from b
    assert (fixed["a"].config, fixed["a"].infer_share, fixed["a"].train_share) == ("quick", 0.25, 0.25)
    assert fixed["b"].config is None and fixed["b"].infer_share == pytest.approx(0.5)
    assert sum(sp.infer_share + sp.train_share for sp in fixed.values()) == pytest.approx(1.0)


def test_a_fair_split_that_does_not_pack_is_trimmed_never_stolen_from():
    # 3 streams on 2 accelerators at Delta 0.1: 6 jobs share 20 quanta (4, 4, 3 | 3, 3, 3), bundles of
    # 7, 7 and 6 quanta that cannot share 2 accelerators; packing trims jobs and no job grows.
    profiles = list(generate_profile_set(streams=3, windows=1, seed=4).truth[0])
    b = make_budget(2, 200.0, 0.1)
    fixed = ThiefScheduler(fixed_split=True).plan(profiles, b)
    fair = fair_shares(profiles, b)
    assert sum(fair[p.stream][0] + fair[p.stream][1] for p in profiles) == pytest.approx(2.0)
    for sp in fixed.streams:
        unused = fair[sp.stream][1] if sp.config is None else 0.0
        assert sp.train_share <= fair[sp.stream][1] + 1e-9
        assert sp.infer_share <= fair[sp.stream][0] + unused + 1e-9
    for dev in (0, 1):
        load = sum(sp.infer_share * (sp.infer_device == dev) + sp.train_share * (sp.train_device == dev)
                   for sp in fixed.streams)
        assert load <= 1.0 + 1e-9


def _two_on_one(remaining_b):
    """A window state on one accelerator: a's job just finished, b's job still runs."""
    return WindowState(now=20.0, completed="a", streams=[
        StreamState("a", 0.8, 0.3, 0.3, "c", 0.8, 0.0, True, 0, 0),
        StreamState("b", 0.5, 0.2, 0.2, "c", 0.9, remaining_b, False, 0, 0),
    ])


def test_fixed_split_never_replans_on_completion_or_progress():
    b = lin(1, window=100.0)
    state = _two_on_one(remaining_b=30.0)
    own = give_to_inference(state, b, fair=False)
    assert ThiefScheduler(fixed_split=True).on_completion(state, b) == own
    assert ThiefScheduler().on_completion(state, b) != own  # the full thief re-plans the freed share
    late = WindowState(now=20.0, completed=None, streams=[
        StreamState("a", 0.8, 0.3, 0.0, None, math.nan, 0.0, True, 0, None),
        StreamState("b", 0.5, 0.2, 0.2, "c", 0.9, 500.0, False, 0, 0),
    ])
    assert ThiefScheduler().on_progress(late, b) is not None  # b cannot finish: the thief frees its share
    assert ThiefScheduler(fixed_split=True).on_progress(late, b) is None


# -- fixed_config -----------------------------------------------------------------------------------

def test_fixed_config_makes_every_retraining_job_use_it():
    profiles, b = six_streams()
    name = profiles[0].configs[0].config
    thief, fixed = ThiefScheduler().plan(profiles, b), ThiefScheduler(fixed_config=name).plan(profiles, b)
    assert {sp.config for sp in thief.streams} - {name, None}  # the full thief picks other configs
    assert {sp.config for sp in fixed.streams} == {name}
    assert fixed.predicted_accuracy < thief.predicted_accuracy
    both = ThiefScheduler(fixed_split=True, fixed_config=name).plan(profiles, b)
    assert {sp.config for sp in both.streams} <= {name, None}


def test_fixed_config_keeps_cached_models_only_with_cached_models():
    b = make_budget(1, 100.0, 0.1, label_delay=2.0, throughput="mps")
    cache = ConfigProfile("cache:w1", 0.85, 0.0, observables={"window": 1})
    told = [StreamProfile("a", 0.40, (ConfigProfile("c1", 0.70, 60.0), ConfigProfile("c2", 0.75, 90.0), cache),
                          observables={"window": 3})]
    assert ThiefScheduler(fixed_config="c2", cached_models=True).plan(told, b).streams[0].config == "cache:w1"
    assert ThiefScheduler(fixed_config="c2").plan(told, b).streams[0].config in ("c2", None)


def test_a_fixed_config_missing_from_a_stream_names_the_key_and_the_choices():
    profiles = [stream("a", 0.5, ("c1", 0.7, 5.0)), stream("b", 0.5, ("c1", 0.7, 5.0), ("c2", 0.8, 9.0))]
    with pytest.raises(EkyaError, match=r"scheduler.fixed_config='c2': stream 'a' has no profile for it; "
                                        r"choose one of \['c1'\] .*profiler.prune_every=0"):
        ThiefScheduler(fixed_config="c2").plan(profiles, lin())


@pytest.mark.parametrize("make, message", [
    (lambda: ThiefScheduler(fixed_config="cache:w0"), r"scheduler.fixed_config='cache:w0' is a cached model"),
    (lambda: ThiefScheduler(fixed_split=True, variant="sco"), r"scheduler.fixed_split=true needs variant=paper"),
])
def test_bad_ablation_options_fail_at_construction_naming_the_key(make, message):
    with pytest.raises(EkyaError, match=message):
        make()


def test_fixed_config_works_with_the_sco_variant():
    profiles, b = six_streams()
    name = profiles[0].configs[0].config
    plan = ThiefScheduler(variant="sco", fixed_config=name).plan(profiles, b)
    assert {sp.config for sp in plan.streams} <= {name, None} and any(sp.config for sp in plan.streams)


# -- names and the shipped YAML ---------------------------------------------------------------------

def test_each_ablation_has_its_own_scheduler_name_and_the_thief_keeps_its_own():
    yaml = OmegaConf.load(CONF_DIR / "scheduler" / "thief.yaml")
    made = {over: instantiate(OmegaConf.merge(yaml, OmegaConf.from_dotlist(list(over)))).name for over in [
        (), ("fixed_split=true",), ("fixed_config=c1",), ("fixed_split=true", "fixed_config=c1")]}
    assert made == {(): "thief", ("fixed_split=true",): "thief-fixed_split",
                    ("fixed_config=c1",): "thief-fixed_config",
                    ("fixed_split=true", "fixed_config=c1"): "thief-fixed_split-fixed_config"}
    assert ThiefScheduler.name == "thief"


def test_the_shipped_yaml_is_the_full_thief():
    profiles, b = six_streams()
    shipped = instantiate(OmegaConf.load(CONF_DIR / "scheduler" / "thief.yaml"))
    assert shipped.fixed_split is False and shipped.fixed_config is None
    assert shipped.plan(profiles, b) == ThiefScheduler().plan(profiles, b)
