"""Drawing a study with seaborn: PNG and PDF, a CSV of what is plotted and a Markdown table of it.

The rules every figure keeps: integer ticks on an axis that counts something, the mean over seeds
with a 95% Student-t interval, the legend outside the axes (it covers no data), and the paper's
published values drawn as their own labelled markers beside ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ekya.analysis.studies import Study
from ekya.errors import EkyaError
from ekya.results import schema
from ekya.results.intervals import t_interval

#: at most this many distinct values get a tick each on a count axis; more get integer steps
_MAX_TICKS = 12
_PAPER_MARKER = dict(marker="*", s=220, edgecolor="black", linewidth=0.8, zorder=5)


@dataclass(frozen=True)
class Drawn:
    """What drawing a study wrote."""

    png: Path
    pdf: Path
    csv: Path
    markdown: Path
    #: the study's headline figure as one line ("" when the study has none or the runs cannot give it)
    headline: str = ""


def _count_axis(axis, values: pd.Series, at_values: bool = True) -> None:  # noqa: ANN001 - a matplotlib Axis
    """Integer ticks: at each value the sweep has (when they are few and ``at_values``), else integer steps."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    present = sorted({int(v) for v in values.dropna()})
    if at_values and 0 < len(present) <= _MAX_TICKS:
        axis.set_major_locator(FixedLocator(present))
    else:
        axis.set_major_locator(MaxNLocator(integer=True))


def _legend_outside(fig) -> None:  # noqa: ANN001 - a matplotlib Figure (constrained layout)
    """One legend for the figure, right of every axes, so it covers no data (labels deduplicated)."""
    entries: dict[str, object] = {}
    for ax in fig.axes:
        handles, labels = ax.get_legend_handles_labels()
        for h, label in zip(handles, labels):
            entries.setdefault(label, h)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if entries:
        # centred on the right edge: clear of the title above the axes as well as of the data
        fig.legend(list(entries.values()), list(entries), loc="outside right center", frameon=False)


def _log2_axis(axis, values: pd.Series) -> None:  # noqa: ANN001 - a matplotlib Axis
    """A log2 axis with a plainly labelled tick at each value the sweep has (a quantity swept by doubling)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis.axes.set_xscale("log", base=2)
    ticks: list[float] = []
    for v in sorted({float(v) for v in values.dropna() if v > 0}):
        if not ticks or v / ticks[-1] >= 1.4:  # closer labels would print over each other
            ticks.append(v)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def _title(fig, axes: list, text: str) -> None:  # noqa: ANN001 - a matplotlib Figure and its Axes
    """Over a single panel the title sits on the axes (never over the legend); over several, on the figure."""
    if len(axes) == 1:
        axes[0].set_title(text, fontsize=10)
    else:
        fig.suptitle(text, fontsize=10)


def _seeds_line(frame: pd.DataFrame, keys: list[str]) -> str:
    """'n = 3 seeds' or 'n = 2-3 seeds' per plotted point, from the data itself."""
    n = frame.groupby(keys, dropna=False)["seed"].nunique()
    lo, hi = int(n.min()), int(n.max())
    return f"n = {lo} seed{'s' if hi > 1 else ''}" if lo == hi else f"n = {lo}-{hi} seeds"


#: the cell dimensions a figure may draw as line styles when its sweep varies them
_CELL_DIMENSIONS = (schema.RUNTIME, schema.ACCELERATORS, schema.STREAMS)


def _style_of(frame: pd.DataFrame, s: Study) -> str | None:
    """The one cell dimension the study does not plot that still varies (drawn as line style), or None.

    A plotted point must average over seeds only: two varying dimensions, or cells that share every
    tag (params differ), cannot be drawn honestly, and say so.
    """
    shown = {s.x, s.hue, s.facet}
    extra = [d for d in _CELL_DIMENSIONS if d in frame and d not in shown and frame[d].nunique(dropna=True) > 1]
    if len(extra) > 1:
        raise EkyaError(f"study {s.name}: the runs vary {' and '.join(extra)}, which this figure does not show; "
                        f"keep one with --filter, e.g. --filter \"tags.{extra[0]} = '{frame[extra[0]].iloc[0]}'\"")
    keys = [k for k in (s.facet, *extra, s.hue, s.x) if k is not None and k in frame]
    if frame.groupby(keys, dropna=False)["seed"].agg(lambda v: v.duplicated().any()).any():
        raise EkyaError(f"study {s.name}: some runs share {', '.join(keys)} and seed but differ in other params; "
                        "keep one set with --filter (an MLflow filter on params. or tags.)")
    return extra[0] if extra else None


def _point_keys(frame: pd.DataFrame, s: Study) -> list[str]:
    """The columns that identify one plotted point (everything but the seed)."""
    style = _style_of(frame, s)
    return [k for k in (s.facet, style, s.hue, s.x) if k is not None and k in frame]


def summary_table(frame: pd.DataFrame, s: Study) -> pd.DataFrame:
    """Mean, 95% interval and number of seeds per plotted point."""
    keys = _point_keys(frame, s)
    rows = []
    for key, g in frame.groupby(keys, sort=True, dropna=False):
        lo, hi = t_interval(g[s.y])
        rows.append({**dict(zip(keys, key if isinstance(key, tuple) else (key,))), "mean": float(g[s.y].mean()),
                     "ci_low": lo, "ci_high": hi, "seeds": int(g["seed"].nunique())})
    return pd.DataFrame(rows)


def _markdown(table: pd.DataFrame, s: Study, note: str) -> str:
    """The summary as a Markdown table (every number from the runs), and the paper's values with their source."""
    cols = list(table.columns)
    lines = [f"<!-- generated by python -m ekya.analysis {s.name}; do not edit by hand -->",
             f"**{s.title}** ({note})", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    for p in s.paper:
        where = f"{s.facet} = {p.facet:g}, " if p.facet is not None and s.facet else ""
        lines.append(f"\nPaper ({p.source}): {p.series} at {where}{s.x} = {p.x:g}: {s.y} = {p.y:g}")
    return "\n".join(lines) + "\n"


def _save(fig, out: Path, name: str) -> tuple[Path, Path]:  # noqa: ANN001 - a matplotlib Figure
    """Write the figure as PNG and PDF (tight box: the outside legend is kept)."""
    png, pdf = out / f"{name}.png", out / f"{name}.pdf"
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight", metadata={"CreationDate": None})
    return png, pdf


def _finish(fig, axes: list, s: Study, out: Path, title: str, data: pd.DataFrame) -> tuple[Path, Path, Path, Path]:  # noqa: ANN001
    """Title, the outside legend, then the PNG, PDF and CSV of ``data``; the four paths (the Markdown one unwritten)."""
    _title(fig, axes, title)
    _legend_outside(fig)
    out.mkdir(parents=True, exist_ok=True)
    png, pdf = _save(fig, out, s.name)
    csv, md = out / f"{s.name}.csv", out / f"{s.name}.md"
    data.to_csv(csv, index=False)
    return png, pdf, csv, md


def _panels(frame: pd.DataFrame, s: Study, facets: list, hues: list, width: float, height: float):  # noqa: ANN202
    """One panel per facet value sharing the y axis, and a colour per hue: (Figure, its Axes, palette)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if frame.empty:
        raise EkyaError(f"study {s.name}: the finished runs give nothing to plot; check --experiment and --filter")
    palette = dict(zip(hues, sns.color_palette("colorblind", len(hues))))
    fig, axes = plt.subplots(1, len(facets), figsize=(width * len(facets) + 2.6, height), sharey=True, squeeze=False,
                             layout="constrained")
    return fig, list(axes[0]), palette


def _written(fig, axes: list, s: Study, out: Path, frame: pd.DataFrame, note: str):  # noqa: ANN001, ANN202
    """Write the figure, its CSV and its Markdown table with the headline: (Figure, Drawn)."""
    png, pdf, csv, md = _finish(fig, axes, s, out, f"{s.title}\n{note}", frame)
    headline = s.headline(frame) if s.headline else ""
    md.write_text(_markdown(summary_table(frame, s), s, note) + (f"\nHeadline: {headline}\n" if headline else ""))
    return fig, Drawn(png, pdf, csv, md, headline)


def draw_lines(frame: pd.DataFrame, s: Study, out: Path):  # noqa: ANN201 - (Figure, Drawn)
    """A line per hue value: the mean over seeds with its 95% interval, one panel per facet value."""
    import seaborn as sns

    style = _style_of(frame, s) if not frame.empty else None
    facets = sorted(frame[s.facet].dropna().unique()) if s.facet and s.facet in frame else [None]
    hues = sorted(frame[s.hue].dropna().unique()) if s.hue in frame else []
    fig, axes, palette = _panels(frame, s, facets, hues, 4.2, 3.6)
    for ax, facet in zip(axes, facets):
        part = frame if facet is None else frame[frame[s.facet] == facet]
        sns.lineplot(data=part, x=s.x, y=s.y, hue=s.hue, hue_order=hues, palette=palette, style=style,
                     errorbar=t_interval, err_style="band", marker="o", ax=ax)
        shown_paper = [p for p in s.paper if p.facet is None or facet is None or float(p.facet) == float(facet)]
        for p in shown_paper:
            ax.scatter([p.x], [p.y], color=palette.get(p.hue, "black"), label=f"paper {p.source}: {p.series}",
                       **_PAPER_MARKER)
        xs = pd.concat([part[s.x], pd.Series([p.x for p in shown_paper], dtype=float)])
        if s.x_scale == "log2":
            _log2_axis(ax.xaxis, xs)
        elif s.x_is_count:
            _count_axis(ax.xaxis, xs)
        if s.y_is_count:
            _count_axis(ax.yaxis, pd.concat([part[s.y], pd.Series([p.y for p in shown_paper], dtype=float)]),
                        at_values=False)
            ax.set_ylim(bottom=0)
        ax.set(xlabel=s.x_label, ylabel=s.y_label)
        if facet is not None and len(facets) > 1:
            ax.set_title(f"{s.facet} = {facet}", fontsize=10)
        ax.grid(True, alpha=0.3)
    single = "" if len(facets) > 1 or facets[0] is None else f", {s.facet} = {facets[0]}"
    note = f"mean and 95% t-interval over seeds, {_seeds_line(frame, _point_keys(frame, s))}{single}"
    return _written(fig, axes, s, out, frame, note)


def draw_members(frame: pd.DataFrame, s: Study, out: Path):  # noqa: ANN201 - (Figure, Drawn)
    """A point per member with its 95% interval over seeds, one panel per facet value, members in frame order."""
    import seaborn as sns

    facets = list(dict.fromkeys(frame[s.facet])) if s.facet and s.facet in frame else [None]
    hues = list(dict.fromkeys(frame[s.hue])) if s.hue in frame else []
    fig, axes, palette = _panels(frame, s, facets, hues, 3.2, 4.2)
    for ax, facet in zip(axes, facets):
        part = frame if facet is None else frame[frame[s.facet] == facet]
        sns.pointplot(data=part, x=s.x, y=s.y, hue=s.hue, hue_order=hues, palette=palette, errorbar=t_interval,
                      linestyles="none", order=list(dict.fromkeys(part[s.x])), ax=ax)
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.set(xlabel=s.x_label, ylabel=s.y_label)
        if facet is not None:
            ax.set_title(f"{s.facet} = {facet}", fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    return _written(fig, axes, s, out, frame, f"mean and 95% t-interval over seeds, "
                                              f"{_seeds_line(frame, [k for k in (s.facet, s.x) if k])}")


def allocation_frame(schedule: dict) -> pd.DataFrame:
    """A schedule document (plans/schedulers/schedule_replay.py format) as rows of window, stream, config and shares."""
    rows = [{"window": int(w), "stream": p["stream"], "config": p["config"], "infer_share": float(p["infer_share"]),
             "train_share": float(p["train_share"])} for w, plans in schedule["windows"].items() for p in plans]
    return pd.DataFrame(rows).sort_values(["window", "stream"], kind="stable").reset_index(drop=True)


#: cameras drawn in the allocation figure (two colours each); the CSV has all of them
MAX_ALLOCATION_STREAMS = 10


def draw_allocation(shares: pd.DataFrame, cell: pd.Series, s: Study, out: Path):  # noqa: ANN201 - (Figure, Drawn)
    """Stacked bars per window: each camera's inference share (dark) and retraining share (light)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    streams = sorted(shares["stream"].unique())
    shown = streams[:MAX_ALLOCATION_STREAMS]
    colours = sns.color_palette("tab20", 20)
    windows = sorted(shares["window"].unique())
    fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(windows) + 3.0), 3.6), layout="constrained")
    bottom = np.zeros(len(windows))
    for i, stream in enumerate(shown):
        g = shares[shares["stream"] == stream].set_index("window").reindex(windows, fill_value=0.0)
        for j, col in enumerate(("infer_share", "train_share")):
            h = g[col].to_numpy(dtype=float)
            # one legend entry per camera: its dark bar is inference, the light one above it retraining
            ax.bar(windows, h, bottom=bottom, width=0.8, color=colours[(2 * i + j) % 20],
                   label=str(stream) if j == 0 else None, edgecolor="white", linewidth=0.4)
            bottom += h
    ax.axhline(float(cell["accelerators"]), color="black", linestyle="--", linewidth=1,
               label=f"capacity (G = {int(cell['accelerators'])})")
    _count_axis(ax.xaxis, pd.Series(windows))
    ax.set(xlabel=s.x_label, ylabel=s.y_label, ylim=(0, float(cell["accelerators"]) * 1.08))
    more = f", first {len(shown)} of {len(streams)} cameras" if len(shown) < len(streams) else ""
    note = (f"{cell['scheduler']}, G = {int(cell['accelerators'])}, {int(cell['streams'])} streams, "
            f"seed {int(cell['seed'])}{more}")
    png, pdf, csv, md = _finish(fig, [ax], s, out, f"{s.title}: dark = inference, light = retraining\n{note}", shares)
    table = shares.groupby("window")[["infer_share", "train_share"]].sum().reset_index()
    lines = [f"<!-- generated by python -m ekya.analysis {s.name}; do not edit by hand -->", f"**{s.title}** ({note})",
             "", "| window | inference | retraining |", "|---|---|---|"]
    lines += [f"| {int(r.window)} | {r.infer_share:.3f} | {r.train_share:.3f} |" for r in table.itertuples()]
    retrain = ", ".join(f"{r.train_share:.2f}" for r in table.itertuples())
    headline = (f"retraining's share of the {int(cell['accelerators'])} accelerator(s) per window: {retrain}; "
                f"mean accuracy {float(cell['mean_accuracy']):.3f} (paper Fig. 9: the split differs per stream and "
                "window; its 2 streams reach 0.82 and 0.83)")
    md.write_text("\n".join(lines) + f"\n\nHeadline: {headline}\n")
    return fig, Drawn(png, pdf, csv, md, headline)


def draw_ecdf(errors: pd.DataFrame, s: Study, out: Path):  # noqa: ANN201 - (Figure, Drawn)
    """The empirical CDF of the profiler's absolute error, one line per seed, the paper's median as a marker."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if errors.empty:
        raise EkyaError(f"study {s.name}: the runs' profiling.csv files have no predictions")
    seeds = sorted(errors["seed"].unique())
    palette = dict(zip(seeds, sns.color_palette("colorblind", len(seeds))))
    fig, ax = plt.subplots(figsize=(5.8, 3.6), layout="constrained")
    for seed in seeds:
        sns.ecdfplot(data=errors[errors["seed"] == seed], x=s.x, color=palette[seed], label=f"seed {seed}", ax=ax)
    for p in s.paper:
        ax.scatter([p.x], [p.y], color="black", label=f"paper {p.source}: {p.series}", **_PAPER_MARKER)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set(xlabel=s.x_label, ylabel=s.y_label, ylim=(0, 1.02), xlim=(0, None))
    ax.grid(True, alpha=0.3)
    per_seed = errors.groupby("seed")[s.x].median()
    lo, hi = t_interval(per_seed)
    note = (f"{len(errors)} predictions ({errors.groupby('seed').size().min()} per seed), "
            f"median {errors[s.x].median():.1f} points")
    png, pdf, csv, md = _finish(fig, [ax], s, out, f"{s.title}\n{note}", errors)
    headline = (f"median |predicted - reached| accuracy: {per_seed.mean():.1f} points (per-seed medians "
                f"{', '.join(f'{v:.1f}' for v in per_seed)}; 95% t-interval {lo:.1f}-{hi:.1f}) "
                "(paper Fig. 11a: median 5.8%)")
    table = errors.groupby("seed")[s.x].agg(["median", "mean", "count"]).reset_index()
    lines = [f"<!-- generated by python -m ekya.analysis {s.name}; do not edit by hand -->", f"**{s.title}** ({note})",
             "", "| seed | median | mean | predictions |", "|---|---|---|---|"]
    lines += [f"| {int(r.seed)} | {r.median:.2f} | {r.mean:.2f} | {int(r.count)} |" for r in table.itertuples()]
    md.write_text("\n".join(lines) + f"\n\nHeadline: {headline}\n")
    return fig, Drawn(png, pdf, csv, md, headline)
