"""The robustness study: per cell, the thief's margin over the best fixed plan, split by its two instruments.

The matrix is Hydra config: its cells are conf/cell/, its members conf/member/, and
experiment=robustness (with experiment=robustness_uniform for the Uniform family) sweeps them over
seeds into the MLflow experiment ``study-robustness``. Two readers report it with the functions here:
``python -m ekya.analysis robustness`` from MLflow (``study_frame``), and ``python -m ekya.bench
robustness``, which runs the same cells and members several at once and resumably, from its result
files. Both build one row per finished run (RUN_COLUMNS) and call ``cell_values`` and ``summarize_cell``.

Per member: the mean over seeds and a 95 % Student-t interval; the best Uniform member is picked after
the fact; the margin is the thief minus the best baseline, paired per seed, in points. The thief's
two measurement instruments split it: ``profiling_cost_points`` (free-profiling - thief),
``prediction_points`` (oracle - free-profiling) and ``scheduling_points`` (oracle - best baseline);
over the same seeds, thief_margin = scheduling - prediction - profiling_cost.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from ekya.errors import EkyaError
from ekya.results import schema
from ekya.results.intervals import Estimate, estimate

if TYPE_CHECKING:
    from ekya.analysis.table import RunTable

#: the shipped thief and its two measurement instruments (conf/member/, runtime.instrument)
THIEF, FREE_PROFILING, ORACLE = "thief", "thief-free-profiling", "thief-oracle"
#: no run of its own: every run records what the base models alone would have served
NORETRAIN = "noretrain"
#: two runs' noretrain references are the same numbers computed twice; allow only rounding noise
NORETRAIN_TOLERANCE = 1e-12
#: one row per finished run, as both readers build it; ``noretrain_windows`` is a tuple (per window)
RUN_COLUMNS = ("cell", "seed", "member", "accuracy", "noretrain_accuracy", "noretrain_windows")
#: the cell that changes nothing: the default deployment
DEFAULT_CELL = "default"
#: the experiment that sweeps the matrix (and its Uniform family, robustness_uniform), and its MLflow experiment
EXPERIMENT, UNIFORM_EXPERIMENT, MLFLOW_EXPERIMENT = "robustness", "robustness_uniform", "study-robustness"


def cell_names() -> list[str]:
    """The matrix's cells, in report order (experiment=robustness's sweep of +cell)."""
    from ekya.hydra_compose import sweep_values

    return sweep_values(EXPERIMENT, "+cell")


def uniform_name(config: str, fraction: float) -> str:
    """The member name of Uniform (config, fraction), e.g. uniform[full_h256_f0.5_e5,0.5]."""
    return f"uniform[{config},{fraction:g}]"


def is_baseline(member: str) -> bool:
    """fair and the Uniform family: the fixed plans the thief is compared against."""
    return member == "fair" or member.startswith("uniform[")


# -- statistics ---------------------------------------------------------------------------------

def best_by_mean(estimates: Mapping[str, Estimate]) -> str | None:
    """The name with the highest mean (the first one listed on a tie); None when there is none."""
    return max(estimates, key=lambda k: estimates[k].mean) if estimates else None


def paired_margin(a: Mapping[int, float], b: Mapping[int, float]) -> Estimate | None:
    """Per-seed differences a - b over the seeds both have, estimated; None when they share none."""
    common = sorted(a.keys() & b.keys())
    return estimate([a[s] - b[s] for s in common]) if common else None


def _points(name: str, values: Mapping[str, Mapping[int, float]], a: str, b: str | None) -> dict:
    """{NAME_points, NAME_ci_points}: a - b paired per seed, in points (None where either has no result)."""
    margin = paired_margin(values[a], values[b]) if b is not None and a in values and b in values else None
    points = margin.rounded(2, scale=100.0) if margin is not None else {"mean": None, "ci": None}
    return {f"{name}_points": points["mean"], f"{name}_ci_points": points["ci"]}


def summarize_cell(values: Mapping[str, Mapping[int, float]]) -> dict:
    """The report of one cell from member -> {seed: mean accuracy} (noretrain included as a member)."""
    values = {name: v for name, v in values.items() if v}
    est = {name: estimate([v[s] for s in sorted(v)]) for name, v in values.items()}
    uniform = {n: e for n, e in est.items() if n.startswith("uniform")}
    best_uniform = best_by_mean(uniform)
    baselines = {n: est[n] for n in ("fair", NORETRAIN) if n in est}
    if best_uniform is not None:
        baselines[best_uniform] = est[best_uniform]
    best = best_by_mean(baselines)
    return {
        **{n: (est[n].rounded() if n in est else None) for n in (THIEF, FREE_PROFILING, ORACLE, "fair", NORETRAIN)},
        "uniform": {n: e.rounded() for n, e in uniform.items()},
        "best_uniform": None if best_uniform is None else {"member": best_uniform, **uniform[best_uniform].rounded()},
        "best_baseline": best,
        **_points("thief_margin", values, THIEF, best),
        **_points("profiling_cost", values, FREE_PROFILING, THIEF),
        **_points("prediction", values, ORACLE, FREE_PROFILING),
        **_points("scheduling", values, ORACLE, best),
    }


def noretrain_by_seed(runs: pd.DataFrame) -> dict[int, float]:
    """noretrain accuracy per seed of one cell's runs, from fair (else the thief, else any); all must agree.

    Every run serves the same base models on the same data, so the references may differ by rounding
    only, overall and window by window; more means one of the runs is broken (an EkyaError says which).
    """
    rank = {"fair": 0, THIEF: 1}
    out: dict[int, float] = {}
    for seed, rows in runs.groupby("seed", sort=True):
        rows = rows.sort_values("member", key=lambda m: m.map(lambda n: rank.get(n, 2)), kind="stable")
        ref = rows.iloc[0]
        ref_values = (ref.noretrain_accuracy, *ref.noretrain_windows)
        for other in rows.iloc[1:].itertuples():
            values = (other.noretrain_accuracy, *other.noretrain_windows)
            if len(values) != len(ref_values) or max(abs(x - y) for x, y in zip(ref_values, values)) \
                    > NORETRAIN_TOLERANCE:
                raise EkyaError(
                    f"cell {ref.cell} seed {seed}: the noretrain reference of {ref.member} "
                    f"({ref.noretrain_accuracy!r}) and of {other.member} ({other.noretrain_accuracy!r}) differ; "
                    "both runs serve the same base models on the same data, so one of them is broken")
        out[int(seed)] = float(ref.noretrain_accuracy)
    return out


def cell_values(runs: pd.DataFrame) -> dict[str, dict[int, float]]:
    """member -> {seed: accuracy} of one cell's runs (RUN_COLUMNS), noretrain included as a member."""
    values: dict[str, dict[int, float]] = {}
    for r in runs.itertuples():
        values.setdefault(r.member, {})[int(r.seed)] = float(r.accuracy)
    if len(runs):
        values[NORETRAIN] = noretrain_by_seed(runs)
    return values


def report(runs: pd.DataFrame, cells: Sequence[str] | None = None) -> dict[str, dict]:
    """cell -> its report (``summarize_cell``, with its seed count), in ``cells``' order (default: as found)."""
    order = list(cells) if cells is not None else list(dict.fromkeys(runs["cell"]))
    return {c: {"seeds": int(runs.loc[runs["cell"] == c, "seed"].nunique()),
                **summarize_cell(cell_values(runs[runs["cell"] == c]))} for c in order}


# -- reading the matrix from MLflow -------------------------------------------------------------

@lru_cache(maxsize=1)
def cell_signatures() -> dict[str, dict[str, str | None]]:
    """cell -> the params that tell its runs apart (dotted key -> text as MLflow keeps it; None = absent).

    Every cell is signed on the keys any cell changes (conf/cell/), each at the value that cell's
    config gives it: a run belongs to the cell whose signature its params match.
    """
    from omegaconf import OmegaConf

    from ekya.hydra_compose import compose_config
    from ekya.results.tracking import flatten

    def leaves(cfg: object) -> dict[str, object]:
        return {k: v for k, v in flatten(OmegaConf.to_container(cfg)).items()
                if not k.endswith("_target_") and not (isinstance(v, str) and v.startswith("${"))}

    base = compose_config([])
    composed = {c: compose_config([f"+cell={c}"]) for c in cell_names()}
    plain = leaves(base)
    keys = sorted({k for cfg in composed.values() for k, v in leaves(cfg).items() if plain.get(k, object()) != v})

    def text(cfg: object, key: str) -> str | None:
        value = OmegaConf.select(cfg, key, default=None)
        return None if value is None else str(value)

    return {c: {k: text(cfg, k) for k in keys} for c, cfg in composed.items()}


def _text(value: object) -> str | None:
    """A param as MLflow keeps it (text), None when the run has none."""
    return None if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def cell_of(params: Mapping[str, object]) -> str | None:
    """The matrix cell a run's params (``params.<key>`` -> text) belong to; None when no cell's do.

    A key the run does not have (simulate has no ``runtime.cost_noise``) matches the default's value only.
    """
    signatures = cell_signatures()
    plain = signatures[DEFAULT_CELL]
    for cell, signature in signatures.items():
        got = {k: _text(params.get(f"params.{k}")) for k in signature}
        if all(got[k] == want or (got[k] is None and want == plain[k]) for k, want in signature.items()):
            return cell
    return None


def member_of(row: Mapping[str, object]) -> str:
    """The member name of a run from its scheduler and instrument tags and its scheduler params."""
    scheduler = str(row[schema.SCHEDULER])
    instrument = row.get(f"params.runtime.{schema.INSTRUMENT}")
    if scheduler == "uniform":
        return uniform_name(str(row["params.scheduler.config"]), float(row["params.scheduler.inference_fraction"]))
    if scheduler == THIEF and isinstance(instrument, str) and instrument not in ("None", ""):
        return f"{THIEF}-{instrument.replace('_', '-')}"
    return scheduler


def run_rows(table: RunTable) -> pd.DataFrame:
    """One row per finished run of the study's MLflow experiment (RUN_COLUMNS), its cell from its params."""
    runs, long = table.runs, table.long
    windows = long[(long["metric"] == schema.NORETRAIN_ACCURACY) & (long["camera"] == "all")
                   & long["window"].notna()].sort_values("window")
    per_run = windows.groupby("run_id")["value"].agg(tuple)
    rows, strays = [], []
    for _, r in runs.iterrows():
        cell = cell_of(r)
        if cell is None:
            strays.append(str(r["run_name"]))
            continue
        rows.append({"cell": cell, "seed": int(r[schema.SEED]), "member": member_of(r),
                     "accuracy": float(r[schema.MEAN_ACCURACY]),
                     "noretrain_accuracy": float(r[schema.MEAN_NORETRAIN_ACCURACY]),
                     "noretrain_windows": per_run.get(r["run_id"], ())})
    if strays:
        raise EkyaError(f"experiment {table.experiment!r}: {len(strays)} run(s) belong to no cell of conf/cell/ "
                        f"(e.g. {strays[0]}); keep the matrix's runs with --filter or another --experiment")
    return pd.DataFrame(rows, columns=list(RUN_COLUMNS))


def study_frame(table: RunTable) -> pd.DataFrame:
    """The plotted frame: per cell, member and seed the mean accuracy (noretrain as a member), and its kind."""
    runs = run_rows(table)
    parts = [runs[["cell", "member", "seed", "accuracy"]]]
    for cell, rows in runs.groupby("cell", sort=False):
        parts.append(pd.DataFrame([{"cell": cell, "member": NORETRAIN, "seed": s, "accuracy": v}
                                   for s, v in noretrain_by_seed(rows).items()]))
    frame = pd.concat(parts, ignore_index=True)
    frame["kind"] = frame["member"].map(lambda m: "thief" if m == THIEF else "instrument" if m.startswith(THIEF)
                                        else "baseline")
    cells = {c: i for i, c in enumerate(cell_names())}
    members = {m: i for i, m in enumerate((THIEF, FREE_PROFILING, ORACLE, "fair", NORETRAIN))}
    keys = {"cell": lambda s: s.map(cells), "member": lambda s: s.map(lambda m: (members.get(m, len(members)), m)),
            "seed": lambda s: s}
    return frame.sort_values(["cell", "member", "seed"], key=lambda s: keys[s.name](s),
                             kind="stable").reset_index(drop=True)


def _points_text(rep: Mapping[str, object], name: str) -> str:
    """'+1.23 [-0.50, +2.96]' from a cell report's NAME_points and NAME_ci_points ('n/a' without them)."""
    mean, ci = rep[f"{name}_points"], rep[f"{name}_ci_points"]
    if mean is None:
        return "n/a"
    return f"{mean:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")  # type: ignore[index]


def margin_headline(frame: pd.DataFrame) -> str:
    """Per cell the thief's margin over the best baseline and its split, in points with 95 % intervals."""
    parts = []
    for cell, rows in frame.groupby("cell", sort=False):
        values: dict[str, dict[int, float]] = {}
        for r in rows.itertuples():
            values.setdefault(r.member, {})[int(r.seed)] = float(r.accuracy)
        rep = summarize_cell(values)
        parts.append(f"{cell}: thief {_points_text(rep, 'thief_margin')} vs {rep['best_baseline']} (profiling "
                     f"{_points_text(rep, 'profiling_cost')}, prediction {_points_text(rep, 'prediction')}, "
                     f"scheduling {_points_text(rep, 'scheduling')})")
    return "; ".join(parts) + " (points, paired over seeds)"
