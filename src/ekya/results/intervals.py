"""The Student-t interval of a mean over seeds: the one interval every report and figure of ekya states.

Seeds are few (3 to 10), so the interval is Student's t, not a bootstrap. The mean and the standard
deviation are computed with ``statistics`` (correctly rounded sums), so a figure and a bench report
that average the same values state the same digits.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scipy.stats import t as student_t


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its two-sided Student-t interval (None from a single seed)."""

    mean: float
    ci: tuple[float, float] | None
    n: int

    def rounded(self, digits: int = 4, scale: float = 1.0) -> dict:
        """{"mean", "ci"} scaled and rounded for the report."""
        ci = None if self.ci is None else [round(scale * c, digits) for c in self.ci]
        return {"mean": round(scale * self.mean, digits), "ci": ci}


def estimate(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean of values and the Student-t interval of that mean at ``level`` (None for n = 1)."""
    if not values:
        raise ValueError("no values to estimate from")
    n, mean = len(values), statistics.fmean(values)
    if n == 1:
        return Estimate(mean, None, 1)
    half = float(student_t.ppf(0.5 + level / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return Estimate(mean, (mean - half, mean + half), n)


def t_interval(values: Iterable[float], level: float = 0.95) -> tuple[float, float]:
    """(low, high) of ``estimate`` over the values that are not NaN; the mean twice below two values."""
    finite = [float(v) for v in values if not math.isnan(float(v))]
    if not finite:
        return math.nan, math.nan
    e = estimate(finite, level)
    return e.ci if e.ci is not None else (e.mean, e.mean)
