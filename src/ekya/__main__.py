"""``python -m ekya``: run one deployment cell (see src/ekya/conf/config.yaml)."""

from __future__ import annotations

import sys

from ekya.process import set_env_policies

set_env_policies()  # before anything loads torch


def cli() -> None:
    """Check the overrides (one line and exit 2 for a bad one), then hand over to Hydra."""
    from ekya.app import check_overrides, main

    check_overrides(sys.argv[1:])
    main()


if __name__ == "__main__":
    cli()
