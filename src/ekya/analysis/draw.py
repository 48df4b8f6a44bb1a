"""Draw one study (or all of them) from an MLflow experiment into a folder."""

from __future__ import annotations

from pathlib import Path

from ekya.analysis.figures import Drawn, allocation_frame, draw_allocation, draw_ecdf, draw_lines, draw_members
from ekya.analysis.studies import STUDIES, study
from ekya.analysis.table import RunTable, artifact_table, load_table, schedule_of
from ekya.errors import EkyaError
from ekya.results.schema import HEADLINE


def figure_of(name: str, table: RunTable, uri: str, out: Path, run_id: str | None = None):  # noqa: ANN201
    """Draw study ``name`` from ``table`` into ``out``; returns (the open matplotlib Figure, Drawn).

    The allocation study reads one run's schedule artifact from ``uri`` (``run_id``, or the study's pick).
    """
    s = study(name)
    frame = s.frame(table)
    if s.kind == "line":
        return draw_lines(frame, s, out)
    if s.kind == "members":
        return draw_members(frame, s, out)
    if s.kind == "ecdf":
        return draw_ecdf(profiler_errors(frame, uri), s, out)
    if run_id is not None:
        frame = table.runs[table.runs["run_id"] == run_id].reset_index(drop=True)
        if frame.empty:
            raise EkyaError(f"--run {run_id}: not a finished parent run of experiment {table.experiment!r}")
    if frame.empty:
        raise EkyaError(f"study {name}: no finished run to show; check --experiment and --filter")
    cell = frame.iloc[0]
    return draw_allocation(allocation_frame(schedule_of(uri, cell["run_id"])), cell, s, out)


def profiler_errors(cells, uri: str):  # noqa: ANN001, ANN201 - pandas frames
    """Every cell's profiling.csv as rows of seed and |predicted - live accuracy| in points."""
    import pandas as pd

    parts = []
    for cell in cells.itertuples():
        rows = artifact_table(uri, cell.run_id, "profiling.csv")
        parts.append(pd.DataFrame({"seed": cell.seed, "stream": rows["stream"], "window": rows["window"],
                                   "config": rows["config"],
                                   "abs_error": 100 * (rows["predicted_accuracy"] - rows["live_accuracy"]).abs()}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["seed", "abs_error"])


def draw_study(name: str, table: RunTable, uri: str, out: Path, run_id: str | None = None) -> Drawn:
    """Draw study ``name`` into ``out`` and close the figure."""
    import matplotlib.pyplot as plt

    fig, drawn = figure_of(name, table, uri, out, run_id)
    plt.close(fig)
    return drawn


def draw(names: list[str], uri: str, out: Path, experiment: str | None = None, filter_string: str = "",
         run_id: str | None = None) -> list[tuple[RunTable, list[Drawn]]]:
    """Draw every named study ("all" = the whole registry), loading each experiment once.

    Each study reads its own experiment unless ``experiment`` names one for all of them. With "all"
    a study whose experiment the store lacks is left out (its sweep was not run); a named one is an error.
    """
    import matplotlib

    from ekya.analysis.table import experiment_names

    matplotlib.use("Agg")  # files only: no display needed, none opened
    every = names == ["all"]
    chosen = [study(n) for n in (list(STUDIES) if every else names)]
    groups: dict[str, list] = {}
    for s in chosen:
        groups.setdefault(experiment or s.experiment, []).append(s)
    if every and experiment is None:
        present = experiment_names(uri)
        groups = {e: g for e, g in groups.items() if e in present}
        if not groups:
            raise EkyaError(f"--uri {uri}: none of the studies' experiments is there; run a study's sweep first "
                            "(python -m ekya -m experiment=NAME)")
    done = []
    for exp, studies in groups.items():
        metrics = sorted({m for s in studies for m in s.metrics} - set(HEADLINE))
        table = load_table(uri, exp, metrics=metrics, filter_string=filter_string)
        done.append((table, [draw_study(s.name, table, uri, Path(out), run_id) for s in studies]))
    return done
