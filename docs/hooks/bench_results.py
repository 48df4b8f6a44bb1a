"""mkdocs hook: each line ``<!-- bench: NAME -->`` of a page becomes the figures recorded in docs/results/NAME.json.

``python -m ekya.bench NAME --record`` writes that file (``BENCHMARK ARGS --record-as NAME`` for a run with other
arguments); ``ekya.bench.record.render_markdown`` turns it into a provenance line and tables. A marker whose file
is missing fails the build: no page shows figures by hand.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

from ekya.bench.record import RECORD_NAME, load, render_markdown

MARKER = re.compile(rf"^<!-- bench: ({RECORD_NAME.pattern}) -->[ \t]*$", re.MULTILINE)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Put each recorded benchmark's figures where its marker line is."""
    results = Path(config["docs_dir"]) / "results"

    def figures(match: re.Match[str]) -> str:
        try:
            # blank lines around: the tables must not run into a paragraph next to the marker
            return "\n" + render_markdown(load(results / f"{match[1]}.json")).rstrip("\n") + "\n"
        except FileNotFoundError as e:
            raise PluginError(f"{page.file.src_uri}: {match[0]} has no figures: {e}") from None

    return MARKER.sub(figures, markdown)
