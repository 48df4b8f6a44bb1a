"""``python -m ekya.bench``: the listing, the errors, ``--record`` and the docs' rendering of what it records."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import platform
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

import ekya.bench
from ekya.bench.__main__ import main, split_record
from ekya.bench.record import DEFAULT_FOLDER, load, record, render_markdown

ROOT = Path(__file__).resolve().parents[1]
HOOK = ROOT / "docs" / "hooks" / "bench_results.py"
#: a quick real run of the scheduler benchmark (a few milliseconds of planning)
QUICK = ["scheduler", "--streams", "3", "--accelerators", "1", "--repeats", "1"]


def benchmark_modules() -> dict[str, object]:
    """Every module of ekya.bench that the dispatcher can run (public, with a main), by its command name."""
    out = {}
    for m in pkgutil.iter_modules(ekya.bench.__path__):
        if not m.name.startswith("_"):
            module = importlib.import_module(f"ekya.bench.{m.name}")
            if callable(getattr(module, "main", None)):
                out[m.name.replace("_", "-")] = module
    return out


def test_help_lists_every_benchmark_with_what_it_measures_and_how_long(capsys):
    assert main(["--help"]) == 0
    raw = capsys.readouterr().out
    text = " ".join(raw.split())
    modules = benchmark_modules()
    assert {"scheduler", "robustness", "ingest", "simulate-scale"} <= set(modules)
    for name, module in modules.items():
        summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
        duration = getattr(module, "DURATION", "")
        assert summary and isinstance(duration, str) and duration, f"{name}: give it a docstring and DURATION"
        assert f"{name} {' '.join(summary.split())} time: {duration}" in text
    listed = [line.split()[0] for line in raw.splitlines() if line.startswith("  ") and not line.startswith("   ")]
    assert listed == sorted(modules)  # and nothing else: ekya.bench.record has no main, it is no benchmark


def test_a_benchmark_keeps_its_own_help(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["scheduler", "--help"])
    assert stop.value.code == 0
    assert "usage: python -m ekya.bench scheduler" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["nope"], ["nope", "--record"], []])
def test_an_unknown_or_missing_name_exits_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert len(out.err.strip().splitlines()) == 1
    if argv:
        assert "unknown benchmark 'nope'" in out.err and "scheduler" in out.err
    else:
        assert out.err.startswith("usage: python -m ekya.bench NAME") and "--help" in out.err


def test_record_writes_the_printed_figures_with_their_provenance(tmp_path, capsys):
    before = datetime.now(UTC).replace(microsecond=0)
    assert main([*QUICK, "--record", str(tmp_path / "res")]) == 0
    out = capsys.readouterr()
    printed = json.loads(out.out.strip().splitlines()[-1])  # the figures stay the last line
    doc = json.loads((tmp_path / "res" / "scheduler.json").read_text())
    assert doc["benchmark"] == "scheduler"
    assert doc["argv"] == QUICK[1:]  # --record is the dispatcher's, not the benchmark's
    assert doc["figures"] == printed and set(printed) == {"thief_seconds", "thief_acc", "fair_acc", "noretrain_acc"}
    rec = doc["recorded"]
    assert before <= datetime.fromisoformat(rec["date"]) <= datetime.now(UTC) + timedelta(seconds=1)
    assert datetime.fromisoformat(rec["date"]).utcoffset() == timedelta(0)
    assert rec["machine"]["cores"] == os.cpu_count()
    assert rec["machine"]["python"] == platform.python_version()
    assert rec["machine"]["platform"] == platform.platform() and "processor" in rec["machine"]
    if (ROOT / ".git").exists():
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        assert rec["commit"] == head.stdout.strip() and isinstance(rec["dirty"], bool)
    assert "threads" not in rec
    assert "recorded" in out.err and not list((tmp_path / "res").glob(".*.tmp"))


def test_record_defaults_to_docs_results_and_leaves_overrides_to_the_benchmark(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*QUICK, "--record"]) == 0
    assert load(tmp_path / DEFAULT_FOLDER / "scheduler.json")["argv"] == QUICK[1:]
    assert split_record(["threads=1", "--record", "--seeds", "2"]) == (["threads=1", "--seeds", "2"], DEFAULT_FOLDER,
                                                                          None)
    assert split_record(["--record", "out", "x=1"]) == (["x=1"], Path("out"), None)
    assert split_record(["--record", "x=1"]) == (["x=1"], DEFAULT_FOLDER, None)  # a Hydra override is no folder
    assert split_record(["--record=out"]) == ([], Path("out"), None)
    assert split_record(["--seeds", "2"]) == (["--seeds", "2"], None, None)
    assert main([*QUICK, "--record", "a", "--record", "b"]) == 2
    assert "--record given twice" in capsys.readouterr().err


def test_record_as_keeps_a_run_with_other_arguments_beside_the_default_record(tmp_path, monkeypatch, capsys):
    res = tmp_path / "res"
    assert main([*QUICK, "--record", str(res)]) == 0
    default = (res / "scheduler.json").read_text()
    variant = [*QUICK[:-1], "2"]  # --repeats 2
    assert main([*variant, "--record-as", "scheduler-r2", "--record", str(res)]) == 0
    doc = load(res / "scheduler-r2.json")
    assert doc["benchmark"] == "scheduler" and doc["argv"] == variant[1:]  # neither --record nor --record-as
    assert (res / "scheduler.json").read_text() == default
    assert "python -m ekya.bench scheduler --streams 3 --accelerators 1 --repeats 2`" in render_markdown(doc)
    # alone, --record-as records in the default folder
    monkeypatch.chdir(tmp_path)
    assert main([*QUICK, "--record-as=scheduler-3"]) == 0
    assert load(tmp_path / DEFAULT_FOLDER / "scheduler-3.json")["argv"] == QUICK[1:]
    assert split_record(["--record-as", "e2e-acc2", "--accelerators", "2"]) == (["--accelerators", "2"],
                                                                               DEFAULT_FOLDER, "e2e-acc2")
    assert split_record(["--record-as", "a", "--record", "out"]) == ([], Path("out"), "a")
    capsys.readouterr()


def test_record_will_not_replace_the_record_of_a_run_with_other_arguments(tmp_path, capsys):
    res = tmp_path / "res"
    record("scheduler", ["--repeats", "9"], {"thief_seconds": 1.0}, res)
    before = (res / "scheduler.json").read_text()
    assert main([*QUICK, "--record", str(res)]) == 2
    out = capsys.readouterr()
    assert out.out == ""  # refused before measuring: no figures printed
    assert "--record-as" in out.err and "scheduler --repeats 9" in out.err and len(out.err.strip().splitlines()) == 1
    assert (res / "scheduler.json").read_text() == before
    # naming the file replaces it; the same arguments refresh it
    assert main([*QUICK, "--record", str(res), "--record-as", "scheduler"]) == 0
    assert load(res / "scheduler.json")["argv"] == QUICK[1:]
    assert main([*QUICK, "--record", str(res)]) == 0


@pytest.mark.parametrize(("args", "error"), [
    (["--record-as"], "--record-as needs a NAME"),
    (["--record-as", "--repeats", "1"], "--record-as needs a NAME"),
    (["--record-as="], "--record-as= needs a value"),
    (["--record-as", "../up"], "letters, digits"),
    (["--record-as", "a", "--record-as", "b"], "--record-as given twice"),
])
def test_record_as_needs_one_plain_name(args, error, capsys):
    assert main(["scheduler", *args]) == 2
    assert error in capsys.readouterr().err


def test_record_notes_the_threads_the_run_used(tmp_path):
    assert load(record("x", ["threads=1"], {"a": 1}, tmp_path))["recorded"]["threads"] == 1
    assert load(record("y", ["--threads", "3"], {"a": 1}, tmp_path))["recorded"]["threads"] == 3
    assert load(record("z", [], {"threads": 2}, tmp_path))["recorded"]["threads"] == 2


def _doc(figures: dict) -> dict:
    return {"benchmark": "optimality", "argv": ["--sizes", "small,e2e"], "figures": figures,
            "recorded": {"date": "2026-01-02T03:04:05+00:00", "commit": "abc1234", "dirty": True,
                         "machine": {"platform": "Linux-x86_64", "processor": "Some CPU", "cores": 2,
                                     "python": "3.11.7"}, "threads": 1}}


def test_render_markdown_gives_the_provenance_and_a_table_with_every_figure():
    figures = {"small": {"median_ratio": 1.0, "min_ratio": 0.994, "instances": 60},
               "e2e": {"median_ratio": 0.998, "min_ratio": 0.9953, "instances": 200},
               "rule": "sweep", "timing": {"plan": {"seconds": 0.25}}, "ci": [0.1, 0.2], "missing": None}
    md = render_markdown(_doc(figures))
    first = md.splitlines()[0]
    for part in ("`python -m ekya.bench optimality --sizes small,e2e`", "2026-01-02 03:04:05 UTC", "abc1234",
                 "uncommitted", "Some CPU", "2 cores", "Python 3.11.7", "threads=1"):
        assert part in first
    rows = [line for line in md.splitlines() if line.startswith("|")]
    # like results side by side: a row per cell, a column per figure
    assert "| | `median_ratio` | `min_ratio` | `instances` |" in [" ".join(r.split()) for r in rows]
    assert "| `small` | 1.0 | 0.994 | 60 |" in rows and "| `e2e` | 0.998 | 0.9953 | 200 |" in rows
    # the rest as figure | value, nested keys dotted
    for row in ("| `rule` | `sweep` |", "| `timing.plan.seconds` | 0.25 |", "| `ci` | [0.1, 0.2] |",
                "| `missing` | null |"):
        assert row in rows


def test_render_markdown_turns_many_figures_per_cell_into_a_column_per_cell():
    cells = {c: {f"m{i}": i + k for i in range(10)} for k, c in enumerate(("a", "b", "c"))}
    rows = [line for line in render_markdown(_doc({"cells": cells})).splitlines() if line.startswith("|")]
    assert rows[0] == "| `cells` | `a` | `b` | `c` |"
    assert len(rows) == 2 + 10 and "| `m9` | 9 | 10 | 11 |" in rows


def test_render_markdown_says_when_figures_were_quoted_rather_than_recorded():
    doc = _doc({"a": 1})
    doc["recorded"] = {"date": "2026-12-01T11:46:59+00:00", "commit": "8c87cc4", "dirty": None,
                       "machine": {"note": "a 2-core machine, as the README said"},
                       "source": "quoted in README.md before results were recorded"}
    first = render_markdown(doc).splitlines()[0]
    assert first.startswith("Quoted, not recorded:") and "8c87cc4" in first and "2026-12-01 11:46:59 UTC" in first
    assert "a 2-core machine, as the README said" in first and "quoted in README.md before" in first
    assert "None" not in first and "cores" not in first
    assert render_markdown(_doc({"a": 1})).startswith("Measured by ")


def _rows(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("|")]


def test_render_markdown_shows_a_mean_and_its_interval_in_one_cell():
    figures = {"thief": {"mean": 0.7372, "ci": [0.7196, 0.7549]}, "fair": {"mean": 0.8458, "ci": None},
               "best": {"member": "u1", "mean": 0.773, "ci": [0.75, 0.79]},
               "margin_points": -3.58, "margin_ci_points": [-5.06, -2.1], "gain": 1.5, "gain_ci": None}
    rows = _rows(render_markdown(_doc(figures)))
    for row in ("| `thief` | 0.7372 [0.7196, 0.7549] |", "| `fair` | 0.8458 |", "| `best` | 0.773 [0.75, 0.79] |",
                "| `best.member` | `u1` |", "| `margin_points` | -3.58 [-5.06, -2.1] |", "| `gain` | 1.5 |"):
        assert row in rows
    assert not any("_ci" in r for r in rows)


def test_render_markdown_gives_a_row_per_cell_and_each_cells_family_its_own_table():
    def cell(seeds, thief, margin, ci):
        members = {f"uniform[c{i},0.5]": {"mean": round(thief + i / 100, 4), "ci": ci} for i in range(6)}
        return {"seeds": seeds, "thief": {"mean": thief, "ci": ci}, "fair": {"mean": 0.6, "ci": ci},
                "noretrain": {"mean": 0.7, "ci": ci}, "uniform": members,
                "best_uniform": {"member": "uniform[c5,0.5]", "mean": round(thief + 0.05, 4), "ci": ci},
                "best_baseline": "uniform[c5,0.5]", "thief_margin_points": margin, "thief_margin_ci_points": ci}
    figures = {"cells": {"default": cell(3, 0.7372, -3.58, [0.1, 0.2]), "acc2": cell(1, 0.8777, -1.35, None)},
               "seconds": 3423.2}
    rows = _rows(render_markdown(_doc(figures)))
    assert rows[0] == ("| `cells` | `seeds` | `thief` | `fair` | `noretrain` | `best_uniform` | `best_uniform.member` "
                       "| `best_baseline` | `thief_margin_points` |")
    assert rows[2] == ("| `default` | 3 | 0.7372 [0.1, 0.2] | 0.6 [0.1, 0.2] | 0.7 [0.1, 0.2] | 0.7872 [0.1, 0.2] "
                       "| `uniform[c5,0.5]` | `uniform[c5,0.5]` | -3.58 [0.1, 0.2] |")
    assert rows[3] == "| `acc2` | 1 | 0.8777 | 0.6 | 0.7 | 0.9277 | `uniform[c5,0.5]` | `uniform[c5,0.5]` | -1.35 |"
    family = rows.index("| `cells.*.uniform` | " + " | ".join(f"`uniform[c{i},0.5]`" for i in range(6)) + " |")
    assert rows[family + 2].startswith("| `default` | 0.7372 [0.1, 0.2] | 0.7472 [0.1, 0.2] |")
    assert rows[family + 3].startswith("| `acc2` | 0.8777 | 0.8877 |")
    assert rows[-1] == "| `seconds` | 3423.2 |"


def test_render_markdown_gives_a_table_per_stream_with_a_row_per_learner():
    def stream(base):
        learners = {name: {"accuracy": {"mean": round(base + k / 10, 2), "ci": [0.0, 1.0]},
                           "bwt": {"mean": 0.01, "ci": None}}
                    for k, name in enumerate(("finetune", "replay", "icarl"))}
        learners["cache"] = {"accuracy": {"mean": base, "ci": None}, "upper_bound": {"mean": 0.9, "ci": None},
                             "bwt": {"mean": 0.02, "ci": None}}
        return learners
    figures = {"default": stream(0.5), "recurring": stream(0.4),
               "throughput": {n: {"samples_per_second": {"full": 300.0 + k}, "ratio": {"full": 1.0}}
                              for k, n in enumerate(("finetune", "replay"))},
               "targets": {"forgets_less": False}, "seeds": 3}
    md = render_markdown(_doc(figures))
    rows = _rows(md)
    for name, base in (("default", 0.5), ("recurring", 0.4)):
        at = rows.index(f"| `{name}` | `accuracy` | `bwt` | `upper_bound` |")
        assert rows[at + 2] == f"| `finetune` | {base} [0.0, 1.0] | 0.01 |  |"
        assert rows[at + 5] == f"| `cache` | {base} | 0.02 | 0.9 |"
    at = rows.index("| `throughput` | `samples_per_second.full` | `ratio.full` |")
    assert rows[at + 2:at + 4] == ["| `finetune` | 300.0 | 1.0 |", "| `replay` | 301.0 | 1.0 |"]
    assert "| `targets.forgets_less` | false |" in rows and "| `seeds` | 3 |" in rows


def _leaf_texts(value, key=""):
    """How render_markdown writes each figure of a record (an absent interval shows as nothing)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaf_texts(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _leaf_texts(v, key)
    elif value is None and (key == "ci" or "_ci" in key):
        return
    elif isinstance(value, str):
        yield f"`{value}`"
    elif isinstance(value, float) and value != value:
        yield "nan"
    else:
        yield json.dumps(value)


def test_every_published_record_renders_every_figure_and_every_marker_has_one():
    results = ROOT / "docs" / "results"
    docs = sorted(results.glob("*.json"))
    assert docs
    for path in docs:
        doc = load(path)
        md = render_markdown(doc)
        cells = {c.strip() for line in md.splitlines() if line.startswith("|")
                 for c in line.strip().strip("|").split(" | ")}
        numbers = {t for c in cells if not c.startswith("`") for t in re.split(r"[\s\[\],|]+", c)}
        for leaf in _leaf_texts(doc["figures"]):
            # a list of names shares one cell, each name in code
            assert leaf in numbers if not leaf.startswith("`") else any(leaf in c for c in cells), (path.name, leaf)
        assert md.startswith("Quoted, not recorded:" if doc["recorded"].get("source") else "Measured by "), path.name
    hook = _hook()
    pages = [p for p in (ROOT / "docs").rglob("*.md")]
    markers = {m[1] for p in pages for m in hook.MARKER.finditer(p.read_text())}
    assert {"robustness", "e2e-acc2", "learners"} <= markers
    assert markers <= {p.stem for p in docs}  # mkdocs build --strict would fail on a missing one


def _hook():
    pytest.importorskip("mkdocs")  # the hook runs inside mkdocs (the docs extra)
    spec = importlib.util.spec_from_file_location("bench_results_hook", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_hook_puts_the_tables_where_the_marker_is(tmp_path):
    hook = _hook()
    record("scheduler", ["--repeats", "1"], {"thief_seconds": 0.0123, "thief_acc": 0.84}, tmp_path / "results")
    page = SimpleNamespace(file=SimpleNamespace(src_uri="results/benchmarks.md"))
    md = hook.on_page_markdown("# B\n\n<!-- bench: scheduler -->\n\nafter\n", page, {"docs_dir": str(tmp_path)}, None)
    assert "<!-- bench:" not in md and "| `thief_seconds` | 0.0123 |" in md
    assert "`python -m ekya.bench scheduler --repeats 1`" in md and md.endswith("\nafter\n")


def test_the_docs_hook_shows_a_variant_under_its_own_name(tmp_path):
    hook = _hook()
    record("e2e", ["--accelerators", "2"], {"seeds": 3, "accelerators": 2}, tmp_path / "results", "e2e-acc2")
    record("e2e", [], {"seeds": 3, "accelerators": 1}, tmp_path / "results")
    page = SimpleNamespace(file=SimpleNamespace(src_uri="results/end-to-end.md"))
    md = hook.on_page_markdown("<!-- bench: e2e -->\n\n<!-- bench: e2e-acc2 -->\n", page,
                               {"docs_dir": str(tmp_path)}, None)
    first, second = md.split("`python -m ekya.bench e2e")[1:]
    assert "| `accelerators` | 1 |" in first and first.startswith("`")
    assert second.startswith(" --accelerators 2`") and "| `accelerators` | 2 |" in second


def test_the_docs_hook_fails_the_build_when_figures_were_never_recorded(tmp_path):
    hook = _hook()
    from mkdocs.exceptions import PluginError

    page = SimpleNamespace(file=SimpleNamespace(src_uri="results/benchmarks.md"))
    with pytest.raises(PluginError, match=r"nothere.*python -m ekya.bench nothere --record"):
        hook.on_page_markdown("<!-- bench: nothere -->\n", page, {"docs_dir": str(tmp_path)}, None)


def test_a_record_is_dirty_only_when_what_runs_has_uncommitted_changes(tmp_path):
    # docs edited while a benchmark runs change no figure; the package's own code does
    import subprocess

    from ekya.bench.record import git_state

    package = tmp_path / "src" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("a\n")

    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "start")
    assert git_state(package)[1] is False
    (tmp_path / "docs" / "page.md").write_text("b\n")
    (tmp_path / "notes.txt").write_text("untracked scratch\n")
    assert git_state(package)[1] is False
    (package / "__init__.py").write_text("x = 1\n")
    assert git_state(package)[1] is True
