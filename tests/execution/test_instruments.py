"""Measurement instruments (runtime.instrument): the thief with free profiling and the oracle thief, on tiny runs."""

from __future__ import annotations

import dataclasses
import math
import sys

import pytest

from ekya.composition import build_runtime
from ekya.execution.runtime import WindowResult
from ekya.plans.types import Budget
from ekya.profiles.types import StreamProfile

from helpers.stores import seed_store

#: one camera keeps the oracle (every config retrained per camera and window) to a few seconds a window
TINY = ["experiment=tiny", "threads=1", "dataset.cameras=1", "scheduler=thief"]


def _play(make_cfg, *overrides: str, windows: tuple[int, ...] = (1,)):
    """Build a tiny emulate runtime, play the windows; the runtime, its results and the budgets its plans got."""
    rt, _ = build_runtime(make_cfg(*TINY, *overrides))
    budgets: list[Budget] = []
    plan = rt.scheduler.plan

    def spy(told, budget):
        budgets.append(budget)
        return plan(told, budget)

    rt.scheduler.plan = spy
    rt.setup(None)
    return rt, [rt.play(k) for k in windows], budgets


def _numbers(told: list[StreamProfile]) -> list[tuple]:
    """What a scheduler is told, as plain numbers (NaN-safe to compare)."""
    return [(p.stream, repr(p.start_accuracy), tuple((c.config, repr(c.accuracy), repr(c.cost), repr(c.segments))
                                                    for c in p.configs)) for p in told]


def _records(result: WindowResult) -> list[str]:
    """The window's records as text, but for the scheduler's wall time (the one figure that is not simulated)."""
    return [repr(dataclasses.replace(r, scheduler_seconds=0.0)) for r in result.records]


def test_free_profiling_tells_the_shipped_predictions_and_charges_nothing(make_cfg):
    shipped_rt, (shipped,), (charged,) = _play(make_cfg)
    free_rt, (free,), (budget,) = _play(make_cfg, "runtime.instrument=free_profiling")
    _, (again,), _ = _play(make_cfg, "runtime.instrument=free_profiling")
    assert _numbers(again.told) == _numbers(free.told) and _records(again) == _records(free)  # deterministic
    # the shipped thief pays for its profiling: retraining waits, inference shares the accelerator
    window = shipped_rt.retraining.settings
    assert charged.label_delay > window.label_delay and charged.profiling_seconds > 0
    assert charged.profiling_fraction > 0
    # the same trials on the same seeds: the very same predictions
    assert _numbers(free.told) == _numbers(shipped.told) and free.told
    # but profiling delays nothing and takes no share
    assert budget == free_rt.budget
    assert budget.label_delay == window.label_delay and budget.profiling_seconds == 0
    assert budget.profiling_fraction == 0
    # and the records still say what it would have cost
    cost = {r.stream: r.profiling_cost for r in shipped.records}
    assert all(c > 0 for c in cost.values())
    assert {r.stream: r.profiling_cost for r in free.records} == cost
    assert shipped_rt.describe()["instrument"] == "none"
    assert free_rt.describe()["instrument"] == "free_profiling" and free_rt.describe()["scheduler"] == "thief"


def test_the_oracle_is_told_what_really_happens_and_trains_each_job_once(make_cfg):
    oracle = ["runtime.instrument=oracle", "runtime.cost_noise=0.3"]  # realised costs differ from measured ones
    rt, _ = build_runtime(make_cfg(*TINY, *oracle))
    retrained = []
    retrain = rt.retraining.learner.retrain

    def counted(model, config, *args, **kwargs):
        retrained.append(config.name)
        return retrain(model, config, *args, **kwargs)

    rt.retraining.learner.retrain = counted
    budgets: list[Budget] = []
    plan = rt.scheduler.plan
    rt.scheduler.plan = lambda told, budget: budgets.append(budget) or plan(told, budget)
    rt.setup(None)
    served, results = 0, []
    for k in (1, 2):
        retrained.clear()
        result = rt.play(k)
        results.append(result)
        # every config on every camera, and the job the plan picked is one of those models, not trained again
        assert sorted(retrained) == sorted(list(rt.retraining.space) * len(rt.streams))
        assert budgets[-1] == rt.budget  # free: no delay, no share taken
        told = {p.stream: p for p in result.told}
        for r in result.records:
            t = told[r.stream]
            assert {c.config for c in t.configs} == set(rt.retraining.space)
            assert t.start_accuracy == r.start_accuracy  # the serving model's live accuracy
            assert r.profiling_cost == 0.0
            if r.config != "none" and math.isfinite(r.completion_time):
                served += 1
                job = t.config(r.config)
                assert r.end_accuracy == job.accuracy and r.retrain_cost == job.cost == r.predicted_cost
        # a config the plan did not need for this camera: retraining it as the real job would gives what was told
        cam = rt.streams[0]
        name = next(n for n in rt.retraining.space if n != by_stream(result)[cam])
        job = rt.retraining.retrain(cam, name, k, rt.retraining.window_start[cam]).profile
        told_job = told[cam].config(name)
        assert (job.accuracy, job.cost, job.segments) == (told_job.accuracy, told_job.cost, told_job.segments)
    assert served > 0  # the plans served retrained models, so the equalities above were checked
    assert rt.describe()["instrument"] == "oracle"
    _, (again,), _ = _play(make_cfg, *oracle)  # deterministic: the same seed tells and plays the same numbers
    assert _numbers(again.told) == _numbers(results[0].told) and _records(again) == _records(results[0])


def by_stream(result: WindowResult) -> dict[str, str]:
    """Each camera's planned config ("none" for none)."""
    return {r.stream: r.config for r in result.records}


@pytest.mark.parametrize("args, needle", [
    (["scheduler=fair", "runtime.instrument=oracle"], "scheduler 'fair'"),
    (["runtime.instrument=perfect"], "free_profiling, oracle"),
    (["runtime=ray", "runtime.instrument=oracle"], "Could not override"),  # ray plays no instruments
])
def test_an_instrument_that_cannot_be_played_is_one_line(args, needle, tmp_path, monkeypatch, capfd):
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", ["ekya", "experiment=tiny", "threads=1", *args])
    seed_store(tmp_path)
    with pytest.raises(SystemExit) as done:
        cli()
    lines = capfd.readouterr().err.strip().splitlines()
    assert done.value.code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("ekya: error: ") and "runtime.instrument" in lines[0] and needle in lines[0]
    assert not list(tmp_path.glob("outputs/runs/*/state.pkl"))
