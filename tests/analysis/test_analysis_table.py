"""Runs pulled from MLflow into the long table: the right rows, the right values, the skipped runs counted."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from ekya.analysis.__main__ import main
from ekya.analysis.table import ALL_CAMERAS, LONG_COLUMNS, load_table
from ekya.errors import EkyaError

from analysis_sweep import ACCELERATORS, EXPERIMENT, SCHEDULERS, SEEDS, STREAMS, WINDOWS, run_cell


def test_table_has_one_row_per_finished_cell_and_counts_the_skipped(sweep):
    table = load_table(sweep.uri, EXPERIMENT, metrics=["accuracy"])
    cells = {(r.scheduler, r.accelerators, r.streams, r.seed) for r in table.runs.itertuples()}
    assert cells == set(sweep.frames) and len(table.runs) == len(sweep.frames) == 16
    assert dict(table.skipped) == {"FAILED": 1, "RUNNING": 1, "superseded": 1}
    assert table.skipped_line() == "skipped 3 of the experiment's runs (1 FAILED, 1 RUNNING, 1 superseded)"
    assert set(table.runs["runtime"]) == {"simulate"}


def test_long_table_rows_are_the_records_each_cell_logged(sweep):
    table = load_table(sweep.uri, EXPERIMENT, metrics=["accuracy", "noretrain_accuracy"])
    long = table.long
    assert list(long.columns) == LONG_COLUMNS
    n_cameras = sum(streams for (_, _, streams, _) in sweep.frames) * WINDOWS
    for metric in ("accuracy", "noretrain_accuracy"):
        rows = long[(long["metric"] == metric) & long["window"].notna()]
        assert (rows["camera"] == ALL_CAMERAS).sum() == len(sweep.frames) * WINDOWS
        assert (rows["camera"] != ALL_CAMERAS).sum() == n_cameras
    for cell, frame in sweep.frames.items():
        sched, acc, streams, seed = cell
        ours = long[(long["scheduler"] == sched) & (long["accelerators"] == acc) & (long["streams"] == streams)
                    & (long["seed"] == seed)]
        mine = ours[ours["metric"] == "accuracy"]
        cams = mine[mine["camera"] != ALL_CAMERAS].sort_values(["window", "camera"])
        want = frame.sort_values(["window", "stream"])
        assert cams["camera"].tolist() == want["stream"].tolist()
        assert cams["window"].astype(int).tolist() == want["window"].tolist()
        assert cams["value"].tolist() == pytest.approx(want["accuracy"].tolist())
        per_window = mine[(mine["camera"] == ALL_CAMERAS) & mine["window"].notna()].sort_values("window")
        assert per_window["value"].tolist() == pytest.approx(frame.groupby("window")["accuracy"].mean().tolist())
        assert mine["window"].notna().all()
        headline = ours[ours["window"].isna()].set_index("metric")["value"]
        assert headline["mean_accuracy"] == pytest.approx(frame["accuracy"].mean())
        assert headline["mean_noretrain_accuracy"] == pytest.approx(frame["noretrain_accuracy"].mean())


def test_parent_runs_carry_the_cell_as_tags_and_the_headline_metrics(sweep):
    client = MlflowClient(sweep.uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FINISHED'")
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    for r in parents:
        t = r.data.tags
        assert t["scheduler"] in SCHEDULERS and int(t["accelerators"]) in ACCELERATORS
        assert int(t["streams"]) in STREAMS and int(t["seed"]) in SEEDS
        assert {"mean_accuracy", "mean_noretrain_accuracy"} <= set(r.data.metrics)


def test_an_experiment_made_before_the_kind_tag_gets_it(sweep):
    client = MlflowClient(sweep.uri)
    client.create_experiment("handmade")
    assert "mlflow.experimentKind" not in client.get_experiment_by_name("handmade").tags
    run_cell(sweep.root, "handmade", "fair", 1, 2, 0, experiment="handmade")
    assert client.get_experiment_by_name("handmade").tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_missing_experiment_or_store_is_one_line_and_exit_2(sweep, tmp_path, capsys):
    with pytest.raises(EkyaError, match=r"--experiment nope: no such MLflow experiment .*\(it has: .*study"):
        load_table(sweep.uri, "nope")
    assert main(["accelerators", "--uri", sweep.uri, "--experiment", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --experiment nope") and err.count("\n") == 1
    assert main(["accelerators", "--uri", f"sqlite:///{tmp_path}/none.db", "--out", str(tmp_path)]) == 2
    assert "no MLflow store there" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()  # reading never creates a store


def test_an_experiment_without_finished_runs_says_so(sweep):
    from ekya.results.tracking import Tracker

    dead = Tracker(sweep.uri, "only-dead", None, sweep.root / "runs" / "only-dead")
    (sweep.root / "runs" / "only-dead").mkdir()
    dead.start("x", {}, ["cam0"], {"runtime": "simulate", "scheduler": "fair", "accelerators": "1", "seed": "0"})
    with pytest.raises(EkyaError, match=r"--experiment only-dead: no finished runs .*\(1 RUNNING\)"):
        load_table(sweep.uri, "only-dead")


def test_a_filter_keeps_only_the_matching_cells_with_all_their_cameras(sweep):
    table = load_table(sweep.uri, EXPERIMENT, filter_string="tags.scheduler = 'thief'")
    assert set(table.runs["scheduler"]) == {"thief"} and len(table.runs) == 8
    # params live on the parent run only: its cameras still come along
    table = load_table(sweep.uri, EXPERIMENT, filter_string="params.seed = '1'")
    assert set(table.runs["seed"]) == {1} and len(table.runs) == 8
    cams = table.long[(table.long["camera"] != ALL_CAMERAS) & (table.long["metric"] == "accuracy")]
    assert len(cams) == sum(streams for (_, _, streams, seed) in sweep.frames if seed == 1) * WINDOWS
    with pytest.raises(EkyaError, match="--filter 'tags.scheduler = thief': .*quote"):
        load_table(sweep.uri, EXPERIMENT, filter_string="tags.scheduler = thief")


def test_cells_that_differ_only_in_a_long_value_are_not_taken_for_reruns():
    # long values (curve arrays) are an artifact, not params: the config's fingerprint tells such cells apart
    from collections import Counter

    import pandas as pd

    from ekya.analysis.table import _drop_superseded

    parents = pd.DataFrame({"params.seed": ["0", "0", "0"], "tags.streams": ["3", "3", "3"],
                            "tags.config_hash": ["curve-a", "curve-b", "curve-a"],
                            "start_time": pd.to_datetime([1, 2, 3], unit="s")}, index=[10, 11, 12])
    skipped: Counter = Counter()
    kept = _drop_superseded(parents, skipped)
    assert list(kept.index) == [11, 12] and skipped == Counter({"superseded": 1})  # the rerun of curve-a wins
