"""Draw one study (or all of them) from an MLflow experiment into a folder."""

from __future__ import annotations

from pathlib import Path

from ekya.analysis.figures import Drawn, allocation_frame, draw_allocation, draw_lines
from ekya.analysis.studies import STUDIES, study
from ekya.analysis.table import HEADLINE, RunTable, load_table, schedule_of
from ekya.errors import EkyaError


def figure_of(name: str, table: RunTable, uri: str, out: Path, run_id: str | None = None):  # noqa: ANN201
    """Draw study ``name`` from ``table`` into ``out``; returns (the open matplotlib Figure, Drawn).

    The allocation study reads one run's schedule artifact from ``uri`` (``run_id``, or the study's pick).
    """
    s = study(name)
    frame = s.frame(table)
    if s.kind != "allocation":
        return draw_lines(frame, s, out)
    if run_id is not None:
        frame = table.runs[table.runs["run_id"] == run_id].reset_index(drop=True)
        if frame.empty:
            raise EkyaError(f"--run {run_id}: not a finished parent run of experiment {table.experiment!r}")
    if frame.empty:
        raise EkyaError(f"study {name}: no finished run to show; check --experiment and --filter")
    cell = frame.iloc[0]
    return draw_allocation(allocation_frame(schedule_of(uri, cell["run_id"])), cell, s, out)


def draw_study(name: str, table: RunTable, uri: str, out: Path, run_id: str | None = None) -> Drawn:
    """Draw study ``name`` into ``out`` and close the figure."""
    import matplotlib.pyplot as plt

    fig, drawn = figure_of(name, table, uri, out, run_id)
    plt.close(fig)
    return drawn


def draw(names: list[str], uri: str, out: Path, experiment: str | None = None, filter_string: str = "",
         run_id: str | None = None) -> tuple[RunTable, list[Drawn]]:
    """Load the experiment once and draw every named study ("all" = the whole registry)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    names = list(STUDIES) if names == ["all"] else names
    chosen = [study(n) for n in names]
    experiments = {experiment or s.experiment for s in chosen}
    if len(experiments) > 1:
        raise EkyaError(f"studies {', '.join(names)} read different experiments ({', '.join(sorted(experiments))}); "
                        "draw them one at a time or pass --experiment")
    metrics = sorted({m for s in chosen for m in s.metrics} - set(HEADLINE))
    table = load_table(uri, experiments.pop(), metrics=metrics, filter_string=filter_string)
    return table, [draw_study(n, table, uri, Path(out), run_id) for n in names]
