"""Compare the runs of an experiment: kept for old commands, now a thin wrapper of ``python -m ekya.analysis``.

    python analysis/compare.py --experiment synthetic [--uri sqlite:///mlflow.db] [--out figures]

is ``python -m ekya.analysis accelerators windows`` with the same options: accelerators.{png,pdf,csv,md}
and windows.{png,pdf,csv,md} (see src/ekya/analysis/studies.py for every study).
"""

from __future__ import annotations

import argparse
import sys

from ekya.analysis.__main__ import main as analysis_main


def main(argv: list[str] | None = None) -> int:
    """Translate the old options into ``python -m ekya.analysis accelerators windows``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", required=True)
    ap.add_argument("--uri", default="sqlite:///mlflow.db")
    ap.add_argument("--out", default="figures")
    args = ap.parse_args(argv)
    return analysis_main(["accelerators", "windows", "--experiment", args.experiment, "--uri", args.uri,
                          "--out", args.out])


if __name__ == "__main__":
    sys.exit(main())
