"""The registry of studies: which figure each draws, from which quantities, beside which published values.

A study turns a RunTable into the frame it plots (one row per seed and point) and names its x, y,
hue and facet columns. Published values come from the NSDI'22 paper; each cites the paper's figure or
table it is read from (``PaperValue.source``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ekya.analysis.table import ALL_CAMERAS, CELL, RunTable
from ekya.results import schema
from ekya.results.intervals import t_interval


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
    #: the facet value (panel) it belongs to; None = every panel
    facet: float | None = None


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
    #: "line": mean and CI over seeds per hue; "members": the same per named member (a categorical x);
    #: "allocation": one run's shares per window; "ecdf": a distribution per seed
    kind: str = "line"
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
    #: the study's headline figure as one line, from the plotted frame (means over seeds), beside the paper's
    headline: Callable[[pd.DataFrame], str] | None = None
    #: how the axis is scaled ("linear" or "log2", for a quantity swept by doubling)
    x_scale: str = "linear"
    #: the conf/experiment whose sweep makes the runs (python -m ekya -m experiment=NAME)
    sweep: str = ""
    #: what of the paper it reproduces, e.g. "Fig. 8" ("" = nothing: ours alone)
    reproduces: str = ""


def _headline(table: RunTable) -> pd.DataFrame:
    """One row per cell with its mean window accuracy."""
    return table.runs[[*CELL, "mean_accuracy"]].copy()


def _param(table: RunTable, key: str) -> pd.Series:
    """A param of every cell as a number (an EkyaError when the runs do not have it)."""
    from ekya.errors import EkyaError

    col = f"params.{key}"
    if col not in table.runs:
        raise EkyaError(f"experiment {table.experiment!r}: its runs have no param {key!r}; is it the study's sweep?")
    return pd.to_numeric(table.runs[col], errors="coerce")


def _means(frame: pd.DataFrame, by: list[str], y: str) -> pd.Series:
    """The mean over seeds of ``y`` per ``by``."""
    return frame.groupby(by, sort=True)[y].mean()


def _pts(v: float) -> str:
    return f"{100 * v:+.1f} points"


def _per_window(table: RunTable) -> pd.DataFrame:
    """One row per cell and window: the window's accuracy, averaged over the cell's cameras."""
    long = table.long
    rows = long[(long["metric"] == "accuracy") & (long["camera"] == ALL_CAMERAS) & long["window"].notna()]
    return rows.rename(columns={"value": "accuracy"})[
        [*CELL, "window", "accuracy"]].reset_index(drop=True)


#: the accuracy a stream must keep to count towards capacity (paper Table 2)
CAPACITY_THRESHOLD = 0.75
#: the accuracy targets the capacity figure sweeps (the paper's 0.75 among them)
CAPACITY_TARGETS = tuple(round(0.30 + 0.05 * i, 2) for i in range(11))


def _capacity(table: RunTable) -> pd.DataFrame:
    """Per scheduler, accelerators, seed and accuracy target: the most streams whose cell keeps mean accuracy >= it."""
    cells = _headline(table)
    rows = []
    for (sched, acc, seed), g in cells.groupby(["scheduler", "accelerators", "seed"], sort=True):
        for target in CAPACITY_TARGETS:
            ok = g.loc[g["mean_accuracy"] >= target - 1e-12, "streams"]
            rows.append({"scheduler": sched, "accelerators": acc, "seed": seed, "runtime": g["runtime"].iloc[0],
                         "target": target, "capacity": int(ok.max()) if len(ok) else 0,
                         "streams_tried": int(g["streams"].max())})
    return pd.DataFrame(rows)


def _allocation(table: RunTable) -> pd.DataFrame:
    """The cell whose schedule the allocation figure shows (filled in by the figure, which reads the artifact)."""
    runs = table.runs
    pick = runs[runs["scheduler"] == "thief"] if (runs["scheduler"] == "thief").any() else runs
    return pick.sort_values(["accelerators", "streams", "seed"], kind="stable").head(1).reset_index(drop=True)


def _with_param(key: str, column: str) -> Callable[[RunTable], pd.DataFrame]:
    """The headline frame with one swept param as a numeric column."""
    def frame(table: RunTable) -> pd.DataFrame:
        out = _headline(table)
        out[column] = _param(table, key).to_numpy()
        return out
    return frame


def _relative_to(key: str, column: str, reference: float, y: str) -> Callable[[RunTable], pd.DataFrame]:
    """Per cell: its mean accuracy minus that of the same scheduler and seed at param = ``reference``, in points."""
    base = _with_param(key, column)

    def frame(table: RunTable) -> pd.DataFrame:
        out = base(table)
        ref = out[out[column] == reference].set_index(["scheduler", "seed"])["mean_accuracy"]
        out[y] = 100 * (out["mean_accuracy"] - [ref.get((r.scheduler, r.seed), float("nan")) for r in out.itertuples()])
        return out.dropna(subset=[y])
    return frame


def _ratio_to_optimal(table: RunTable) -> pd.DataFrame:
    """Per instance (accelerators, streams, seed): the thief's mean accuracy over the exact optimum's."""
    cells = _headline(table)
    opt = cells[cells["scheduler"] == "optimal"].set_index(["accelerators", "streams", "seed"])["mean_accuracy"]
    thief = cells[cells["scheduler"] == "thief"].copy()
    thief["ratio"] = [r.mean_accuracy / opt.get((r.accelerators, r.streams, r.seed), float("nan"))
                      for r in thief.itertuples()]
    return thief.dropna(subset=["ratio"]).reset_index(drop=True)


def _profiled(table: RunTable) -> pd.DataFrame:
    """The cells whose profiling.csv the profiler figure reads (filled in by the figure, which downloads it)."""
    return table.runs[[*CELL, "run_id"]].copy()


# ---------------------------------------------------------------- headline lines
def _seeds(frame: pd.DataFrame) -> str:
    """'n = 3 seeds' (or 'n = 1 seed') for the seeds a headline averages over."""
    n = int(frame["seed"].nunique())
    return f"n = {n} seed{'s' if n != 1 else ''}"


def _per_seed(frame: pd.DataFrame, y: str, **cell: object) -> pd.Series:
    """One value per seed: ``y`` averaged over the rows of the cell (e.g. over stream counts) that match ``cell``."""
    rows = frame
    for k, v in cell.items():
        rows = rows[rows[k] == v]
    return rows.groupby("seed")[y].mean()


def resolved(a: pd.Series, b: pd.Series) -> bool:
    """Whether two per-seed samples are told apart: each has >= 2 seeds and their 95% intervals do not overlap."""
    if min(a.count(), b.count()) < 2:
        return False
    (alo, ahi), (blo, bhi) = t_interval(a), t_interval(b)
    return ahi < blo or bhi < alo


def _unresolved_why(a: pd.Series, b: pd.Series) -> str:
    """Why a comparison of two per-seed samples is not resolved, in words."""
    n = min(a.count(), b.count())
    return f"{n} seed, no interval" if n < 2 else "the 95% intervals overlap"


def _with_ci(v: pd.Series) -> str:
    """'0.394 (95% CI 0.380-0.408)', or the mean alone when there is one seed."""
    lo, hi = t_interval(v)
    return f"{v.mean():.3f}" + (f" (95% CI {lo:.3f}-{hi:.3f})" if v.count() > 1 else "")


def _gain_over_baselines(frame: pd.DataFrame) -> str:
    """Per accelerator count: the thief's largest lead over the best other scheduler, across stream counts."""
    m = _means(frame, ["accelerators", "streams", "scheduler"], "mean_accuracy").unstack("scheduler")
    if "thief" not in m or m.shape[1] < 2:
        return ""
    others = m.drop(columns="thief")
    lead = (m["thief"] - others.max(axis=1)).groupby(level="accelerators")
    parts = []
    for g, v in lead:
        at = v.idxmax()
        rival = others.loc[at].idxmax()
        a = _per_seed(frame, "mean_accuracy", scheduler="thief", accelerators=at[0], streams=at[1])
        b = _per_seed(frame, "mean_accuracy", scheduler=rival, accelerators=at[0], streams=at[1])
        verdict = "resolved" if resolved(a, b) else f"not resolved: {_unresolved_why(a, b)}"
        parts.append(f"G={int(g)}: {_pts(v.max())} over {rival} at {int(at[1])} streams ({verdict})")
    return (f"thief's largest lead over the best baseline, {_seeds(frame)}: " + "; ".join(parts)
            + " (paper Fig. 6: up to 29% at 1 GPU, 23% at 2 GPUs)")


def _gpu_saving(frame: pd.DataFrame) -> str:
    """The fewest accelerators at which the thief matches the best baseline at the most accelerators.

    The saving is claimed only when the 95% intervals over seeds separate the two; otherwise the
    line says "not resolved" and why (one seed, or overlapping intervals).
    """
    m = _means(frame, ["accelerators", "scheduler"], "mean_accuracy").unstack("scheduler")
    if "thief" not in m or m.shape[1] < 2:
        return ""
    top = int(m.index.max())
    rival = m.drop(columns="thief").loc[top].idxmax()
    best = _per_seed(frame, "mean_accuracy", scheduler=rival, accelerators=top)
    paper = " (paper Fig. 8: Ekya at 4 GPUs beats the baselines at 16, 4x)"
    enough = m.index[m["thief"] >= best.mean() - 1e-12]
    if not len(enough):
        thief = _per_seed(frame, "mean_accuracy", scheduler="thief", accelerators=top)
        verdict = "" if resolved(thief, best) else f"; not resolved: {_unresolved_why(thief, best)}"
        return (f"{_seeds(frame)}: the thief never reaches the best baseline ({rival}) at G={top}: "
                f"{_with_ci(best)}{verdict}{paper}")
    g = int(enough.min())
    thief = _per_seed(frame, "mean_accuracy", scheduler="thief", accelerators=g)
    if resolved(thief, best):
        claim = f"a {top / g:g}x saving" if g < top else "no saving"
    else:
        claim = f"not resolved ({_unresolved_why(thief, best)}): no saving is claimed"
    falls = ""
    if g < top and m.loc[top, "thief"] < m.loc[g, "thief"]:
        falls = f"; the thief's own mean falls from G={g} to G={top} ({m.loc[top, 'thief']:.3f})"
    return (f"{_seeds(frame)}: thief at G={g}: {_with_ci(thief)} >= best baseline ({rival}) at G={top}: "
            f"{_with_ci(best)}, {claim}{falls}{paper}")


def _capacities(frame: pd.DataFrame) -> str:
    at = frame[(frame["target"] - CAPACITY_THRESHOLD).abs() < 1e-9]
    m = _means(at, ["scheduler", "accelerators"], "capacity").unstack("accelerators")
    parts = [f"{sched}: " + " / ".join(f"{v:g}" for v in row) for sched, row in m.iterrows()]
    best = frame.groupby(["scheduler", "accelerators", "target"])["capacity"].mean()
    tried = int(frame["streams_tried"].max())
    top = best[best >= tried].reset_index().groupby("scheduler")["target"].max()
    return (f"{_seeds(frame)}: streams kept at accuracy >= {CAPACITY_THRESHOLD} at G = "
            f"{' / '.join(str(int(g)) for g in m.columns)}: "
            + "; ".join(parts) + f"; highest target at which all {tried} streams are kept (any G): "
            + (", ".join(f"{k} {v:g}" for k, v in top.items()) or "none")
            + " (paper Table 2: Ekya 2 / 8; the Uniform variants 0-2 / 2-4)")


def _ablation_loss(frame: pd.DataFrame) -> str:
    m = _means(frame, ["accelerators", "scheduler"], "mean_accuracy").unstack("scheduler")
    if "thief" not in m:
        return ""
    parts = []
    for g, row in m.iterrows():
        thief = _per_seed(frame, "mean_accuracy", scheduler="thief", accelerators=g)
        items = []
        for c in (c for c in m.columns if c != "thief"):
            other = _per_seed(frame, "mean_accuracy", scheduler=c, accelerators=g)
            verdict = "" if resolved(other, thief) else f" (not resolved: {_unresolved_why(other, thief)})"
            items.append(f"{c} {_pts(row[c] - row['thief'])}{verdict}")
        parts.append(f"G={int(g)}: " + ", ".join(items))
    return (f"against the thief, {_seeds(frame)}: " + "; ".join(parts)
            + " (paper Fig. 10a: both lose substantially, most with few GPUs)")


def _best_window(frame: pd.DataFrame) -> str:
    m = _means(frame, ["window_seconds", "scheduler"], "mean_accuracy").unstack("scheduler")
    if "thief" not in m:
        return ""
    t = m["thief"]
    text = f"{_seeds(frame)}: thief best at a {t.idxmax():g} s window ({t.max():.3f})"
    if "noretrain" in m:
        items = []
        for w, v in (t - m["noretrain"]).items():
            a = _per_seed(frame, "mean_accuracy", scheduler="thief", window_seconds=w)
            b = _per_seed(frame, "mean_accuracy", scheduler="noretrain", window_seconds=w)
            items.append(f"{w:g} s {_pts(v)}" + ("" if resolved(a, b) else f" (not resolved: {_unresolved_why(a, b)})"))
        text += "; over no retraining: " + ", ".join(items)
    return text + " (paper Fig. 10b: 10 s = no retraining; rises fast, then slowly falls for long windows)"


def _quantum_gain(frame: pd.DataFrame) -> str:
    m = _means(frame[frame["scheduler"] == "thief"], ["delta"], "gain")
    if m.empty:
        return ""
    return (f"thief's gain over Delta = 0.25, {_seeds(frame)}: " + ", ".join(f"{d:g}: {v:+.1f} points"
                                                                          for d, v in m.items())
            + " (paper section 6.2: about +8% from Delta 1.0 to 0.1; Delta >= 0.5 would starve streams here)")


def _noise_drop(frame: pd.DataFrame) -> str:
    m = _means(frame, ["noise"], "drop")
    return (f"accuracy change against exact predictions, {_seeds(frame)}: "
            + ", ".join(f"sd {n:g}: {v:+.1f} points" for n, v in m.items())
            + " (paper Fig. 11b: at most a 3% drop at 20% noise)")


def _gap(frame: pd.DataFrame) -> str:
    lo, hi = t_interval(frame["ratio"])
    spread = f" (95% CI {lo:.4f}-{hi:.4f})" if frame["ratio"].count() > 1 else ""
    return (f"thief / optimum: mean {frame['ratio'].mean():.4f}{spread}, worst {frame['ratio'].min():.4f} over "
            f"{len(frame)} instances, {_seeds(frame)} (the optimum is static; the thief re-plans on completions, "
            "so it can exceed 1)")


def _robustness_frame(table: RunTable) -> pd.DataFrame:
    from ekya.analysis.robustness import study_frame

    return study_frame(table)


def _robustness_headline(frame: pd.DataFrame) -> str:
    from ekya.analysis.robustness import margin_headline

    return margin_headline(frame)


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study(name="accelerators", sweep="accelerators", reproduces="Fig. 8", title="Accuracy vs accelerators",
          x="accelerators", y="mean_accuracy",
          x_label="accelerators (G)", y_label="mean window accuracy", frame=_headline, facet="streams",
          x_is_count=True, experiment="study-accelerators", headline=_gpu_saving, x_scale="log2",
          description="each scheduler's mean window accuracy over all cameras and windows, per accelerator "
                      "count (paper Fig. 8; experiment=accelerators: 10 simulated streams, G = 1-16)"),
    Study(name="streams", sweep="streams", reproduces="Fig. 6", title="Accuracy vs number of streams",
          x="streams", y="mean_accuracy",
          x_label="video streams", y_label="mean window accuracy", frame=_headline, facet="accelerators",
          x_is_count=True, experiment="study-streams", headline=_gain_over_baselines,
          description="each scheduler's mean window accuracy as cameras are added, one panel per accelerator "
                      "count (paper Fig. 6; experiment=streams)"),
    Study(name="capacity", sweep="capacity", reproduces="Table 2", title="Capacity: streams kept at an accuracy target",
          x="target",
          y="capacity", x_label="accuracy target (mean window accuracy)", y_label="streams served (capacity)",
          frame=_capacity, facet="accelerators", y_is_count=True, experiment="study-streams", headline=_capacities,
          paper=(PaperValue(CAPACITY_THRESHOLD, 2, "Ekya", "thief", "Table 2", facet=1),
                 PaperValue(CAPACITY_THRESHOLD, 8, "Ekya", "thief", "Table 2", facet=2)),
          description="the largest stream count of the sweep whose mean accuracy stays >= each target, per "
                      f"scheduler and accelerator count; the paper's Table 2 is at {CAPACITY_THRESHOLD} "
                      "(the runs of experiment=streams)"),
    Study(name="windows", sweep="streams", reproduces="", title="Accuracy per window",
          x="window", y="accuracy", x_label="retraining window",
          y_label="window accuracy (mean over cameras)", frame=_per_window, facet="accelerators",
          x_is_count=True, metrics=("accuracy",), experiment="study-streams",
          description="each window's accuracy averaged over the cameras, per scheduler, one panel per "
                      "accelerator count"),
    Study(name="allocation", sweep="allocation", reproduces="Fig. 9", title="Allocation per window",
          x="window", y="share", x_label="retraining window",
          y_label="accelerators allocated", frame=_allocation, kind="allocation", x_is_count=True,
          experiment="study-allocation",
          description="the window-start allocation of one cell (thief, fewest accelerators, first seed unless "
                      "--run names one): each camera's inference and retraining shares, from the run's "
                      "schedule.json artifact (paper Fig. 9's quantity, at window resolution; experiment=allocation)"),
    Study(name="ablations", sweep="ablations", reproduces="Fig. 10a",
          title="Thief ablations: fixed split, fixed config", x="accelerators", y="mean_accuracy",
          x_label="accelerators (G)", y_label="mean window accuracy", frame=_headline, x_is_count=True,
          experiment="study-ablations", headline=_ablation_loss,
          description="the thief against itself with the fair split fixed (thief-fixed_split) and with one "
                      "config for every stream (thief-fixed_config) (paper Fig. 10a; experiment=ablations)"),
    Study(name="window_length", sweep="window_length", reproduces="Fig. 10b",
          title="Accuracy vs retraining window length", x="window_seconds",
          y="mean_accuracy", x_label="retraining window T (s of video)", y_label="mean window accuracy",
          frame=_with_param("window.seconds", "window_seconds"), experiment="study-window_length",
          headline=_best_window, x_scale="log2",
          description="the same 800 s of video cut into 50-400 s windows, thief and no retraining "
                      "(paper Fig. 10b; experiment=window_length)"),
    Study(name="quantum", sweep="quantum", reproduces="§6.2 (Δ)",
          title="Steal quantum Delta: accuracy gained over Delta = 0.25", x="delta", y="gain",
          x_label="steal quantum Delta (share of an accelerator)", y_label="accuracy gain (points)",
          frame=_relative_to("cluster.delta", "delta", 0.25, "gain"), experiment="study-quantum",
          headline=_quantum_gain, x_scale="log2",
          paper=(PaperValue(0.1, 8.0, "1.0 -> 0.1", "thief", "§6.2"),),
          description="mean accuracy at each Delta minus that at Delta = 1.0 (same scheduler and seed), 10 "
                      "simulated streams on 4 accelerators (paper section 6.2; experiment=quantum)"),
    Study(name="noise", sweep="noise", reproduces="Fig. 11b", title="Prediction error injected: accuracy it costs",
          x="noise", y="drop",
          x_label="sd of the error added to predicted accuracy", y_label="accuracy change (points)",
          frame=_relative_to("runtime.synthetic.noise", "noise", 0.0, "drop"), experiment="study-noise",
          headline=_noise_drop,
          paper=(PaperValue(0.2, -3.0, "worst drop", "thief", "Fig. 11b"),),
          description="mean accuracy with Gaussian error of sd 0-0.2 on the predictions the thief plans on, "
                      "minus that with exact predictions (same seed); 10 simulated streams, 4 accelerators "
                      "(paper Fig. 11b; experiment=noise)"),
    Study(name="profiler", sweep="profiler", reproduces="Fig. 11a", title="Micro-profiler error against full training",
          x="abs_error", y="fraction",
          x_label="|predicted - reached| accuracy (points)", y_label="fraction of predictions (ECDF)",
          frame=_profiled, kind="ecdf", experiment="study-profiler",
          paper=(PaperValue(5.8, 0.5, "median abs. error", "thief", "Fig. 11a"),),
          description="the distribution of |micro-profiled prediction - accuracy full training reached on the "
                      "window's live data| over every camera, window and config, one line per seed, from each "
                      "run's profiling.csv (paper Fig. 11a; experiment=profiler)"),
    Study(name="robustness", sweep="robustness", reproduces="", title="The thief against fixed plans, cell by cell",
          x="member", y="accuracy", x_label="member", y_label="mean window accuracy", frame=_robustness_frame,
          kind="members", hue="kind", facet="cell", metrics=(schema.NORETRAIN_ACCURACY,),
          experiment="study-robustness", headline=_robustness_headline,
          description="per cell of the robustness matrix (conf/cell/) the mean accuracy of the thief, its two "
                      "measurement instruments (free profiling, oracle), fair, noretrain and the Uniform family; "
                      "the headline is the thief's paired margin over the best baseline, split into profiling "
                      "cost, prediction and scheduling (experiment=robustness and experiment=robustness_uniform)"),
    Study(name="optimality", sweep="optimality", reproduces="", title="The thief against the exact optimum",
          x="streams", y="ratio",
          x_label="video streams", y_label="thief / optimal mean accuracy", frame=_ratio_to_optimal,
          facet="accelerators", x_is_count=True, experiment="study-optimality", headline=_gap,
          description="per small simulated instance the thief's mean accuracy over that of the exact optimum "
                      "of the same plan space, both on true profiles (no paper has it; experiment=optimality)"),
)}


def study(name: str) -> Study:
    """The registered study called ``name`` (an EkyaError lists the names otherwise)."""
    from ekya.errors import EkyaError

    if name not in STUDIES:
        raise EkyaError(f"no study {name!r}; choose one of: {', '.join(STUDIES)}")
    return STUDIES[name]
