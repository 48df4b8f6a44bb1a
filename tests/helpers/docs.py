"""The documentation's code blocks, for tests that run its examples exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def doc_block(page: str, marker: str) -> str:
    """The fenced block of ``docs/<page>`` that starts with the comment line ``marker``."""
    text = (DOCS / page).read_text()
    found = re.search(r"```\w*\n(" + re.escape(marker) + r"\n.*?)```", text, re.S)
    assert found, f"docs/{page} has no block starting with {marker!r}"
    return found.group(1)
