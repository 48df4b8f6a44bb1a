"""Dispatch ``python -m ekya.bench NAME [ARGS] [--record [DIR]] [--record-as RECORD]`` to ``ekya.bench.<name>.main``."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import pkgutil
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ekya.process import set_env_policies

set_env_policies()  # before any benchmark loads torch

import ekya.bench  # noqa: E402
from ekya.bench.record import DEFAULT_FOLDER, RECORD_NAME, command, record  # noqa: E402

USAGE = "usage: python -m ekya.bench NAME [ARGS] [--record [DIR]] [--record-as RECORD]"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark as its module describes itself: what it measures and about how long it takes on 2 cores."""

    name: str
    summary: str
    duration: str


def _describe(path: Path, name: str) -> Benchmark | None:
    """A module's benchmark description, read from its source (importing every benchmark would load torch)."""
    tree = ast.parse(path.read_text(), str(path))
    if not any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
        return None  # a helper module (ekya.bench.record), not a benchmark
    doc = (ast.get_docstring(tree) or "").strip()
    duration = ""
    for node in tree.body:
        if (isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant)
                and any(isinstance(t, ast.Name) and t.id == "DURATION"
                        for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))):
            duration = str(node.value.value)
    return Benchmark(name, doc.splitlines()[0] if doc else "", duration)


@lru_cache(maxsize=1)
def benchmarks() -> tuple[Benchmark, ...]:
    """Every benchmark this package ships: its public modules with a ``main`` (names with '_' shown as '-')."""
    found = []
    for m in pkgutil.iter_modules(ekya.bench.__path__):
        if m.name.startswith("_"):
            continue
        spec = importlib.util.find_spec(f"ekya.bench.{m.name}")
        described = _describe(Path(spec.origin), m.name.replace("_", "-")) if spec and spec.origin else None
        if described:
            found.append(described)
    return tuple(sorted(found, key=lambda b: b.name))


def available() -> list[str]:
    """Names of the benchmarks this package ships."""
    return [b.name for b in benchmarks()]


def help_text(width: int = 100) -> str:
    """``python -m ekya.bench --help``: usage, --record, and each benchmark with what it measures and how long."""
    lines = [USAGE, "",
             "Runs one benchmark; its figures are one JSON object, the last line on stdout.",
             "--record [DIR] also writes them, with the command, date, commit and machine, to DIR/NAME.json",
             f"(default DIR: {DEFAULT_FOLDER.as_posix()}); the docs show that file where a page says",
             "<!-- bench: NAME -->. It will not replace a record of the benchmark run with other arguments:",
             "--record-as RECORD writes DIR/RECORD.json instead (e.g. e2e --accelerators 2 --record-as e2e-acc2),",
             "shown where a page says <!-- bench: RECORD -->; it replaces that file whatever it holds.",
             "python -m ekya.bench NAME --help shows a benchmark's own options.", "",
             "benchmarks (time on a 2-core CPU with the default arguments):"]
    pad = max(len(b.name) for b in benchmarks()) + 4
    for b in benchmarks():
        lines += textwrap.wrap(b.summary or "(no description)", width, initial_indent=f"  {b.name:<{pad - 2}}",
                               subsequent_indent=" " * pad)
        lines += textwrap.wrap(f"time: {b.duration or 'not stated'}", width, initial_indent=" " * pad,
                               subsequent_indent=" " * (pad + 6))
    return "\n".join(lines)


def _option(args: list[str], i: int, option: str, takes: Callable[[str], bool]) -> tuple[str | None, int]:
    """The value of ``option`` at ``args[i]`` (``--opt=V``, or ``--opt V`` where ``takes(V)``), and the next index."""
    arg = args[i]
    if arg.startswith(option + "="):
        value = arg.partition("=")[2]
        if not value:
            raise ValueError(f"{option}= needs a value")
        return value, i + 1
    if i + 1 < len(args) and takes(args[i + 1]):
        return args[i + 1], i + 2
    return None, i + 1


def split_record(args: list[str]) -> tuple[list[str], Path | None, str | None]:
    """The benchmark's own arguments, the folder to record in (None: no recording) and the record's name.

    ``--record DIR`` takes the next argument as DIR unless it is an option or a Hydra override (has '=').
    ``--record-as NAME`` records as DIR/NAME.json (DIR: the default folder unless ``--record`` names one), so a
    run with other arguments keeps its own file next to the default run's.
    """
    rest: list[str] = []
    folder: Path | None = None
    name: str | None = None
    record_given = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--record" or arg.startswith("--record="):
            if record_given:
                raise ValueError("--record given twice")
            value, i = _option(args, i, "--record", lambda a: not a.startswith("-") and "=" not in a)
            folder = Path(value) if value is not None else None
            record_given = True
        elif arg == "--record-as" or arg.startswith("--record-as="):
            if name is not None:
                raise ValueError("--record-as given twice")
            name, i = _option(args, i, "--record-as", lambda a: not a.startswith("-"))
            if name is None:
                raise ValueError("--record-as needs a NAME")
            if not RECORD_NAME.fullmatch(name):
                raise ValueError(f"--record-as {name!r}: a record's name is letters, digits, '-' and '_' "
                                 "(it is the docs' <!-- bench: NAME --> marker)")
        else:
            rest.append(arg)
            i += 1
    if not record_given and name is None:
        return rest, None, None
    return rest, folder or DEFAULT_FOLDER, name


def check_overwrite(path: Path, name: str, args: list[str]) -> None:
    """Refuse to let ``--record`` replace a record of the same benchmark run with other arguments.

    The docs show ``NAME.json`` as the default run's figures; a variant (``e2e --accelerators 2``) needs its own
    file (``--record-as e2e-acc2``). Naming the file with ``--record-as`` replaces whatever it holds.
    """
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return  # not a record: replacing it loses no figures
    if old.get("benchmark") == name and list(map(str, old.get("argv", []))) == args:
        return
    raise ValueError(f"{path} holds the figures of `{command(old)}`, not of this run: give this run its own "
                     f"record with --record-as NAME (shown where a page says <!-- bench: NAME -->), or replace "
                     f"that one with --record-as {path.stem}")


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark and print its JSON figures as the last line (and record them with --record)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(help_text())
        return 0
    if not argv or argv[0].startswith("-"):
        print(f"{USAGE}  (python -m ekya.bench --help lists the benchmarks)", file=sys.stderr)
        return 2
    name = argv[0]
    if name not in available():
        print(f"ekya.bench: error: unknown benchmark {name!r}; choose one of: {', '.join(available())}",
              file=sys.stderr)
        return 2
    try:
        args, folder, record_as = split_record(argv[1:])
        if folder is not None:  # fail now, not after an hour of measuring
            folder.mkdir(parents=True, exist_ok=True)
            if record_as is None:
                check_overwrite(folder / f"{name}.json", name, args)
    except (ValueError, OSError) as e:
        print(f"ekya.bench: error: {e}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"ekya.bench.{name.replace('-', '_')}")
    figures = module.main(args)
    line = json.dumps(figures)
    print(line, flush=True)
    if folder is not None:
        path = record(name, args, figures, folder, record_as)
        print(f"ekya.bench: recorded {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
