"""The robustness benchmark: its statistics on known numbers, and one tiny real matrix that resumes."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import t as student_t

from ekya.analysis.robustness import noretrain_by_seed, paired_margin, summarize_cell
from ekya.bench import e2e, robustness
from ekya.bench.robustness import (
    CELLS,
    RunResult,
    min_infer_share,
    plan_runs,
    read_result,
    select_members,
    split_names,
)
from ekya.errors import EkyaError
from ekya.results.intervals import estimate


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
    assert len(members) == 10
    got = [m.name for m in select_members(members, ["fair", "uniform[full_h256_f0.5_e5,0.5]"])]
    assert got == ["fair", "uniform[full_h256_f0.5_e5,0.5]"]
    assert len(select_members(members, ["uniform"])) == 6
    # an exact name is that member alone: asking for the thief does not start its (costly) instruments
    assert [m.name for m in select_members(members, ["thief"])] == ["thief"]
    assert [m.name for m in select_members(members, ["thief-"])] == ["thief-free-profiling", "thief-oracle"]
    with pytest.raises(EkyaError, match="matches no member"):
        select_members(members, ["nope"])


def test_the_thief_runs_beside_its_two_instruments_on_the_same_seeds_in_every_cell():
    members = {m.name: m.overrides for m in robustness.all_members()}
    assert members["thief"] == ("scheduler=thief",)
    assert members["thief-free-profiling"] == ("scheduler=thief", "runtime.instrument=free_profiling")
    assert members["thief-oracle"] == ("scheduler=thief", "runtime.instrument=oracle")
    assert CELLS["original_mps"] == ("cluster.throughput=original_mps",)
    # every cell at least 3 seeds, the default 5, each seed run by every member (paired)
    assert robustness.seeds_of("default") == 5 and all(robustness.seeds_of(c) >= 3 for c in CELLS)
    seeds = {c: list(range(robustness.seeds_of(c))) for c in ("default", "acc2")}
    runs = plan_runs({c: CELLS[c] for c in seeds}, seeds, robustness.all_members())
    for cell, cell_seeds in seeds.items():
        for member in members:
            assert sorted(r.seed for r in runs if r.cell == cell and r.member == member) == cell_seeds
    # the instruments' overrides compose (runtime.instrument is a key of the emulate runtime)
    for r in runs:
        if r.cell == "default" and r.seed == 0 and r.member.startswith("thief"):
            robustness.check_cell(list(r.overrides))


def test_the_benchmarks_default_seeds(monkeypatch):
    asked = []
    monkeypatch.setattr(robustness, "measure", lambda cells, seeds, members, *a, **k: asked.append(
        (dict(cells), dict(seeds), [m.name for m in members])) or {c: {} for c in cells})
    robustness.main([])
    cells, seeds, members = asked.pop()
    assert set(cells) == set(CELLS) and {c: len(s) for c, s in seeds.items()} == {
        c: 5 if c == "default" else 3 for c in CELLS}
    assert members[:4] == ["thief", "thief-free-profiling", "thief-oracle", "fair"]
    monkeypatch.setattr(e2e, "measure", lambda cells, seeds, members, *a, **k: asked.append(
        (dict(cells), dict(seeds), [m.name for m in members])) or {c: {} for c in cells})
    e2e.main([])
    assert asked.pop()[1] == {"default": [0, 1, 2, 3, 4]}
    e2e.main(["--accelerators", "2"])
    cells, seeds, members = asked.pop()
    assert seeds == {"acc2": [0, 1, 2]} and "thief-oracle" in members


def test_the_thiefs_gap_splits_into_profiling_cost_prediction_and_scheduling():
    values = {
        "thief": {0: 0.70, 1: 0.74, 2: 0.66},
        "thief-free-profiling": {0: 0.73, 1: 0.76, 2: 0.70},  # +3, +2, +4 points: what profiling's cost took
        "thief-oracle": {0: 0.78, 1: 0.77, 2: 0.76},  # +5, +1, +6 over free profiling: what the predictions missed
        "fair": {0: 0.60, 1: 0.62, 2: 0.58},
        "noretrain": {0: 0.65, 1: 0.66, 2: 0.64},
        "uniform[a,0.5]": {0: 0.76, 1: 0.78, 2: 0.71},  # the best baseline
    }
    rep = summarize_cell(values)
    assert rep["best_baseline"] == "uniform[a,0.5]"

    def points(diffs):
        e = estimate([d / 100 for d in diffs])
        return round(100 * e.mean, 2), [round(100 * c, 2) for c in e.ci]

    assert (rep["profiling_cost_points"], rep["profiling_cost_ci_points"]) == points([3, 2, 4])
    assert (rep["prediction_points"], rep["prediction_ci_points"]) == points([5, 1, 6])
    assert (rep["scheduling_points"], rep["scheduling_ci_points"]) == points([2, -1, 5])
    assert (rep["thief_margin_points"], rep["thief_margin_ci_points"]) == points([-6, -4, -5])
    # on the same seeds the parts add up to the margin
    assert rep["thief_margin_points"] == pytest.approx(
        rep["scheduling_points"] - rep["prediction_points"] - rep["profiling_cost_points"])
    assert rep["thief-oracle"] == estimate([0.78, 0.77, 0.76]).rounded()
    # without the instruments' runs there is nothing to split
    shipped = summarize_cell({k: v for k, v in values.items() if not k.startswith("thief-")})
    assert shipped["thief-oracle"] is None and shipped["prediction_points"] is None
    assert shipped["scheduling_ci_points"] is None and shipped["thief_margin_points"] == -5.0


def test_the_smallest_inference_share_of_any_run_is_reported(tmp_path):
    def result(member, seed, share):
        return RunResult("c", seed, member, 0.5, 0.5, (0.5,), (0.5,), 1.0, (), share)

    low = min_infer_share([result("fair", 0, 0.3), result("thief", 1, 0.0), result("thief", 0, math.nan)])
    assert low == {"min_infer_share": 0.0, "min_infer_share_run": "seed1/thief"}
    assert min_infer_share([result("fair", 0, math.nan)]) == {"min_infer_share": None, "min_infer_share_run": None}
    # a result stored before the figure was kept: read from the run's records, which stay next to it
    run = robustness.Run("c", 0, "fair", ())
    path = robustness.result_path(tmp_path, run)
    robustness.write_result(path, result("fair", 0, 0.25))
    stored = json.loads(path.read_text())
    assert stored["min_infer_share"] == 0.25
    del stored["min_infer_share"]
    path.write_text(json.dumps(stored))
    assert math.isnan(read_result(path, run).min_infer_share)
    robustness.run_dir(tmp_path, run).mkdir(parents=True)
    (robustness.run_dir(tmp_path, run) / "windows.csv").write_text("window,stream,infer_share\n1,a,0.4\n1,b,0.15\n")
    assert read_result(path, run).min_infer_share == 0.15


def _result(member: str, noretrain: float, window: float | None = None) -> RunResult:
    return RunResult("c", 0, member, 0.5, noretrain, (0.5,), (noretrain if window is None else window,), 1.0, ())


def test_noretrain_comes_from_fair_and_must_agree_with_thief():
    def by_seed(*results: RunResult) -> dict[int, float]:
        return noretrain_by_seed(robustness.run_frame(results))

    assert by_seed(_result("thief", 0.6), _result("fair", 0.6)) == {0: 0.6}
    with pytest.raises(EkyaError, match="noretrain reference"):
        by_seed(_result("thief", 0.6), _result("fair", 0.6 + 1e-9))
    with pytest.raises(EkyaError, match="noretrain reference"):  # the same overall, not window by window
        by_seed(_result("thief", 0.6), _result("fair", 0.6, window=0.61))


SMOKE = ["--cell", "default,acc2", "--seeds", "1", "--members", "fair,uniform[full_h256_f0.5_e5,0.5]",
         "--overrides", "experiment=tiny"]


@pytest.fixture(scope="module")
def tiny_matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """Two members in two cells of a tiny matrix, one seed: the report and the output directory."""
    out = tmp_path_factory.mktemp("tiny_matrix")
    return robustness.main([*SMOKE, "--out", str(out)]), out


def test_tiny_matrix_runs_stores_and_resumes(tiny_matrix, monkeypatch):
    first, tmp_path = tiny_matrix
    first = copy.deepcopy(first)
    seed_dir = tmp_path / "default" / "seed0"
    shares = []
    for member in ("fair", "uniform[full_h256_f0.5_e5,0.5]"):
        stored = json.loads((seed_dir / f"{member}.json").read_text())
        assert 0.0 < stored["accuracy"] <= 1.0 and len(stored["window_accuracy"]) == 2
        records = pd.read_csv(seed_dir / member / "windows.csv")
        assert stored["min_infer_share"] == records["infer_share"].min() > 0
        shares.append(stored["min_infer_share"])
        assert stored["overrides"][-1] == "experiment=tiny"
        assert (seed_dir / member / "windows.csv").exists() and not (seed_dir / member / "state.pkl").exists()
    cell = first["cells"]["default"]
    assert cell["seeds"] == 1 and cell["thief"] is None and cell["fair"]["ci"] is None
    assert cell["noretrain"]["mean"] > 0 and cell["best_baseline"] in ("fair", "noretrain",
                                                                        "uniform[full_h256_f0.5_e5,0.5]")
    assert cell["best_uniform"]["member"] == "uniform[full_h256_f0.5_e5,0.5]"
    assert cell["thief_margin_points"] is None and "seed0/thief" in cell["missing"]
    assert len(cell["missing"]) == 8  # thief, its two instruments and the five other uniform members
    assert cell["min_infer_share"] == round(min(shares), 4)

    calls = []
    monkeypatch.setattr(robustness, "run_or_resume", lambda *a, **k: calls.append(a))
    again = robustness.main([*SMOKE, "--out", str(tmp_path)])
    assert calls == []
    first.pop("seconds"), again.pop("seconds")
    assert again == first

    with pytest.raises(EkyaError, match="measured with overrides"):
        robustness.main([*SMOKE[:-1], "experiment=tiny", "window.seconds=50", "--out", str(tmp_path)])


def test_the_analysis_reads_the_matrix_from_mlflow_and_reports_what_the_bench_does(tiny_matrix, tmp_path):
    # one study system: the bench's runs are MLflow runs like any study's; python -m ekya.analysis
    # robustness tells their cells apart by the params conf/cell/ sets and reports with the same functions
    from ekya.analysis.__main__ import main as analysis
    from ekya.analysis.robustness import report, run_rows
    from ekya.analysis.table import load_table
    from ekya.results import schema

    bench, out = tiny_matrix
    uri = f"sqlite:///{out / 'mlflow.db'}"
    rows = run_rows(load_table(uri, "study-robustness", metrics=(schema.NORETRAIN_ACCURACY,)))
    assert sorted(zip(rows["cell"], rows["member"])) == [(c, m) for c in ("acc2", "default")
                                                         for m in ("fair", "uniform[full_h256_f0.5_e5,0.5]")]
    from_mlflow = report(rows, ["default", "acc2"])
    for cell in ("default", "acc2"):
        want = {k: v for k, v in bench["cells"][cell].items() if k not in ("missing", "min_infer_share",
                                                                            "min_infer_share_run")}
        assert from_mlflow[cell] == want
    assert analysis(["robustness", "--uri", uri, "--out", str(tmp_path)]) == 0
    drawn = (tmp_path / "robustness.md").read_text()
    assert "Headline: default: thief n/a vs" in drawn and "acc2: thief n/a" in drawn
    plotted = pd.read_csv(tmp_path / "robustness.csv")
    assert set(plotted["member"]) == {"fair", "uniform[full_h256_f0.5_e5,0.5]", "noretrain"}


def test_baseline_overrides_reach_the_baselines_runs_only():
    # --baseline-overrides measures a change to the baselines alone (e.g. their allocation grid),
    # so the thief and its instruments must run exactly as without it and be paired with them
    members = robustness.all_members()
    plain = {r.member: r.overrides for r in plan_runs({"default": ()}, {"default": [0]}, members, ["threads=1"])}
    finer = {r.member: r.overrides for r in plan_runs({"default": ()}, {"default": [0]}, members, ["threads=1"],
                                                       ["cluster.delta=0.01"])}
    for name in plain:
        if name == "fair" or name.startswith("uniform["):
            assert finer[name] == (*plain[name], "cluster.delta=0.01")
        else:
            assert finer[name] == plain[name]
    assert {n for n in plain if robustness.is_baseline(n)} == {"fair", *(n for n in plain if n.startswith("uniform"))}


def _resolved(overrides: list[str]) -> dict:
    """The resolved config of these overrides, less where it is tracked."""
    from omegaconf import OmegaConf, open_dict

    from ekya.hydra_compose import compose_config

    cfg = compose_config(overrides)
    with open_dict(cfg):
        del cfg["tracking"]
    return OmegaConf.to_container(cfg, resolve=True)


def test_the_benchs_runs_are_the_robustness_experiments_sweep_cells():
    # the matrix has one definition (conf/cell, conf/member, experiment=robustness[_uniform]): each run
    # the bench plans is the config python -m ekya -m experiment=robustness gives that cell, member and seed
    wanted = {"thief-oracle", "fair", "uniform[frozen_h256_f1.0_e5,0.3]"}
    runs = plan_runs({c: CELLS[c] for c in ("noisy_teacher", "acc2")}, {"noisy_teacher": [1], "acc2": [2]},
                     [m for m in robustness.all_members() if m.name in wanted])
    assert len(runs) == 6
    for r in runs:
        if r.member.startswith("uniform["):
            member = ["experiment=robustness_uniform", "+member=uniform", "scheduler.config=frozen_h256_f1.0_e5",
                      "scheduler.inference_fraction=0.3"]
        else:
            member = ["experiment=robustness", f"+member={r.member}"]
        assert _resolved(list(r.overrides)) == _resolved([*member, f"+cell={r.cell}", f"seed={r.seed}"]), r.label
    assert list(CELLS) == ["default", "acc2", "linear", "drift003", "noisy_teacher", "reuse1", "cost_noise",
                           "original_mps"]


def test_a_runs_member_is_read_back_from_its_scheduler_and_instrument():
    from ekya.analysis.robustness import member_of

    row = {"scheduler": "thief", "params.runtime.instrument": "None"}
    assert member_of(row) == "thief"
    assert member_of({**row, "params.runtime.instrument": "free_profiling"}) == "thief-free-profiling"
    assert member_of({**row, "params.runtime.instrument": "oracle"}) == "thief-oracle"
    assert member_of({"scheduler": "uniform", "params.scheduler.config": "a", "params.scheduler.inference_fraction":
                      "0.30"}) == "uniform[a,0.3]"
