"""One study's runs pulled from MLflow into pandas: a row per parent run, and one long table of values.

A parent run is one cell (scheduler x accelerators x streams x seed); its child runs are its cameras.
Only finished cells count: unfinished (RUNNING, SCHEDULED), failed and killed ones are skipped and
counted, and so are older reruns of a cell (same params) superseded by a later finished run.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ekya.errors import EkyaError
from ekya.results import schema
from ekya.results.schema import HEADLINE

#: the cell columns of every table, in the order they sort by (the cell tags, read as the types they stand for)
CELL = list(schema.CELL)
#: the columns every long-table row has (value is the metric's value at that window)
LONG_COLUMNS = ["run_id", "parent_run_id", "run_name", *CELL, "camera", "window", "metric", "value"]
#: the camera value of a parent run's rows (its metrics are means over its cameras)
ALL_CAMERAS = "all"


@dataclass
class RunTable:
    """A study's finished cells: ``runs`` (one row per parent run), ``long`` (LONG_COLUMNS) and what was skipped.

    ``runs`` has the cell columns, the headline metrics, every param as ``params.<key>`` (strings, as
    MLflow keeps them) and every other metric's last value as ``metrics.<key>``.
    """

    experiment: str
    runs: pd.DataFrame
    long: pd.DataFrame
    #: why runs were left out -> how many parent runs (e.g. {"FAILED": 1, "RUNNING": 2, "superseded": 1})
    skipped: Counter = field(default_factory=Counter)

    def skipped_line(self) -> str:
        """One line saying how many cells were skipped and why (empty when none were)."""
        if not self.skipped:
            return ""
        why = ", ".join(f"{n} {k}" for k, n in sorted(self.skipped.items()))
        return f"skipped {sum(self.skipped.values())} of the experiment's runs ({why})"


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """``mlflow.search_runs`` reads the process-wide tracking URI: point it at ``uri`` for the call only."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _check_store(uri: str) -> None:
    """An EkyaError when ``uri`` names a SQLite store that does not exist (MLflow would create an empty one)."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        raise EkyaError(f"--uri {uri}: no MLflow store there; run `python -m ekya` first or pass the store's URI")


def _open(uri: str, experiment: str):  # noqa: ANN202 - returns (MlflowClient, Experiment)
    """The client and the experiment, or an EkyaError naming what is missing."""
    _check_store(uri)
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    client = MlflowClient(tracking_uri=uri)
    try:
        exp = client.get_experiment_by_name(experiment)
        names = [] if exp else sorted(e.name for e in client.search_experiments())
    except Exception as e:  # noqa: BLE001 - any store failure is a wrong URI for the user
        raise EkyaError(f"--uri {uri}: cannot read the MLflow store ({type(e).__name__}: {e})") from None
    if exp is None:
        raise EkyaError(f"--experiment {experiment}: no such MLflow experiment at {uri} "
                        f"(it has: {', '.join(names) or 'none'}); pass --experiment NAME")
    return client, exp


def experiment_names(uri: str) -> set[str]:
    """The names of the experiments the store at ``uri`` holds (an EkyaError if there is no store)."""
    _check_store(uri)
    from mlflow.tracking import MlflowClient

    return {e.name for e in MlflowClient(tracking_uri=uri).search_experiments()}


def _cell_columns(parents: pd.DataFrame, children: pd.DataFrame) -> pd.DataFrame:
    """The cell (schema.CELL: runtime, scheduler, accelerators, streams, seed) of each parent run, from its tags."""
    def tag(name: str) -> pd.Series:
        col = f"tags.{name}"
        return parents[col] if col in parents else pd.Series([None] * len(parents), index=parents.index)

    out = pd.DataFrame({"run_id": parents["run_id"], "run_name": tag(schema.RUN_NAME)})
    # runs logged before the streams tag existed: the number of child runs is the number of cameras
    n_children = children.groupby(f"tags.{schema.PARENT_RUN}").size() if len(children) else pd.Series(dtype=int)
    for name, kind in schema.CELL.items():
        if kind is str:
            out[name] = tag(name)
            continue
        values = pd.to_numeric(tag(name), errors="coerce")
        if name == schema.STREAMS:
            values = values.fillna(parents["run_id"].map(n_children))
        out[name] = values.astype("Int64")
    return out


def _drop_superseded(parents: pd.DataFrame, skipped: Counter) -> pd.DataFrame:
    """Keep the latest finished run of each cell: a rerun with the same params must not count as another seed."""
    params = sorted(c for c in parents.columns if c.startswith("params."))
    # long values (curve arrays) are not params: the config's fingerprint tells cells apart that differ only there
    key = [*params, *(c for c in (f"tags.{schema.STREAMS}", f"tags.{schema.CONFIG_HASH}") if c in parents)]
    if not key:
        return parents
    ordered = parents.sort_values("start_time", kind="stable")
    keep = ordered[~ordered[key].astype(str).duplicated(keep="last")]
    if len(keep) < len(parents):
        skipped["superseded"] += len(parents) - len(keep)
    return parents.loc[parents.index.isin(keep.index)]


def load_table(uri: str, experiment: str, metrics: Sequence[str] = (schema.ACCURACY,),
               filter_string: str = "") -> RunTable:
    """Pull an experiment's finished cells with ``mlflow.search_runs``; ``metrics`` are read per window.

    ``filter_string`` is an MLflow search filter on the parent runs (e.g. ``tags.runtime = 'simulate'``
    or ``params.window.seconds = '200'``); a kept cell keeps all its cameras. Raises EkyaError when the
    experiment is missing or has no finished run.
    """
    import mlflow

    client, exp = _open(uri, experiment)
    from mlflow.exceptions import MlflowException

    with _tracking_uri(uri):
        frame = mlflow.search_runs(experiment_ids=[exp.experiment_id], output_format="pandas")
        try:  # the filter picks cells; their cameras follow (child runs carry no params a filter could name)
            wanted = set(mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string=filter_string,
                                            output_format="pandas").get("run_id", [])) if filter_string else None
        except MlflowException as e:
            raise EkyaError(f"--filter {filter_string!r}: {e.message.splitlines()[0]}") from None
    if frame.empty:
        raise EkyaError(f"--experiment {experiment}: no runs at {uri}; run the study's sweep first")
    parent_col = f"tags.{schema.PARENT_RUN}"
    is_child = frame[parent_col].notna() if parent_col in frame else False
    parents, children = frame[~is_child], frame[is_child]
    if wanted is not None:
        parents = parents[parents["run_id"].isin(wanted)]
    if parents.empty:
        raise EkyaError(f"--experiment {experiment}: no runs at {uri}"
                        + (f" match --filter {filter_string!r}" if filter_string else "")
                        + "; run the study's sweep first")
    skipped: Counter = Counter(parents.loc[parents["status"] != "FINISHED", "status"].tolist())
    finished = _drop_superseded(parents[parents["status"] == "FINISHED"], skipped)
    if finished.empty:
        raise EkyaError(f"--experiment {experiment}: no finished runs at {uri} ("
                        + ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())) + "); rerun or resume them")
    cells = _cell_columns(finished, children)
    children = children[children[parent_col].isin(set(cells["run_id"]))] if len(children) else children
    headline = [m for m in HEADLINE if f"metrics.{m}" in finished]
    runs = cells.join(finished[[f"metrics.{m}" for m in headline]].rename(columns=lambda c: c[len("metrics."):]))
    # every param as logged (a study's x may be one, e.g. params.cluster.delta), and the other end-of-run metrics
    runs = runs.join(finished[sorted(c for c in finished.columns if c.startswith("params."))])
    extra = sorted(c for c in finished.columns if c.startswith("metrics.") and c[len("metrics."):] not in headline)
    runs = runs.join(finished[extra])
    runs["seconds"] = (finished["end_time"] - finished["start_time"]).dt.total_seconds()
    runs = runs.sort_values(CELL, kind="stable").reset_index(drop=True)

    by_id = cells.set_index("run_id")
    rows: list[dict] = []
    for _, r in runs.iterrows():
        base = {k: r[k] for k in ("run_name", *CELL)}
        for m in headline:
            rows.append({**base, "run_id": r.run_id, "parent_run_id": r.run_id, "camera": ALL_CAMERAS,
                         "window": pd.NA, "metric": m, "value": float(r[m])})
    jobs = [(rid, rid, ALL_CAMERAS) for rid in runs["run_id"]]
    jobs += [(c["run_id"], c[parent_col], c.get(f"tags.{schema.STREAM}")) for _, c in children.iterrows()]
    for rid, parent, camera in jobs:
        base = {k: by_id.at[parent, k] for k in ("run_name", *CELL)}
        for m in metrics:
            for point in client.get_metric_history(rid, m):
                rows.append({**base, "run_id": rid, "parent_run_id": parent, "camera": camera,
                             "window": int(point.step), "metric": m, "value": float(point.value)})
    long = pd.DataFrame(rows, columns=LONG_COLUMNS)
    long["window"] = long["window"].astype("Int64")
    long = long.sort_values(["metric", *CELL, "camera", "window"], kind="stable", na_position="first")
    return RunTable(experiment=experiment, runs=runs, long=long.reset_index(drop=True), skipped=skipped)


def _artifact_text(uri: str, run_id: str, filename: str, missing: str) -> str:
    """The text of a parent run's artifact, or an EkyaError saying ``missing`` (how to get one)."""
    import os
    import tempfile

    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a file of a few kB needs no bar
    client = MlflowClient(tracking_uri=uri)
    names = {a.path for a in client.list_artifacts(run_id)}
    if filename not in names:
        raise EkyaError(f"run {run_id}: no {filename} artifact ({missing})")
    with tempfile.TemporaryDirectory() as tmp:
        return Path(client.download_artifacts(run_id, filename, tmp)).read_text()


def schedule_of(uri: str, run_id: str, filename: str = "schedule.json") -> dict:
    """The schedule artifact a parent run carries (written by callbacks/schedule.py), as its JSON document."""
    import json

    return json.loads(_artifact_text(uri, run_id, filename, "the run had callbacks.schedule=null; rerun the cell "
                                     "with the default callbacks, or pick another with --run RUN_ID"))


def artifact_table(uri: str, run_id: str, filename: str) -> pd.DataFrame:
    """A CSV artifact of a parent run (e.g. profiling.csv of callbacks profile_all) as a frame."""
    import io

    return pd.read_csv(io.StringIO(_artifact_text(uri, run_id, filename, "the run had no callbacks profile_all; "
                                                  "run it with callbacks=[default,profile_all]")))
