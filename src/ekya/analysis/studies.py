"""The registry of studies: which figure each draws, from which quantities, beside which published values.

A study turns a RunTable into the frame it plots (one row per seed and point) and names its x, y,
hue and facet columns. Published values come from the NSDI'22 paper as digested in
reference/ekya-paper-and-code.md (section 8); a study cites the figure or table they are from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from ekya.analysis.table import ALL_CAMERAS, RunTable


@dataclass(frozen=True)
class PaperValue:
    """One number the paper publishes for a point of a study's figure."""

    x: float
    y: float
    #: the paper's name of what was measured (e.g. "Ekya")
    series: str
    #: our scheduler that runs the same algorithm (picks the marker's colour)
    hue: str
    #: where the paper prints it, e.g. "Table 2"
    source: str


@dataclass(frozen=True)
class Study:
    """A figure: the quantities on its axes and how they are derived from the runs."""

    name: str
    title: str
    x: str
    y: str
    x_label: str
    y_label: str
    #: builds the plotted frame (columns x, y, hue, facet, seed) from the study's runs
    frame: Callable[[RunTable], pd.DataFrame]
    kind: str = "line"  # "line": mean and CI over seeds per hue; "allocation": one run's shares per window
    hue: str = "scheduler"
    #: a second cell dimension: one panel per value when the sweep varies it
    facet: str | None = None
    x_is_count: bool = False
    y_is_count: bool = False
    #: metrics read per window from MLflow (headline metrics are always read)
    metrics: tuple[str, ...] = ()
    #: the MLflow experiment the study reads unless --experiment names another
    experiment: str = "synthetic"
    paper: tuple[PaperValue, ...] = field(default_factory=tuple)
    description: str = ""


def _headline(table: RunTable) -> pd.DataFrame:
    """One row per cell with its mean window accuracy."""
    cols = ["scheduler", "accelerators", "streams", "seed", "runtime"]
    return table.runs[[*cols, "mean_accuracy"]].copy()


def _per_window(table: RunTable) -> pd.DataFrame:
    """One row per cell and window: the window's accuracy, averaged over the cell's cameras."""
    long = table.long
    rows = long[(long["metric"] == "accuracy") & (long["camera"] == ALL_CAMERAS) & long["window"].notna()]
    return rows.rename(columns={"value": "accuracy"})[
        ["scheduler", "accelerators", "streams", "seed", "runtime", "window", "accuracy"]].reset_index(drop=True)


#: the accuracy a stream must keep to count towards capacity (paper Table 2)
CAPACITY_THRESHOLD = 0.75


def _capacity(table: RunTable) -> pd.DataFrame:
    """Per scheduler, accelerators and seed: the most streams whose cell keeps mean accuracy >= the threshold."""
    cells = _headline(table)
    rows = []
    for (sched, acc, seed), g in cells.groupby(["scheduler", "accelerators", "seed"], sort=True):
        ok = g.loc[g["mean_accuracy"] >= CAPACITY_THRESHOLD, "streams"]
        rows.append({"scheduler": sched, "accelerators": acc, "seed": seed, "runtime": g["runtime"].iloc[0],
                     "capacity": int(ok.max()) if len(ok) else 0, "streams_tried": int(g["streams"].max())})
    return pd.DataFrame(rows)


def _allocation(table: RunTable) -> pd.DataFrame:
    """The cell whose schedule the allocation figure shows (filled in by the figure, which reads the artifact)."""
    runs = table.runs
    pick = runs[runs["scheduler"] == "thief"] if (runs["scheduler"] == "thief").any() else runs
    return pick.sort_values(["accelerators", "streams", "seed"], kind="stable").head(1).reset_index(drop=True)


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study(name="accelerators", title="Accuracy vs accelerators", x="accelerators", y="mean_accuracy",
          x_label="accelerators (G)", y_label="mean window accuracy", frame=_headline, facet="streams",
          x_is_count=True,
          description="each scheduler's mean window accuracy over all cameras and windows, per accelerator "
                      "count (paper Fig. 8's axis; sweep: sweeps/sweep/accelerators.yaml)"),
    Study(name="streams", title="Accuracy vs number of streams", x="streams", y="mean_accuracy",
          x_label="video streams", y_label="mean window accuracy", frame=_headline, facet="accelerators",
          x_is_count=True,
          description="each scheduler's mean window accuracy as cameras are added, one panel per accelerator "
                      "count (paper Fig. 6's axis)"),
    Study(name="capacity", title=f"Capacity: streams kept at accuracy >= {CAPACITY_THRESHOLD}", x="accelerators",
          y="capacity", x_label="accelerators (G)", y_label="streams served (capacity)", frame=_capacity,
          x_is_count=True, y_is_count=True,
          paper=(PaperValue(1, 2, "Ekya", "thief", "Table 2"), PaperValue(2, 8, "Ekya", "thief", "Table 2")),
          description=f"the largest stream count of the sweep whose mean accuracy stays >= {CAPACITY_THRESHOLD}, "
                      "per scheduler and accelerator count (paper Table 2; needs a sweep over streams)"),
    Study(name="windows", title="Accuracy per window", x="window", y="accuracy", x_label="retraining window",
          y_label="window accuracy (mean over cameras)", frame=_per_window, facet="accelerators",
          x_is_count=True, metrics=("accuracy",),
          description="each window's accuracy averaged over the cameras, per scheduler, one panel per "
                      "accelerator count"),
    Study(name="allocation", title="Allocation per window", x="window", y="share", x_label="retraining window",
          y_label="accelerators allocated", frame=_allocation, kind="allocation", x_is_count=True,
          description="the window-start allocation of one cell (thief, fewest accelerators, first seed unless "
                      "--run names one): each camera's inference and retraining shares, from the run's "
                      "schedule.json artifact (paper Fig. 9's quantity, at window resolution)"),
)}


def study(name: str) -> Study:
    """The registered study called ``name`` (an EkyaError lists the names otherwise)."""
    from ekya.errors import EkyaError

    if name not in STUDIES:
        raise EkyaError(f"no study {name!r}; choose one of: {', '.join(STUDIES)}")
    return STUDIES[name]
