"""Dispatch ``python -m ekya.bench NAME [ARGS]`` to ``ekya.bench.<name>.main(argv) -> dict``."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys

from ekya.process import set_env_policies

set_env_policies()  # before any benchmark loads torch

import ekya.bench  # noqa: E402


def available() -> list[str]:
    """Names of the benchmarks this package ships (module names with '_' shown as '-')."""
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(ekya.bench.__path__)
                  if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark and print its JSON figures as the last line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m ekya.bench NAME [ARGS]\nbenchmarks: " + ", ".join(available()))
        return 0 if argv else 2
    name = argv[0]
    if name not in available():
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(available())}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"ekya.bench.{name.replace('-', '_')}")
    figures = module.main(argv[1:])
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
