"""Streams sit at the start of the flow: no module in ekya.streams imports ekya.prepare or ekya.labels."""

from __future__ import annotations

import ast
from pathlib import Path

import ekya.streams

STREAMS = Path(ekya.streams.__file__).parent
LATER = ("ekya.prepare", "ekya.labels")


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement in the file names, at any depth (lazy and TYPE_CHECKING imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_streams_module_imports_prepare_or_labels():
    files = sorted(STREAMS.glob("*.py"))
    assert len(files) > 5
    bad = {p.name: sorted(m for m in imported_modules(p) if m.startswith(LATER)) for p in files}
    assert not {k: v for k, v in bad.items() if v}


def test_the_scan_sees_lazy_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from ekya.labels.teachers import apply_teacher\n    import ekya.prepare.ingest\n")
    assert {"ekya.labels.teachers", "ekya.prepare.ingest"} <= imported_modules(f)
