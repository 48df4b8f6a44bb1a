"""The studies table of docs/reproducing.md, written from the drawn studies (no number in it is typed by hand).

``python -m ekya.analysis all --out docs/figures --docs docs/reproducing.md`` replaces what lies between
the markers below with one row per drawn study: what of the paper it reproduces, its sweep command, its
cells and their run time (from MLflow), our headline figure next to the paper's, and its figure, linked
relative to the page's folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from ekya.analysis.figures import Drawn
from ekya.analysis.studies import study
from ekya.analysis.table import RunTable
from ekya.atomic import atomic_write
from ekya.errors import EkyaError

START = ("<!-- studies:start (written by python -m ekya.analysis STUDY ... --docs docs/reproducing.md; "
         "do not edit by hand) -->")
END = "<!-- studies:end -->"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def studies_table(done: list[tuple[RunTable, list[Drawn]]], page: Path) -> str:
    """The Markdown table of the drawn studies, figures linked relative to the page's folder."""
    lines = ["| study | paper | command | cells | cell time | ours, beside the paper's | figure |",
             "|---|---|---|---|---|---|---|"]
    for table, drawn in done:
        for d in drawn:
            s = study(d.png.stem)
            link = Path(os.path.relpath(d.png.resolve(), page.resolve().parent)).as_posix()
            command = f"`python -m ekya -m experiment={s.sweep}`<br>`python -m ekya.analysis {s.name}`"
            headline = (d.headline or s.description).replace("|", "\\|")
            lines.append(f"| `{s.name}` | {s.reproduces or '(none)'} | {command} | {len(table.runs)} | "
                         f"{_minutes(table.runs['seconds'].sum())} | {headline} | [png]({link}) |")
    return "\n".join(lines)


def write_block(page: Path, done: list[tuple[RunTable, list[Drawn]]]) -> None:
    """Replace the page's block between START and END with the studies table (an EkyaError without markers)."""
    text = page.read_text() if page.exists() else ""
    if START not in text or END not in text:
        raise EkyaError(f"--docs {page}: no block to write; put the two lines\n{START}\n{END}\ninto it first")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    atomic_write(page, head + START + "\n" + studies_table(done, page) + "\n" + END + tail)
