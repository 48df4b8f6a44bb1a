"""The documentation: the configuration reference generated from the YAML comments, its hook, the README's links."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

from ekya.conf.reference import CONF_DIR, reference

ROOT = Path(__file__).resolve().parents[1]
MARKER = "<!-- config-reference -->"


def _plain(markdown: str) -> str:
    """Markdown text as a reader sees it: escapes undone, entities decoded, whitespace collapsed."""
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!|<>])", r"\1", markdown)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def _leaves(value: object, prefix: str) -> list[str]:
    """The dotted paths of a loaded YAML mapping's leaves (a list or an empty mapping is a leaf)."""
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [prefix[:-1]]


def _comments(text: str) -> list[str]:
    """Every comment of a YAML file (whole lines and ends of lines), Hydra's package directive left out."""
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comment = stripped[1:].strip()
        elif " #" in line:
            comment = line.split(" #", 1)[1].strip()
        else:
            continue
        if comment and not comment.startswith("@package"):
            out.append(comment)
    return out


def _section(markdown: str, heading: str) -> str:
    """The text under the heading that contains ``heading``, up to the next heading of any level."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and heading in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end])


def _heading(rel: str) -> str:
    """How the reference heads a file's section: ``group=option`` for a group file, else the file's name."""
    if "/" not in rel:
        return f"(`{rel}`)" if rel in ("config.yaml", "prepare.yaml") else f"`{rel}`"
    group, option = rel.removesuffix(".yaml").split("/", 1)
    return f"`{group}={option}`"


def test_every_key_of_every_config_file_is_in_the_reference_with_its_default_and_comments():
    markdown = reference()
    files = sorted(CONF_DIR.rglob("*.yaml"))
    assert len(files) > 40 and any(f.parent.name == "paper" for f in files)
    for path in files:
        rel = path.relative_to(CONF_DIR).as_posix()
        text = path.read_text()
        section = _section(markdown, _heading(rel))
        loaded = yaml.safe_load(text) or {}
        glob = "@package _global_" in text
        prefix = "" if glob or "/" not in rel else rel.split("/", 1)[0] + "."
        for key, value in loaded.items():
            if key == "defaults":
                if "/" in rel:  # a group file's composition list, as written
                    assert "| `defaults` |" in section, rel
                else:  # a primary config's groups: one row each
                    for item in value:
                        name = next(iter(item)) if isinstance(item, dict) else item
                        if name != "_self_" and not name.startswith("override "):
                            assert f"| `{name.removeprefix('optional ')}` |" in section, (rel, name)
                continue
            for leaf in _leaves({key: value}, prefix):
                assert f"| `{leaf}` |" in section, (rel, leaf)
        plain = _plain(section)
        for comment in _comments(text):
            assert " ".join(comment.split()) in plain, (rel, comment)
    # a default, and the comment lines directly above its key, sit in the key's own row
    for rel, line_start, key, default in [("config.yaml", "  seconds:", "window.seconds", "200"),
                                          ("scheduler/thief.yaml", "a_min:", "scheduler.a_min", "0.4")]:
        lines = (CONF_DIR / rel).read_text().splitlines()
        at = next(i for i, line in enumerate(lines) if line.startswith(line_start))
        above = []
        while lines[at - 1 - len(above)].strip().startswith("#"):
            above.insert(0, lines[at - 1 - len(above)].strip()[1:].strip())
        row = next(line for line in _section(markdown, _heading(rel)).splitlines() if line.startswith(f"| `{key}` |"))
        assert above and f"`{default}`" in row and " ".join(" ".join(above).split()) in _plain(row), (key, row)


def test_a_changed_yaml_comment_changes_the_reference(tmp_path):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    before = reference(conf)
    assert before == reference(CONF_DIR)
    config = conf / "config.yaml"
    old = "  # T, the retraining window, in seconds of video (and of the virtual clock in emulate).\n"
    assert old in config.read_text()
    config.write_text(config.read_text().replace(old, "  # Window length, a sentence no file had before.\n"))
    after = reference(conf)
    row = next(line for line in after.splitlines() if line.startswith("| `window.seconds` |"))
    assert "a sentence no file had before" in row and "T, the retraining window" not in after
    assert after != before



def test_comments_inside_a_list_and_at_line_ends_reach_the_keys_row(tmp_path):
    (tmp_path / "config.yaml").write_text("defaults:\n  # the part this run uses\n  - part: a\n  - _self_\n")
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / "a.yaml").write_text(
        "# A part.\n\n# the stages, in order\nstages:\n  # warm-up first\n  - warm\n  - run\nrate: 2  # per second\n")
    section = _section(reference(tmp_path), "`part=a`")
    assert "| `part.stages` | `[warm, run]` | the stages, in order warm-up first |" in section
    assert "| `part.rate` | `2` | per second |" in section
    groups = _section(reference(tmp_path), "(`config.yaml`)")
    assert "| `part` | `a` | the part this run uses |" in groups

def test_the_hook_puts_the_reference_into_the_configuration_page():
    spec = importlib.util.spec_from_file_location("config_reference", ROOT / "docs" / "hooks" / "config_reference.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page_text = (ROOT / "docs" / "configuration.md").read_text()
    assert page_text.count(MARKER) == 1
    page = SimpleNamespace(file=SimpleNamespace(src_uri="configuration.md"))
    built = hook.on_page_markdown(page_text, page=page, config=None, files=None)
    assert MARKER not in built and "| `scheduler.a_min` |" in built
    other = SimpleNamespace(file=SimpleNamespace(src_uri="index.md"))
    assert hook.on_page_markdown("# ekya\n", page=other, config=None, files=None) == "# ekya\n"


def test_the_reference_module_imports_no_torch():
    code = "import sys, ekya.conf.reference as r; r.reference(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_is_short_and_its_links_reach_pages_and_headings():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) <= 15000
    assert sum(line.startswith("```") for line in readme.splitlines()) % 2 == 0  # every code block closed
    links = re.findall(r"\]\(((?:docs/)[^)#\s]+)(?:#([^)\s]+))?\)", readme)
    assert len(links) >= 15
    for target, anchor in links:
        page = ROOT / target
        assert page.is_file(), target
        if anchor:
            headings = [line.lstrip("#") for line in page.read_text().splitlines() if re.match(r"#{1,6} ", line)]
            assert anchor in {_slug(h) for h in headings}, f"{target}#{anchor}"


def test_what_is_reproducible_is_stated_as_the_same_machine_type_and_threads():
    # the torch thread count and the CPU act like another seed: the docs promise identical numbers only for
    # the same seed, machine type and threads, never "on any machine" (docs/concepts.md#reproducibility)
    readme = (ROOT / "README.md").read_text()
    concepts = (ROOT / "docs" / "concepts.md").read_text()
    for text in (readme, concepts):
        flat = " ".join(text.split())
        assert "same machine type with the same `threads`" in flat
    assert "any machine" not in (readme + concepts).lower()
