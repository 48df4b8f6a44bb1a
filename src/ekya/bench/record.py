"""A benchmark's figures kept with their provenance (``python -m ekya.bench NAME --record``), and shown as Markdown.

``record`` writes ``DIR/NAME.json`` (``--record-as RECORD``: ``DIR/RECORD.json``, for a run with other arguments
beside the default run's): the benchmark, its arguments, the figures it printed, and when, at which
commit and on which machine they were measured. ``render_markdown`` turns such a file into a provenance line and
tables, which the docs' mkdocs hook (docs/hooks/bench_results.py) puts where a page says ``<!-- bench: NAME -->``:
published figures are written by the command that measured them, never by hand.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ekya
from ekya.atomic import atomic_write

#: where ``--record`` writes unless told otherwise (relative to the current directory), and the docs read
DEFAULT_FOLDER = Path("docs") / "results"
#: a record's name: the file's stem and the docs' ``<!-- bench: NAME -->`` marker
RECORD_NAME = re.compile(r"[A-Za-z0-9_-]+")
#: a group of like results is a table with one row per result up to this many figures each (else one column each)
MAX_COLUMNS = 8
#: ...and one column per result up to this many results (else plain key | value rows)
MAX_RESULT_COLUMNS = 12


def cpu_model() -> str | None:
    """The processor's model name (/proc/cpuinfo on Linux), else what the platform module knows, else None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


#: what a benchmark runs: the package (its configs included), the scripts and the install's pins
MEASURED_PATHS = ("src", "scripts", "pyproject.toml")


def git_state(where: Path | None = None) -> tuple[str | None, bool | None]:
    """(short commit, uncommitted changes to what runs?) of the git checkout ekya's source is tracked in.

    (None, None) outside one. The checkout must track the package itself: an installed copy inside some
    other repository (a venv in a clone) is not that repository's commit. Only what a measurement runs
    counts as a change (MEASURED_PATHS): editing the docs or the tests while a benchmark runs changes no figure.
    """
    package = Path(where or Path(ekya.__file__).parent).resolve()

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=package, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    if git("ls-files", "--error-unmatch", "__init__.py") is None:
        return None, None
    commit = git("rev-parse", "--short", "HEAD")
    status = git("status", "--porcelain", "--", *(f":(top){p}" for p in MEASURED_PATHS))
    return (commit.strip() if commit else None), (bool(status.strip()) if status is not None else None)


def threads_of(argv: Sequence[str], figures: Mapping[str, Any]) -> int | None:
    """The torch threads the run used, where the figures or the arguments say (``threads=N``, ``--threads N``)."""
    if isinstance(figures.get("threads"), int):
        return int(figures["threads"])
    for i, arg in enumerate(argv):
        m = re.fullmatch(r"(?:\+{0,2}threads|--threads)=(\d+)", arg)
        if m:
            return int(m[1])
        if arg == "--threads" and i + 1 < len(argv) and argv[i + 1].isdigit():
            return int(argv[i + 1])
    return None


def provenance(argv: Sequence[str], figures: Mapping[str, Any]) -> dict[str, Any]:
    """When, at which commit and on which machine figures were measured (the ``recorded`` part of a record)."""
    commit, dirty = git_state()
    out: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "dirty": dirty,
        "machine": {"platform": platform.platform(), "processor": cpu_model(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
    }
    threads = threads_of(argv, figures)
    if threads is not None:
        out["threads"] = threads
    return out


def record(name: str, argv: Sequence[str], figures: Mapping[str, Any], folder: str | Path = DEFAULT_FOLDER,
           record_as: str | None = None) -> Path:
    """Write ``folder/NAME.json`` (``RECORD_AS.json`` if given) at once: benchmark, arguments, figures, provenance."""
    stem = record_as or name
    if not RECORD_NAME.fullmatch(stem):
        raise ValueError(f"{stem!r} is no record name (letters, digits, '-' and '_')")
    doc = {"benchmark": name, "argv": list(argv), "figures": dict(figures), "recorded": provenance(argv, figures)}
    return atomic_write(Path(folder) / f"{stem}.json", json.dumps(doc, indent=2) + "\n")


def load(path: str | Path) -> dict[str, Any]:
    """A record written by ``record``; FileNotFoundError naming the command that writes it if there is none."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run `python -m ekya.bench {path.stem} --record "
                                f"{path.parent}` to measure it (or, for a run with other arguments, "
                                f"`python -m ekya.bench BENCHMARK ARGS --record-as {path.stem}`)")
    return json.loads(path.read_text())


def command(doc: Mapping[str, Any]) -> str:
    """The command line that produced a record."""
    return shlex.join(["python", "-m", "ekya.bench", str(doc["benchmark"]), *map(str, doc.get("argv", []))])


def flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level with dotted keys ({"a": {"b": 1}} -> {"a.b": 1}); an empty dict stays a value."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            out.update(flatten(item, name + "."))
        else:
            out[name] = item
    return out


@dataclass(frozen=True)
class Estimate:
    """A figure with its interval, shown in one cell as ``mean [low, high]`` (just ``mean`` without one)."""

    mean: Any
    ci: Any


def _is_interval(value: Any) -> bool:
    return value is None or (isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2)


def _is_estimate(value: Any) -> bool:
    """A mapping holding a mean and its interval (``{"mean": m, "ci": [lo, hi] or null, ...}``)."""
    return isinstance(value, Mapping) and "mean" in value and "ci" in value and _is_interval(value["ci"])


def _pair_intervals(flat: dict[str, Any]) -> dict[str, Any]:
    """A figure and its interval named like it with ``_ci`` (``x_points``, ``x_ci_points``; ``x``, ``x_ci``) as one."""
    out = dict(flat)
    for key, value in flat.items():
        parent, dot, leaf = key.rpartition(".")
        if "_ci" not in leaf or not _is_interval(value):
            continue
        head, _, tail = leaf.partition("_ci")
        if tail and not tail.startswith("_"):
            continue  # "_cite": no interval
        figure = f"{parent}{dot}{head}{tail}"
        if figure in out and not isinstance(out[figure], (Mapping, Estimate, str)):
            out[figure] = Estimate(out[figure], value)
            del out[key]
    return out


def _leaves(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Like ``flatten``, but a mean with its interval is one leaf (an Estimate under its parent's key)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if _is_estimate(item):
            out[name] = Estimate(item["mean"], item["ci"])
            out.update(_leaves({k: v for k, v in item.items() if k not in ("mean", "ci")}, name + "."))
        elif isinstance(item, Mapping) and item:
            out.update(_leaves(item, name + "."))
        else:
            out[name] = item
    return _pair_intervals(out)


def _cell(value: Any, code: bool = False) -> str:
    """A value as the text of a Markdown table cell."""
    if isinstance(value, Estimate):
        ci = value.ci
        return _cell(value.mean) + ("" if ci is None else f" [{_cell(ci[0])}, {_cell(ci[1])}]")
    if isinstance(value, float) and not math.isfinite(value):
        text = str(value)  # nan, inf: as Python prints them, which JSON lacks
    elif isinstance(value, str):
        text = value
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(_cell(v) for v in value)  # names (e.g. runs still missing): each as code
    else:
        text = json.dumps(value)
    text = text.replace("|", "\\|")
    return f"`{text}`" if code or isinstance(value, str) else text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _columns(group: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Every figure any result of a group has, in the order they first appear."""
    return list(dict.fromkeys(c for flat in group.values() for c in flat))


def _alike(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two results belong in one table when they share at least half the figures of the smaller."""
    return 2 * len(a.keys() & b.keys()) >= min(len(a), len(b))


def _rows_table(label: str, group: Mapping[str, Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A row per result, a column per figure (a figure a result lacks is an empty cell)."""
    return _table([label, *(_cell(c, code=True) for c in columns)],
                  [[_cell(name, code=True), *(_cell(flat[c]) if c in flat else "" for c in columns)]
                   for name, flat in group.items()])


def _group_tables(prefix: str, label: str, group: Mapping[str, Mapping[str, Any]],
                  originals: Mapping[str, Mapping[str, Any]], tables: list[str], rest: dict[str, Any]) -> None:
    """Tables for like results (``group``: name -> its figures as leaves; ``originals``: name -> as recorded).

    In order of preference: a row per result when their figures fit in MAX_COLUMNS; a table per result when each
    is made only of nested results (e.g. per stream, a row per learner); the results' biggest nested mappings
    (e.g. a family of members per cell) each in a table of their own until the rest fit; else a column per result.
    """
    columns = _columns(group)
    if len(columns) <= MAX_COLUMNS:
        tables.append(_rows_table(label, group, columns))
        return
    if originals and all(isinstance(v, Mapping) and v and not _is_estimate(v)
                         for o in originals.values() for v in o.values()):
        for name, original in originals.items():
            _tables(original, f"{prefix}{name}.", tables, rest)
        return
    heads: dict[str, list[str]] = {}
    for c in columns:
        head, dot, _ = c.partition(".")
        heads.setdefault(head, []).append(c if dot else "")
    nested = sorted((h for h, cs in heads.items() if len(cs) >= 2 and "" not in cs), key=lambda h: -len(heads[h]))
    apart: list[str] = []
    left = len(columns)
    for head in nested:
        if left <= MAX_COLUMNS:
            break
        apart.append(head)
        left -= len(heads[head])
    if apart and 0 < left <= MAX_COLUMNS:
        tables.append(_rows_table(label, group, [c for c in columns if c.partition(".")[0] not in apart]))
        for head in apart:
            sub = {name: {c[len(head) + 1:]: v for c, v in flat.items() if c.partition(".")[0] == head}
                   for name, flat in group.items()}
            sub_originals = {name: o[head] for name, o in originals.items() if isinstance(o.get(head), Mapping)}
            _group_tables(f"{prefix}*.{head}.", _cell(f"{prefix}*.{head}", code=True), sub, sub_originals,
                          tables, rest)
        return
    if len(group) <= MAX_RESULT_COLUMNS:
        tables.append(_table([label, *(_cell(name, code=True) for name in group)],
                             [[_cell(c, code=True), *(_cell(flat[c]) if c in flat else "" for flat in group.values())]
                              for c in columns]))
        return
    for name, flat in group.items():
        rest.update({f"{prefix}{name}.{c}": v for c, v in flat.items()})


def _tables(figures: Mapping[str, Any], prefix: str, tables: list[str], rest: dict[str, Any]) -> None:
    """Collect tables for like results (sibling mappings, two or more); every other figure goes to ``rest``.

    Both in the order the figures come in.
    """
    groups: dict[str, dict[str, dict[str, Any]]] = {}  # first member's key -> the group
    originals: dict[str, Mapping[str, Any]] = {}
    mine: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, Mapping) and value and not _is_estimate(value):
            flat = _leaves(value)
            originals[str(key)] = value
            for group in groups.values():
                if _alike(next(iter(group.values())), flat):
                    group[str(key)] = flat
                    break
            else:
                groups[str(key)] = {str(key): flat}
        else:
            mine[str(key)] = value
    leaves = _leaves(mine)  # a figure's interval joins it, at the figure's place
    label = _cell(prefix.rstrip("."), code=True) if prefix else ""
    for key in map(str, figures):
        if key in mine:
            rest.update({f"{prefix}{k}": v for k, v in leaves.items() if k == key or k.startswith(key + ".")})
        elif key in groups and len(groups[key]) == 1:
            _tables(originals[key], f"{prefix}{key}.", tables, rest)
        elif key in groups:
            _group_tables(prefix, label, groups[key], {name: originals[name] for name in groups[key]}, tables, rest)


def render_markdown(doc: Mapping[str, Any]) -> str:
    """A record as Markdown: one provenance line (command, date, commit, machine), then its figures as tables.

    Like results side by side (e.g. a row per cell of a sweep, a table per stream with a row per learner, or a
    column per cell when each has many figures); a mean and its interval in one cell; every other figure as a
    ``figure | value`` row, nested keys dotted. A record with a ``source`` (figures quoted from an older text,
    not written by ``--record``) says so.
    """
    rec = doc.get("recorded", {})
    machine = rec.get("machine", {})
    when = str(rec.get("date", "an unknown date")).replace("T", " ").replace("+00:00", " UTC")
    if rec.get("commit"):
        at = f"commit `{rec['commit']}`" + (" with uncommitted changes" if rec.get("dirty") else "")
    else:
        at = "no git checkout"
    if machine.get("note"):
        where = str(machine["note"])
    else:
        where = ", ".join(x for x in (machine.get("processor"),
                                      f"{machine['cores']} cores" if machine.get("cores") else None,
                                      machine.get("platform"),
                                      f"Python {machine['python']}" if machine.get("python") else None) if x)
    details = "; ".join(x for x in (where, f"threads={rec['threads']}" if "threads" in rec else "") if x)
    if rec.get("source"):
        line = (f"Quoted, not recorded: the figures of `{command(doc)}` as of {at} ({when}"
                f"{'; ' + details if details else ''}), {rec['source']}.")
    else:
        line = f"Measured by `{command(doc)}` on {when} ({at}{'; ' + details if details else ''})."
    tables: list[str] = []
    rest: dict[str, Any] = {}
    _tables(doc.get("figures", {}), "", tables, rest)
    if rest:
        tables.append(_table(["figure", "value"], [[_cell(k, code=True), _cell(v)] for k, v in rest.items()]))
    return "\n\n".join([line, *tables]) + "\n"
