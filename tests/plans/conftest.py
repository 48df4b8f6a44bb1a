"""Fixtures of the scheduling-core tests (the builders themselves live in tests/helpers/plans.py)."""

from __future__ import annotations

import functools

import pytest

from helpers.plans import brute_force


@pytest.fixture
def brute():
    """The brute-force optimum function over plans that feed every stream's inference."""
    return functools.partial(brute_force, fed=True)
