"""``python -m ekya.analysis STUDY``: draw a study's figure from the runs MLflow holds.

    python -m ekya.analysis accelerators [--uri sqlite:///mlflow.db] [--experiment synthetic] [--out figures]
    python -m ekya.analysis all          # every study whose experiment the store has, each from its own
    python -m ekya.analysis --list       # the studies and what each draws
    python -m ekya.analysis all --out docs/figures --docs docs/reproducing.md   # also the studies table there
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ekya.analysis.studies import STUDIES
from ekya.errors import EkyaError


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, draw, and print what was written; a user error is one line and exit status 2."""
    ap = argparse.ArgumentParser(prog="python -m ekya.analysis", description=__doc__.splitlines()[0])
    ap.add_argument("study", nargs="*", help=f"one or more of: {', '.join(STUDIES)}, or all")
    ap.add_argument("--uri", default="sqlite:///mlflow.db", help="MLflow tracking URI (default: ./mlflow.db)")
    ap.add_argument("--experiment", default=None, help="MLflow experiment (default: the study's)")
    ap.add_argument("--filter", default="", help="MLflow search filter, e.g. \"tags.runtime = 'simulate'\"")
    ap.add_argument("--run", default=None, help="allocation study: the parent run id to show")
    ap.add_argument("--out", default="figures", type=Path, help="folder for the PNG, PDF, CSV and Markdown files")
    ap.add_argument("--docs", "--readme", dest="docs", metavar="PAGE", type=Path, default=None,
                    help="also write the drawn studies' table into this Markdown page, between its studies markers "
                         "(docs/reproducing.md; --readme is the old name)")
    ap.add_argument("--list", action="store_true", help="list the studies and exit")
    args = ap.parse_args(argv)
    if args.list:
        for s in STUDIES.values():
            print(f"{s.name:13s} {s.description}")
        return 0
    if not args.study:
        ap.error("name a study (or all); --list shows them")
    from ekya.analysis.draw import draw

    try:
        done = draw(args.study, args.uri, args.out, args.experiment, args.filter, args.run)
        if args.docs is not None:
            from ekya.analysis.readme import write_block

            write_block(args.docs, done)
    except EkyaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for table, drawn in done:
        print(f"experiment {table.experiment!r}: {len(table.runs)} finished cells, "
              f"{table.runs['seconds'].sum() / 60:.1f} min of cell run time")
        if table.skipped:
            print(table.skipped_line(), file=sys.stderr)
        for d in drawn:
            print(f"wrote {d.png} {d.pdf} {d.csv} {d.markdown}")
            if d.headline:
                print(f"headline: {d.headline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
