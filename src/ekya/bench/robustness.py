"""Robustness matrix: the thief against fair, the Uniform family and noretrain, over cells and seeds.

    python -m ekya.bench robustness [--cell NAME ...] [--seeds N] [--members a,b] [--uniform-configs a,b]
                                    [--out DIR] [--jobs N] [--overrides o ...] [--baseline-overrides o ...]

The matrix is Hydra config, shared with ``python -m ekya -m experiment=robustness`` (and
experiment=robustness_uniform): each cell is conf/cell/NAME.yaml (CELLS, in that experiment's order),
each member conf/member/NAME.yaml (thief, thief-free-profiling, thief-oracle, fair, and
``uniform[config,p]`` over robustness_uniform's configs and fractions). This command runs them
several at once and resumably, each as a full `python -m ekya` cell per seed (seed S also draws
dataset S): 5 seeds in ``default``, as many as the experiment sweeps (3) in every other cell, the
same seeds for every member. noretrain is no run of its own: every run records it
(``noretrain_accuracy``). It reports with the functions ``python -m ekya.analysis robustness`` uses
on the experiment's MLflow runs (ekya.analysis.robustness): per member the mean over seeds and a 95 %
Student-t interval; the best uniform member picked after the fact; the margin, thief minus the best
baseline, paired per seed, in points.

``thief-free-profiling`` and ``thief-oracle`` are measurement instruments (``runtime.instrument``,
see ekya.execution.emulate), never shipped: the thief told its very predictions with profiling free,
and the thief told every config's realised live accuracy and cost (profiling free). They split the
thief's gap, each paired per seed, in points: ``profiling_cost_points`` (free-profiling - thief),
``prediction_points`` (oracle - free-profiling) and ``scheduling_points`` (oracle - best
baseline); over the seeds all four have, thief_margin = scheduling - prediction - profiling_cost.
``min_infer_share``: the smallest inference share any camera was planned at the start of any
window in any run of the cell (windows.csv's ``infer_share``), and the run it came from.

Resumable: each finished run leaves DIR/<cell>/seed<S>/<member>.json (and its run directory next
to it, without the model checkpoint); a rerun skips those, and a run interrupted halfway resumes
from its checkpoint. Results are tied to the overrides they ran with: asking for other overrides in
the same DIR is an error (choose another --out). `python -m ekya.bench e2e` shares this machinery.

``--baseline-overrides`` apply to the baselines' runs only (fair and the Uniform family), after
``--overrides``: a before/after instrument, e.g. ``--baseline-overrides cluster.delta=0.01`` puts the
baselines back on (nearly) continuous shares while the thief keeps the default grid, which is how
the allocation grid's effect on the comparison is measured (docs/results/end-to-end.md).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ekya.analysis.robustness import (
    EXPERIMENT,
    MLFLOW_EXPERIMENT,
    RUN_COLUMNS,
    UNIFORM_EXPERIMENT,
    cell_names,
    cell_values,
    is_baseline,
    summarize_cell,
    uniform_name,
)
from ekya.atomic import atomic_write
from ekya.bench._runs import check_cell, run_or_resume
from ekya.errors import EkyaError
from ekya.hydra_compose import group_overrides, sweep_values

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help): 72 runs (7
#: cells, 3 + 6 x 1 seeds, 8 members) took 57 min; now 8 cells, 5 + 7 x 3 seeds and 10 members, where an oracle
#: run retrains every config (8) on every camera-window, about the work of 8 runs: (234 + 26 x 8) / 72 x 57 min
DURATION = "about 6 hours (estimated: the measured 57 min scaled by the run count, an oracle run as 8 runs)"

#: cell name -> the Hydra overrides conf/cell/NAME.yaml stands for, on top of the default deployment
#: (1 accelerator, 6 cameras); original_mps is the original's non-conserving throughput: reproduction only
CELLS: dict[str, tuple[str, ...]] = {c: group_overrides("cell", c) for c in cell_names()}
#: seeds per cell unless --seeds says otherwise (MIN_SEEDS for a cell not named here)
DEFAULT_SEEDS: dict[str, int] = {"default": 5}
#: the fewest seeds a cell gets by default (the experiment's): an interval needs several, and runs pair by seed
MIN_SEEDS = len(sweep_values(EXPERIMENT, "seed"))
#: the config space's default config and its cheapest one, and the inference fractions of the Uniform family
UNIFORM_CONFIGS = tuple(sweep_values(UNIFORM_EXPERIMENT, "scheduler.config"))
UNIFORM_FRACTIONS = tuple(float(p) for p in sweep_values(UNIFORM_EXPERIMENT, "scheduler.inference_fraction"))
DEFAULT_OUT = Path("outputs/bench/robustness")


# -- the matrix ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    """One contender of a cell: a name and the scheduler overrides that make it."""

    name: str
    overrides: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """One `python -m ekya` cell of the matrix; ``overrides`` is everything but the output paths."""

    cell: str
    seed: int
    member: str
    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        """cell/seedS/member, as the files are laid out."""
        return f"{self.cell}/seed{self.seed}/{self.member}"


def seeds_of(cell: str) -> int:
    """How many seeds a cell gets unless told otherwise: DEFAULT_SEEDS, else MIN_SEEDS."""
    return DEFAULT_SEEDS.get(cell, MIN_SEEDS)


def all_members(uniform_configs: Sequence[str] = UNIFORM_CONFIGS,
                fractions: Sequence[float] = UNIFORM_FRACTIONS) -> list[Member]:
    """The members of experiment=robustness (conf/member/), then the Uniform family: every config x fraction."""
    out = [Member(m, group_overrides("member", m)) for m in sweep_values(EXPERIMENT, "+member")]
    for config in uniform_configs:
        for p in fractions:
            out.append(Member(uniform_name(config, p), (*group_overrides("member", "uniform"),
                                                       f"scheduler.config={config}",
                                                       f"scheduler.inference_fraction={p:g}")))
    return out


def split_names(text: str) -> list[str]:
    """Split a comma list, keeping commas inside brackets: "fair,uniform[a,0.5]" -> [fair, uniform[a,0.5]]."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [s.strip() for s in out if s.strip()]


def select_members(members: Sequence[Member], wanted: Sequence[str] | None) -> list[Member]:
    """The members named (exactly, else by prefix) in ``wanted``, in matrix order; None keeps all.

    ``noretrain`` selects fair, the run its numbers are read from; ``thief`` only the shipped thief
    (``thief-`` both instruments).
    """
    if not wanted:
        return list(members)
    keep: set[str] = set()
    for w in wanted:
        w = "fair" if w == "noretrain" else w
        hit = {m.name for m in members if m.name == w} or {m.name for m in members if m.name.startswith(w)}
        if not hit:
            raise EkyaError(f"--members {w!r} matches no member; choose from noretrain, "
                            + ", ".join(m.name for m in members))
        keep |= hit
    return [m for m in members if m.name in keep]


def plan_runs(cells: Mapping[str, Sequence[str]], seeds: Mapping[str, Sequence[int]],
              members: Sequence[Member], extra: Sequence[str] = (),
              baseline_extra: Sequence[str] = ()) -> list[Run]:
    """Every (cell, seed, member) run, cell by cell and seed by seed; the extra overrides come last.

    ``baseline_extra`` follows ``extra`` in the baselines' runs only (``is_baseline``).
    """
    return [Run(cell, s, m.name, (*m.overrides, *cell_overrides, f"seed={s}", f"dataset.seed={s}", *extra,
                                  *(baseline_extra if is_baseline(m.name) else ())))
            for cell, cell_overrides in cells.items() for s in seeds[cell] for m in members]


# -- result files -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunResult:
    """What one finished run leaves behind: mean accuracies over cameras and windows, and per window."""

    cell: str
    seed: int
    member: str
    accuracy: float
    noretrain_accuracy: float
    window_accuracy: tuple[float, ...]
    window_noretrain_accuracy: tuple[float, ...]
    seconds: float
    overrides: tuple[str, ...]
    #: the smallest inference share any camera was planned at a window start (NaN: not known)
    min_infer_share: float = math.nan

    @classmethod
    def of(cls, run: Run, df: pd.DataFrame, seconds: float) -> RunResult:
        """The result of a run from its per-window records."""
        per_window = df.groupby("window")[["accuracy", "noretrain_accuracy"]].mean().sort_index()
        return cls(run.cell, run.seed, run.member, float(df["accuracy"].mean()),
                   float(df["noretrain_accuracy"].mean()), tuple(map(float, per_window["accuracy"])),
                   tuple(map(float, per_window["noretrain_accuracy"])), round(seconds, 1), run.overrides,
                   float(df["infer_share"].min()))


def result_path(out: Path, run: Run) -> Path:
    """DIR/<cell>/seed<S>/<member>.json."""
    return Path(out) / run.cell / f"seed{run.seed}" / f"{run.member}.json"


def run_dir(out: Path, run: Run) -> Path:
    """The run's own directory (config, checkpoint while running, windows.csv), next to its result."""
    return Path(out) / run.cell / f"seed{run.seed}" / run.member


def write_result(path: Path, result: RunResult) -> None:
    """Write the result file in one atomic step (a kill never leaves half a file)."""
    atomic_write(path, json.dumps(asdict(result), indent=1))


def read_result(path: Path, run: Run) -> RunResult:
    """A stored result, checked to be of this run's overrides."""
    raw = json.loads(Path(path).read_text())
    if "min_infer_share" not in raw:  # stored before it was kept: the run's records still say
        records = Path(path).parent / run.member / "windows.csv"
        shares = pd.read_csv(records, usecols=["infer_share"]) if records.is_file() else None
        raw["min_infer_share"] = float(shares["infer_share"].min()) if shares is not None else math.nan
    res = RunResult(**{**raw, "window_accuracy": tuple(raw["window_accuracy"]),
                       "window_noretrain_accuracy": tuple(raw["window_noretrain_accuracy"]),
                       "overrides": tuple(raw["overrides"])})
    if res.overrides != run.overrides:
        raise EkyaError(f"{path} was measured with overrides {list(res.overrides)}, not {list(run.overrides)}; "
                        "choose another --out (or delete that file to measure it again)")
    return res


# -- running ------------------------------------------------------------------------------------

def execute(run: Run, out: Path, store: Path) -> RunResult:
    """Run (or resume) one run, write its result file and return it."""
    t0 = time.perf_counter()
    where = run_dir(out, run)
    df = run_or_resume(where, list(run.overrides), store, Path(out) / "data", MLFLOW_EXPERIMENT)
    result = RunResult.of(run, df, time.perf_counter() - t0)
    write_result(result_path(out, run), result)
    # The result file now stands for the run; its models (megabytes per camera) are not needed.
    (where / "state.pkl").unlink(missing_ok=True)
    return result


_slot: int | None = None


def _claim_slot(slots: multiprocessing.queues.Queue[int]) -> None:
    """Worker initializer: take a slot number, so the worker gets an MLflow store of its own."""
    global _slot
    _slot = slots.get()


def _execute_in_worker(run: Run, out: Path) -> RunResult:
    # one sqlite file per worker: concurrent writers to one file would wait on its lock
    return execute(run, out, Path(out) / "mlflow" / f"worker{_slot}.db")


def progress_line(r: RunResult) -> str:
    """One line per finished run: cell, seed, member, accuracy, seconds."""
    return f"{r.cell} seed{r.seed} {r.member}: accuracy {r.accuracy:.4f} ({r.seconds:.0f} s)"


def stored(runs: Iterable[Run], out: Path) -> dict[Run, RunResult]:
    """The runs whose result files exist, read back."""
    return {r: read_result(result_path(out, r), r) for r in runs if result_path(out, r).exists()}


def run_all(
    runs: Sequence[Run], out: Path, jobs: int = 1,
    report: Callable[[RunResult], None] = lambda r: print(progress_line(r), flush=True),
) -> dict[Run, RunResult]:
    """Results of every run: stored ones read back, the others run (``jobs`` at a time) and stored."""
    out = Path(out).resolve()
    results = stored(runs, out)
    todo = [r for r in runs if r not in results]
    if results:
        print(f"{len(results)} of {len(runs)} runs already done under {out}", flush=True)
    # Fail now on a bad override or config name, not hours in; the seed never makes one bad.
    for r in {(r.cell, r.member): r for r in todo}.values():
        try:
            check_cell(list(r.overrides))
        except EkyaError as e:
            raise EkyaError(f"cell {r.cell}, member {r.member}: {e}") from None
    if jobs <= 1 or len(todo) <= 1:
        for r in todo:
            results[r] = execute(r, out, out / "mlflow.db")
            report(results[r])
        return results
    ctx = multiprocessing.get_context("spawn")
    slots = ctx.Queue()
    workers = min(jobs, len(todo))
    for k in range(workers):
        slots.put(k)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_claim_slot, initargs=(slots,)) as pool:
        futures = {pool.submit(_execute_in_worker, r, out): r for r in todo}
        for f in as_completed(futures):
            results[futures[f]] = f.result()
            report(results[futures[f]])
    return results


# -- statistics ---------------------------------------------------------------------------------

def run_frame(results: Iterable[RunResult]) -> pd.DataFrame:
    """The results as the robustness study's rows (ekya.analysis.robustness.RUN_COLUMNS)."""
    return pd.DataFrame([{"cell": r.cell, "seed": r.seed, "member": r.member, "accuracy": r.accuracy,
                          "noretrain_accuracy": r.noretrain_accuracy, "noretrain_windows": r.window_noretrain_accuracy}
                         for r in results], columns=list(RUN_COLUMNS))


def min_infer_share(results: Iterable[RunResult]) -> dict:
    """{min_infer_share, min_infer_share_run}: the smallest inference share planned in any window of any run, where."""
    known = [r for r in results if math.isfinite(r.min_infer_share)]
    if not known:
        return {"min_infer_share": None, "min_infer_share_run": None}
    low = min(known, key=lambda r: r.min_infer_share)
    return {"min_infer_share": round(low.min_infer_share, 4), "min_infer_share_run": f"seed{low.seed}/{low.member}"}


def cell_report(cell: str, seeds: Sequence[int], runs: Sequence[Run], results: Mapping[Run, RunResult]) -> dict:
    """The cell's report over the results it has, with its seed count and the runs of ``runs`` it lacks."""
    mine = [r for r in runs if r.cell == cell]
    done = [results[r] for r in mine if r in results]
    values: dict[str, dict[int, float]] = {r.member: {} for r in mine}
    values.update(cell_values(run_frame(done)))
    out = {"seeds": len(seeds), **summarize_cell(values), **min_infer_share(done)}
    missing = [f"seed{r.seed}/{r.member}" for r in mine if r not in results]
    if missing:
        out["missing"] = missing
    return out


def measure(cells: Mapping[str, Sequence[str]], seeds: Mapping[str, Sequence[int]], members: Sequence[Member],
            extra: Sequence[str], out: Path, jobs: int = 1, run_only: Sequence[str] | None = None,
            baseline_extra: Sequence[str] = ()) -> dict[str, dict]:
    """Every cell's report over ``members``; runs only those named in ``run_only`` (None: all).

    Stored results of the members not run are reported too; the others are listed as missing.
    """
    runs = plan_runs(cells, seeds, members, extra, baseline_extra)
    chosen = [r for r in runs if run_only is None or r.member in run_only]
    others = set(runs) - set(chosen)
    results = {**stored([r for r in runs if r in others], out), **run_all(chosen, out, jobs)}
    return {cell: cell_report(cell, seeds[cell], runs, results) for cell in cells}


# -- command line -------------------------------------------------------------------------------

def main(argv: list[str]) -> dict:
    """Run the robustness matrix (resuming) and return every cell's report."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench robustness", description=__doc__.splitlines()[0])
    ap.add_argument("--cell", action="append", help=f"cells (repeatable or comma list): {', '.join(CELLS)}")
    ap.add_argument("--seeds", type=int,
                    help=f"seeds per cell (default: {seeds_of('default')} for default, {MIN_SEEDS} for the others)")
    ap.add_argument("--members", help="members by name, else prefix, e.g. thief,fair,uniform (default: all; "
                                      "thief- selects its two instruments)")
    ap.add_argument("--uniform-configs", default=",".join(UNIFORM_CONFIGS), help="configs of the Uniform family")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    ap.add_argument("--overrides", nargs="+", action="extend", default=[], help="Hydra overrides for every run")
    ap.add_argument("--baseline-overrides", nargs="+", action="extend", default=[],
                    help="Hydra overrides for the baselines' runs only (fair, uniform), after --overrides")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    names = [c for arg in (args.cell or [",".join(CELLS)]) for c in split_names(arg)]
    unknown = [c for c in names if c not in CELLS]
    if unknown:
        ap.error(f"unknown cell(s) {unknown}; choose from {', '.join(CELLS)}")
    if args.seeds is not None and args.seeds < 1:
        ap.error("--seeds must be at least 1")
    cells = {c: CELLS[c] for c in dict.fromkeys(names)}
    seeds = {c: list(range(args.seeds if args.seeds is not None else seeds_of(c))) for c in cells}
    members = all_members(split_names(args.uniform_configs))
    chosen = select_members(members, split_names(args.members) if args.members else None)
    report = measure(cells, seeds, members, args.overrides, args.out, args.jobs, [m.name for m in chosen],
                     args.baseline_overrides)
    return {"cells": report, "seconds": round(time.perf_counter() - t0, 1)}
