"""The README's code blocks, for tests that run its examples exactly as written."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def readme_block(marker: str) -> str:
    """The README's fenced block that starts with the comment line ``marker``."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"```\w*\n(" + re.escape(marker) + r"\n.*?)```", text, re.S)
    assert found, f"README has no block starting with {marker!r}"
    return found.group(1)
