"""mkdocs hook: the configuration reference, generated from src/ekya/conf's YAML files, in place of its marker.

docs/configuration.md holds the line ``<!-- config-reference -->``; at build time it becomes one section per
group and a table per file (key, default, the YAML comment), written by ``ekya.conf.reference``.
"""

from __future__ import annotations

from typing import Any

from mkdocs.exceptions import PluginError

from ekya.conf.reference import reference

MARKER = "<!-- config-reference -->"
PAGE = "configuration.md"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Put the generated reference where the marker line is; a configuration page without it fails the build."""
    if MARKER not in markdown:
        if page.file.src_uri == PAGE:
            raise PluginError(f"docs/{PAGE} lost its line {MARKER}: the configuration reference has nowhere to go")
        return markdown
    return markdown.replace(MARKER, reference(level=3))
