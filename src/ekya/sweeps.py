"""Sweep cells: what makes two cells the same, the status each leaves behind, and the end-of-sweep report.

A cell of ``python -m ekya -m ...`` is one resolved config. Its fingerprint hashes that config
without the keys that cannot change a result (where files go, how loud the log is, which store
tracks it, caches that give the same numbers). The parent MLflow run carries it as the tag
``config_hash``, so a rerun finds a FINISHED twin in the same experiment and skips the cell without
training. Each cell of a multirun writes ``cell.json`` (status, overrides, error) into its own
directory; the Hydra callback ``SweepReport`` reads them when the sweep ends, prints one line per
failed cell and a count, and makes the sweep exit with status 1 if any cell failed.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ekya.atomic import atomic_write
from ekya.hydra_compose import RENAMED_MODULES, renamed_targets

#: keys (dotted) that never change a cell's numbers: left out of its fingerprint
NEUTRAL_KEYS = ("resume", "output_root", "log_level", "tracking", "skip_finished", "runtime.base_cache",
                "runtime.connect_timeout_s", "callbacks.progress", "runtime.same_cluster")
CELL_FILE = "cell.json"


def fingerprint(config: Mapping[str, Any]) -> str:
    """A stable hash of a resolved config (a plain mapping) without NEUTRAL_KEYS, renamed parts by old names."""
    plain = json.loads(json.dumps(config, default=str))
    for dotted in NEUTRAL_KEYS:
        *path, last = dotted.split(".")
        node = plain
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    # a part whose module was renamed computes what it did: hash it by its old name, so tracked twins still match
    old_names = {new: was for was, new in RENAMED_MODULES.items()}
    text = json.dumps(renamed_targets(plain, old_names), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class CellStatus:
    """What one cell of a sweep came to: FINISHED, SKIPPED (a finished twin stood for it) or FAILED."""

    status: str
    overrides: list[str]
    mean_accuracy: float = math.nan
    run_id: str | None = None
    error: str | None = None


def write_cell(run_dir: Path, status: CellStatus) -> None:
    """Leave the cell's status in its directory for the end-of-sweep report."""
    atomic_write(Path(run_dir) / CELL_FILE, json.dumps(asdict(status), indent=1))


def read_cells(sweep_dir: Path) -> list[CellStatus]:
    """The status of every cell under a multirun directory, in job order."""
    cells = []
    for path in sorted(Path(sweep_dir).glob(f"*/{CELL_FILE}"), key=lambda p: (len(p.parent.name), p.parent.name)):
        cells.append(CellStatus(**json.loads(path.read_text())))
    return cells


def report(cells: list[CellStatus]) -> tuple[str, bool]:
    """The end-of-sweep lines (each failed cell, then the counts) and whether any cell failed."""
    counts = {s: sum(c.status == s for c in cells) for s in ("FINISHED", "SKIPPED", "FAILED")}
    lines = [f"ekya: cell FAILED: {' '.join(c.overrides) or '(no overrides)'}: {c.error}"
             for c in cells if c.status == "FAILED"]
    lines.append(f"ekya: sweep of {len(cells)} cells: {counts['FINISHED']} ran, {counts['SKIPPED']} skipped "
                 f"(finished before with the same config), {counts['FAILED']} failed"
                 + ("; a failed cell that had started is FAILED in MLflow with its error as tag 'error'"
                    if counts["FAILED"] else ""))
    return "\n".join(lines), counts["FAILED"] > 0


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - hydra is a dependency; this keeps the module importable alone
    _HydraCallback = object


class SweepReport(_HydraCallback):
    """Hydra callback: after a multirun, report failed and skipped cells; exit 1 if a cell failed."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        """Read every cell's status file under the sweep directory and print the report."""
        cells = read_cells(Path(config.hydra.sweep.dir))
        if not cells:
            return
        text, failed = report(cells)
        print(text, file=sys.stderr)
        if failed:
            sys.exit(1)
