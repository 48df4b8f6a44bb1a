"""Learners and model reuse: fine-tuning, replay, LwF and iCaRL; the model cache; the thief with cached models.

    python -m ekya.bench learners [--seeds 3] [--cells default,recurring,recurring_nohistory]
                                  [--out DIR] [--jobs N] [--members NAME,...] [--skip-throughput]
                                  [override ...]

Each member runs the default deployment (6 synthetic cameras, 1 accelerator, thief) as a full
`python -m ekya` cell per seed, on the default stream, on one whose scenes drift away and come
back (``dataset=synthetic_recurring``), and on that one again with each window trained on its
newest chunk alone (``window.history_weight=0``), where an unguarded learner has most to forget.
Per member and stream: the mean window accuracy over cameras and windows, and the forgetting metrics
of docs/learners.md (backward transfer, forgetting) over the probe matrices of ``window.forgetting``,
each a mean over seeds with a 95 % interval;
``model_cache`` also reports its upper bound (the best cached model chosen after the fact). Then,
in one process after warm-up jobs, each learner's training throughput: samples trained per wall
second of a retraining job (every pass counted: teacher targets, memory, herding), and its ratio
to fine-tuning's. Finished runs are stored under --out and read back, as in the robustness matrix.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pandas as pd

from ekya.bench.robustness import Member, Run, plan_runs, run_all, run_dir, split_names
from ekya.errors import EkyaError
from ekya.results.continual import continual_metrics, macro_metrics
from ekya.results.intervals import estimate

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about an hour (estimated: 54 full runs of the default deployment; less with --jobs 2)"

#: stream name -> Hydra overrides on top of the default deployment
#: ("recurring_nohistory" trains each window on the newest chunk alone, window.history_weight=0: the
#: default pool already replays history, which leaves plain fine-tuning little to forget)
CELLS: dict[str, tuple[str, ...]] = {
    "default": (),
    "recurring": ("dataset=synthetic_recurring",),
    "recurring_nohistory": ("dataset=synthetic_recurring", "window.history_weight=0"),
}
#: the learners compared (each under the thief), in the order they are reported
LEARNERS = ("finetune", "finetune_replay", "finetune_lwf", "icarl")
MEMBERS: tuple[Member, ...] = (
    *(Member(name, ("scheduler=thief", f"learner={name}")) for name in LEARNERS),
    Member("thief_cached", ("scheduler=thief", "learner=finetune", "scheduler.cached_models=true")),
    Member("model_cache", ("scheduler=model_cache", "learner=finetune")),
)
DEFAULT_OUT = Path("outputs/bench/learners")
#: the job whose throughput is timed: every layer trained (the costly family), and the head alone
THROUGHPUT_CONFIGS = ("full_h256_f1.0_e5", "frozen_h256_f1.0_e5")


# -- accuracy and forgetting, from the runs' files ------------------------------------------------

def run_figures(where: Path) -> dict[str, float]:
    """One finished run's figures: mean accuracy, upper bound (model_cache), macro BWT and forgetting."""
    windows = pd.read_csv(where / "windows.csv")
    out = {"accuracy": float(windows["accuracy"].mean())}
    if "oracle_accuracy" in windows and windows["oracle_accuracy"].notna().any():
        out["upper_bound"] = float(windows["oracle_accuracy"].mean())
    path = where / "continual.csv"
    if path.exists():
        out.update(_forgetting(pd.read_csv(path)))
    return out


def _forgetting(frame: pd.DataFrame) -> dict[str, float]:
    """Macro backward transfer and forgetting over the cameras of a continual.csv frame."""
    per_camera = {}
    for cam, rows in frame.groupby("camera"):
        matrix = rows.pivot(index="row", columns="col", values="accuracy").sort_index().sort_index(axis=1)
        per_camera[str(cam)] = continual_metrics(matrix.to_numpy())
    macro = macro_metrics(per_camera)
    return {"bwt": macro["bwt"], "forgetting": macro["forgetting"]}


def _summary(values: Sequence[float]) -> dict:
    """{"mean", "ci"} of per-seed values, rounded (NaN seeds left out; None when none is a number)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return {"mean": None, "ci": None}
    return estimate(finite).rounded(4)


def cell_report(runs: Sequence[Run], out: Path) -> dict:
    """Per member: every figure's mean and interval over the seeds of one stream."""
    by_member: dict[str, list[dict[str, float]]] = {}
    for run in runs:
        by_member.setdefault(run.member, []).append(run_figures(run_dir(out, run)))
    report = {}
    for member, figures in by_member.items():
        keys = dict.fromkeys(k for f in figures for k in f)
        report[member] = {k: _summary([f.get(k, math.nan) for f in figures]) for k in keys}
    return report


# -- throughput ---------------------------------------------------------------------------------

def _job_bench(learner_name: str, extra: Sequence[str]) -> Callable[[str, int], float]:
    """A function timing one retraining job of a learner (samples trained per wall second), after a warm-up."""
    from ekya.composition import build_runtime
    from ekya.hydra_compose import compose_config

    cfg = compose_config([f"learner={learner_name}", "dataset.cameras=1", "learner.base_epochs=5", *extra])
    runtime, _ = build_runtime(cfg)
    cam, service = runtime.streams[0], runtime.retraining
    assert service is not None, "the default runtime (emulate) trains for real"
    learner, data, space = service.learner, service.stream_set, service.space
    window = service.windows_of[cam][1]
    base = learner.base_model(data, service.windows_of[cam][0], 0)

    def job(config: str, seed: int) -> float:
        _, report = learner.retrain(base, space[config], window.train, window.val, data, seed)
        return report.samples_seen / report.wall_seconds

    for config in THROUGHPUT_CONFIGS:  # warm-up: crops decoded, kernels and allocator warm
        job(config, 1)
    return job


def throughput(learners: Sequence[str], extra: Sequence[str], repeats: int = 5) -> dict[str, dict]:
    """Per learner: samples per second of each timed config and its ratio to fine-tuning's, in one process.

    The learners' jobs are interleaved round by round, so a change in the machine's load falls on
    all of them alike; each figure is the median over ``repeats`` rounds.
    """
    benches = {name: _job_bench(name, extra) for name in learners}
    rates: dict[str, dict[str, list[float]]] = {name: {c: [] for c in THROUGHPUT_CONFIGS} for name in learners}
    for r in range(repeats):
        for config in THROUGHPUT_CONFIGS:
            for name, job in benches.items():
                rates[name][config].append(job(config, 2 + r))
    medians = {name: {c: statistics.median(v) for c, v in per.items()} for name, per in rates.items()}
    reference = medians.get("finetune")
    report = {}
    for name, per_config in medians.items():
        entry: dict = {"samples_per_second": {c: round(v, 1) for c, v in per_config.items()}}
        if reference:
            entry["ratio_to_finetune"] = {c: round(v / reference[c], 3) for c, v in per_config.items()}
        report[name] = entry
    return report


# -- command line -------------------------------------------------------------------------------

def main(argv: list[str]) -> dict:
    """Run (or read back) every member on both streams over seeds, then time each learner's jobs."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench learners", description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cells", default=",".join(CELLS), help=f"streams to run, of {', '.join(CELLS)}")
    ap.add_argument("--members", default=",".join(m.name for m in MEMBERS), help="members to run")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    ap.add_argument("--skip-throughput", action="store_true", help="leave out the timed jobs")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. dataset.cameras=4")
    args = ap.parse_args(argv)
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    cells = split_names(args.cells)
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        raise EkyaError(f"--cells {unknown}: choose from {', '.join(CELLS)}")
    wanted = split_names(args.members)
    members = [m for m in MEMBERS if m.name in wanted]
    if len(members) != len(wanted):
        raise EkyaError(f"--members {sorted(set(wanted) - {m.name for m in members})}: choose from "
                        + ", ".join(m.name for m in MEMBERS))
    t0 = time.perf_counter()
    chosen: Mapping[str, tuple[str, ...]] = {c: CELLS[c] for c in cells}
    runs = plan_runs(chosen, {c: list(range(args.seeds)) for c in cells}, members, args.overrides)
    run_all(runs, args.out, args.jobs)
    report: dict = {cell: cell_report([r for r in runs if r.cell == cell], args.out) for cell in cells}
    if not args.skip_throughput:
        learners = [m.name for m in members if m.name in LEARNERS]
        report["throughput"] = throughput(learners, args.overrides)
    return {**report, "targets": targets(report), "seeds": args.seeds, "seconds": round(time.perf_counter() - t0, 1)}


def _mean(report: Mapping, cell: str, member: str, figure: str) -> float | None:
    return report.get(cell, {}).get(member, {}).get(figure, {}).get("mean")


def targets(report: Mapping) -> dict[str, bool | None]:
    """The benchmark's claims read off the report (None where a figure was not measured).

    iCaRL and replay forget less than plain fine-tuning on recurring scenes; the thief with cached
    models is at least as accurate as fine-tuning alone on every cell.
    """
    def below(cell: str, member: str, than: str, figure: str) -> bool | None:
        a, b = _mean(report, cell, member, figure), _mean(report, cell, than, figure)
        return None if a is None or b is None else a < b

    out: dict[str, bool | None] = {}
    for cell in ("recurring", "recurring_nohistory"):
        out[f"icarl_forgets_less_on_{cell}"] = below(cell, "icarl", "finetune", "forgetting")
        out[f"replay_forgets_less_on_{cell}"] = below(cell, "finetune_replay", "finetune", "forgetting")
    for cell in CELLS:
        a, b = _mean(report, cell, "thief_cached", "accuracy"), _mean(report, cell, "finetune", "accuracy")
        out[f"thief_cached_at_least_thief_{cell}"] = None if a is None or b is None else a >= b
    ratios = [r for entry in report.get("throughput", {}).values() for r in entry.get("ratio_to_finetune", {}).values()]
    out["throughput_ratios_at_least_0.8"] = min(ratios) >= 0.8 if ratios else None
    return out
