"""The robustness benchmark: its statistics on known numbers, and one tiny real matrix that resumes."""

from __future__ import annotations

import json
import math

import pytest
from scipy.stats import t as student_t

from ekya.bench import robustness
from ekya.bench.robustness import (
    RunResult,
    estimate,
    noretrain_of,
    paired_margin,
    select_members,
    split_names,
    summarize_cell,
)
from ekya.errors import EkyaError


def test_mean_and_t_interval_on_known_numbers():
    e = estimate([0.7, 0.8, 0.9])
    half = student_t.ppf(0.975, 2) * 0.1 / math.sqrt(3)
    assert e.mean == pytest.approx(0.8) and e.n == 3
    assert e.ci == pytest.approx((0.8 - half, 0.8 + half))


def test_one_seed_gives_no_interval():
    assert estimate([0.75]).ci is None
    assert summarize_cell({"thief": {0: 0.8}, "fair": {0: 0.7}})["thief_margin_ci_points"] is None


def test_best_uniform_is_chosen_after_the_fact_and_the_margin_is_paired():
    values = {
        "thief": {0: 0.80, 1: 0.90, 2: 0.70},
        "fair": {0: 0.60, 1: 0.70, 2: 0.50},
        "noretrain": {0: 0.70, 1: 0.75, 2: 0.65},
        "uniform[a,0.3]": {0: 0.50, 1: 0.55, 2: 0.45},
        "uniform[a,0.9]": {0: 0.76, 1: 0.88, 2: 0.60},  # best uniform and best baseline (mean 0.7467)
    }
    rep = summarize_cell(values)
    assert rep["best_uniform"]["member"] == "uniform[a,0.9]"
    assert rep["best_baseline"] == "uniform[a,0.9]"
    diffs = [0.04, 0.02, 0.10]  # thief - uniform[a,0.9], seed by seed
    m = estimate(diffs)
    assert rep["thief_margin_points"] == round(100 * m.mean, 2)
    assert rep["thief_margin_ci_points"] == [round(100 * c, 2) for c in m.ci]
    assert rep["thief"] == {"mean": 0.8, "ci": [round(c, 4) for c in estimate([0.8, 0.9, 0.7]).ci]}
    assert set(rep["uniform"]) == {"uniform[a,0.3]", "uniform[a,0.9]"}
    # Paired: seeds vary a lot, but thief is 5 points above fair on every one -> a zero-width interval.
    paired = summarize_cell({"thief": {0: 0.55, 1: 0.95}, "fair": {0: 0.50, 1: 0.90}})
    assert paired["thief_margin_points"] == 5.0 and paired["thief_margin_ci_points"] == [5.0, 5.0]
    assert paired_margin({0: 1.0, 1: 2.0}, {1: 1.5, 2: 9.0}).mean == pytest.approx(0.5)
    assert paired_margin({0: 1.0}, {1: 1.0}) is None


def test_member_filter_keeps_brackets_and_prefixes():
    assert split_names("fair,uniform[full_h256_f0.5_e5,0.5]") == ["fair", "uniform[full_h256_f0.5_e5,0.5]"]
    members = robustness.all_members()
    assert len(members) == 8
    got = [m.name for m in select_members(members, ["fair", "uniform[full_h256_f0.5_e5,0.5]"])]
    assert got == ["fair", "uniform[full_h256_f0.5_e5,0.5]"]
    assert len(select_members(members, ["uniform"])) == 6
    with pytest.raises(EkyaError, match="matches no member"):
        select_members(members, ["nope"])


def _result(member: str, noretrain: float) -> RunResult:
    return RunResult("c", 0, member, 0.5, noretrain, (0.5,), (noretrain,), 1.0, ())


def test_noretrain_comes_from_fair_and_must_agree_with_thief():
    assert noretrain_of([_result("thief", 0.6), _result("fair", 0.6)]) == {0: 0.6}
    with pytest.raises(EkyaError, match="noretrain reference"):
        noretrain_of([_result("thief", 0.6), _result("fair", 0.6 + 1e-9)])


SMOKE = ["--cell", "default", "--seeds", "1", "--members", "fair,uniform[full_h256_f0.5_e5,0.5]",
         "--overrides", "experiment=tiny"]


def test_tiny_matrix_runs_stores_and_resumes(tmp_path, monkeypatch):
    first = robustness.main([*SMOKE, "--out", str(tmp_path)])
    seed_dir = tmp_path / "default" / "seed0"
    for member in ("fair", "uniform[full_h256_f0.5_e5,0.5]"):
        stored = json.loads((seed_dir / f"{member}.json").read_text())
        assert 0.0 < stored["accuracy"] <= 1.0 and len(stored["window_accuracy"]) == 2
        assert stored["overrides"][-1] == "experiment=tiny"
        assert (seed_dir / member / "windows.csv").exists() and not (seed_dir / member / "state.pkl").exists()
    cell = first["cells"]["default"]
    assert cell["seeds"] == 1 and cell["thief"] is None and cell["fair"]["ci"] is None
    assert cell["noretrain"]["mean"] > 0 and cell["best_baseline"] in ("fair", "noretrain",
                                                                        "uniform[full_h256_f0.5_e5,0.5]")
    assert cell["best_uniform"]["member"] == "uniform[full_h256_f0.5_e5,0.5]"
    assert cell["thief_margin_points"] is None and "seed0/thief" in cell["missing"]
    assert len(cell["missing"]) == 6  # thief and the five other uniform members

    calls = []
    monkeypatch.setattr(robustness, "run_or_resume", lambda *a, **k: calls.append(a))
    again = robustness.main([*SMOKE, "--out", str(tmp_path)])
    assert calls == []
    first.pop("seconds"), again.pop("seconds")
    assert again == first

    with pytest.raises(EkyaError, match="measured with overrides"):
        robustness.main([*SMOKE[:-1], "experiment=tiny", "window.seconds=50", "--out", str(tmp_path)])
