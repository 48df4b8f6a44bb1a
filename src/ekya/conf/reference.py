"""The configuration reference, generated from the YAML files under ``src/ekya/conf`` and their comments.

Every key of ``config.yaml``, ``prepare.yaml`` and each group file, written as the dotted path a command
line overrides, with its default value and its comment: the ``#`` lines directly above it plus a comment
at the end of its line. A file's opening comment block describes the file. The reference is read from
the files themselves, so it cannot drift from them; ``docs/hooks/config_reference.py`` puts it into
``docs/configuration.md`` when the site is built. No torch here: only PyYAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONF_DIR = Path(__file__).resolve().parent
# the primary configs: the main app's and `python -m ekya.prepare`'s; every other YAML belongs to a group
PRIMARY = {"config.yaml": "python -m ekya", "prepare.yaml": "python -m ekya.prepare"}
_PACKAGE = re.compile(r"#\s*@package\s+(\S+)")


@dataclass(frozen=True)
class Entry:
    """One key of a YAML file: its override path, its default as YAML text and its comment."""

    key: str
    default: str
    comment: str
    items: tuple[str, ...] = ()  # a list of mappings (e.g. a configspace's configs), one item each


@dataclass(frozen=True)
class ConfFile:
    """One YAML file: where it lives, what selects it, its opening comment and its keys."""

    path: str  # relative to the conf folder, e.g. "scheduler/thief.yaml"
    group: str  # "" for a primary config, else e.g. "scheduler" or "experiment"
    option: str  # what group=OPTION names, e.g. "thief" or "paper/streams"
    description: str
    entries: list[Entry] = field(default_factory=list)
    groups: list[Entry] = field(default_factory=list)  # a primary config's defaults list: group, option, comment


def _comment_text(line: str) -> str:
    """A comment line's text, without its ``#``."""
    return line.strip()[1:].strip()


def _is_comment(line: str) -> bool:
    """Whether a line holds only a comment."""
    return line.strip().startswith("#")


def _leading_block(lines: list[str]) -> tuple[list[str], int]:
    """The file's opening comment lines (package directives left out) and the index of the line after them."""
    block, i = [], 0
    while i < len(lines) and _is_comment(lines[i]):
        if not _PACKAGE.match(lines[i].strip()):
            block.append(_comment_text(lines[i]))
        i += 1
    return block, i


def _above(lines: list[str], line: int, floor: int) -> list[str]:
    """The comment lines directly above ``line`` (0-based), none of them above ``floor``."""
    out: list[str] = []
    i = line - 1
    while i >= floor and _is_comment(lines[i]):
        out.append(_comment_text(lines[i]))
        i -= 1
    return out[::-1]


def _last_line(node: yaml.Node) -> int:
    """The last line (0-based) a value's own text is on (a block collection ends with its last item)."""
    if isinstance(node, yaml.ScalarNode) or node.flow_style or not node.value:
        return node.end_mark.line
    last = node.value[-1]
    return _last_line(last[1] if isinstance(last, tuple) else last)


def _trailing(lines: list[str], node: yaml.Node) -> str:
    """The comment at the end of the line where a scalar or flow value ends (``key: 5  # why``)."""
    if not (isinstance(node, yaml.ScalarNode) or node.flow_style) or node.end_mark.line >= len(lines):
        return ""
    rest = lines[node.end_mark.line][node.end_mark.column:].strip()
    return rest[1:].strip() if rest.startswith("#") else ""


def _inner(lines: list[str], node: yaml.Node, first: int) -> list[str]:
    """Comment lines inside a block collection: from line ``first`` (after its key) to its last item's line."""
    return [_comment_text(lines[i]) for i in range(first, _last_line(node) + 1) if _is_comment(lines[i])]


def _text(text: str, node: yaml.Node) -> str:
    """A value as one line of YAML: a scalar or flow collection as written, a block collection in flow style."""
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        return node.value
    if isinstance(node, yaml.ScalarNode) or node.flow_style:
        return " ".join(text[node.start_mark.index:node.end_mark.index].split())
    value = yaml.SafeLoader("").construct_object(node, deep=True)
    return yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()


def _items(text: str, node: yaml.Node) -> tuple[str, ...]:
    """The items of a block list of collections, each as one line of YAML (empty for anything else)."""
    if not isinstance(node, yaml.SequenceNode) or node.flow_style or not node.value:
        return ()
    if not all(isinstance(item, (yaml.MappingNode, yaml.SequenceNode)) for item in node.value):
        return ()
    return tuple(_text(text, item) for item in node.value)


def _walk(text: str, lines: list[str], node: yaml.MappingNode, prefix: str, floor: int,
          top: bool = True) -> list[Entry]:
    """The entries of a mapping's keys, nested mappings flattened into dotted paths."""
    entries = []
    for key_node, value in node.value:
        # a group file's own defaults list composes configs: it is no key under the group's package
        key = "defaults" if top and key_node.value == "defaults" else f"{prefix}{key_node.value}"
        above = _above(lines, key_node.start_mark.line, floor)
        if isinstance(value, yaml.MappingNode) and value.value:
            if above:  # a commented section: its comment, then its keys
                entries.append(Entry(key, "", " ".join(above)))
            entries.extend(_walk(text, lines, value, key + ".", floor, top=False))
            continue
        notes = above + ([t] if (t := _trailing(lines, value)) else [])
        if isinstance(value, yaml.SequenceNode) and not value.flow_style:
            notes += _inner(lines, value, key_node.start_mark.line + 1)
        items = _items(text, value) if key != "defaults" else ()
        entries.append(Entry(key, _text(text, value), " ".join(notes), items))
    return entries


def read_file(path: Path, conf_dir: Path = CONF_DIR) -> ConfFile:
    """Parse one YAML file of the conf folder into its description and entries."""
    rel = path.relative_to(conf_dir).as_posix()
    text = path.read_text()
    lines = text.splitlines()
    leading, floor = _leading_block(lines)
    directive = next((m.group(1) for raw in lines[:floor] if (m := _PACKAGE.match(raw.strip()))), None)
    # group/a.yaml is group=a; experiment/paper/b.yaml is experiment=paper/b; config.yaml is a primary config
    top, _, option = rel.removesuffix(".yaml").partition("/") if "/" in rel else ("", "", rel)
    package = directive if directive is not None else top
    prefix = "" if package in ("", "_global_") else package + "."
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    entries: list[Entry] = []
    groups: list[Entry] = []
    if isinstance(root, yaml.MappingNode):
        body = root
        if not top:  # a primary config: its defaults list is the groups it composes
            kept = []
            for key_node, value in root.value:
                if key_node.value == "defaults" and isinstance(value, yaml.SequenceNode):
                    groups = _defaults(lines, value, floor)
                else:
                    kept.append((key_node, value))
            body = yaml.MappingNode(root.tag, kept)
        entries = _walk(text, lines, body, prefix, floor)
    return ConfFile(rel, top, option, " ".join(leading), entries, groups)


def _defaults(lines: list[str], node: yaml.SequenceNode, floor: int) -> list[Entry]:
    """A primary config's defaults list: one entry per item (group, default option, the comment above it)."""
    out = []
    for item in node.value:
        if isinstance(item, yaml.MappingNode) and item.value:
            k, v = item.value[0]
            name, default = k.value, v.value if isinstance(v, yaml.ScalarNode) else ""
        else:
            name, default = item.value, ""
        if name == "_self_" or name.startswith("override "):  # composition order and Hydra's own settings
            continue
        name = name.removeprefix("optional ")  # a group that may have no file for the choice
        out.append(Entry(name, default or "null", " ".join(_above(lines, item.start_mark.line, floor))))
    return out


def read_conf(conf_dir: Path = CONF_DIR) -> list[ConfFile]:
    """Every YAML file of the conf folder: the primary configs, the other top-level files, then the groups' files."""
    order = list(PRIMARY)

    def rank(p: Path) -> tuple[int, int, str]:
        rel = p.relative_to(conf_dir).as_posix()
        return ("/" in rel, order.index(rel) if rel in order else len(order), rel)

    return [read_file(p, conf_dir) for p in sorted(conf_dir.rglob("*.yaml"), key=rank)]


def _md(text: str) -> str:
    """Comment text for a Markdown table cell: code spans kept, Markdown and HTML characters escaped elsewhere."""
    parts = re.split(r"(`[^`]*`)", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
            continue
        part = part.replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out.append(re.sub(r"([*_\[\]|])", r"\\\1", part))
    return "".join(out)


def _code(value: str) -> str:
    """A default in a table cell: a code span, or for a block of text its length (the file has it)."""
    if not value:
        return ""
    if "\n" in value.strip():
        return f"a text of {len(value.strip().splitlines())} lines"
    return f"`` {value} ``" if "`" in value else f"`{value}`"


def _table(entries: list[Entry]) -> list[str]:
    """One file's keys as a Markdown table (key, default, comment)."""
    if not entries:
        return ["No keys of its own."]
    rows = ["| key | default | what it means |", "|---|---|---|"]
    for e in entries:
        default = "<br>".join(_code(i) for i in e.items) if e.items else _code(e.default)
        rows.append(f"| `{e.key}` | {default} | {_md(e.comment)} |")
    return rows


def reference(conf_dir: Path = CONF_DIR, level: int = 2) -> str:
    """The configuration reference as Markdown: one section per primary config and per group, a table per file."""
    h = "#" * level
    files = read_conf(conf_dir)
    main = next((f for f in files if f.path == "config.yaml"), None)
    group_comment = {g.key: g for g in main.groups} if main else {}
    out: list[str] = []
    for f in files:
        if f.group:
            continue
        title = f"`{PRIMARY[f.path]}` (`{f.path}`)" if f.path in PRIMARY else f"`{f.path}` (included by other files)"
        out += [f"{h} {title}", ""]
        if f.description:
            out += [_md(f.description), ""]
        if f.groups:
            out += ["| group | default | what it chooses |", "|---|---|---|"]
            out += [f"| `{g.key}` | {_code(g.default)} | {_md(g.comment)} |" for g in f.groups]
            out.append("")
        out += _table(f.entries) + [""]
    groups = sorted({f.group for f in files if f.group})
    for group in groups:
        members = [f for f in files if f.group == group]
        out += [f"{h} `{group}` group", ""]
        chosen = group_comment.get(group)
        options = ", ".join(f"`{m.option}`" for m in members)
        line = f"`{group}=NAME`, NAME one of {options}."
        if chosen is not None:
            line += f" Default: {_code(chosen.default)}."
            if chosen.comment:
                line += f" {_md(chosen.comment)}"
        out += [line, ""]
        for m in members:
            where = f"`src/ekya/conf/{m.path}`" + (f": {_md(m.description)}" if m.description else "")
            out += [f"{h}# `{group}={m.option}`", "", where, ""] + _table(m.entries) + [""]
    return "\n".join(out).rstrip() + "\n"
