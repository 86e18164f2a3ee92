"""Confidence intervals for pass rates and their differences (Wilson; Newcombe's square-and-add).

Newcombe (1998), "Interval estimation for the difference between independent proportions"
(method 10, the hybrid score interval) for unpaired runs, and Newcombe (1998), "Improved
confidence intervals for the difference between binomial proportions based on paired data"
(method 10, with the phi correction) for runs over the same rows. Both combine Wilson
score intervals, which behave at 0% and 100% where the normal approximation does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


def z_value(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r} must be between 0 and 1, e.g. 0.95")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when there is nothing to measure."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must be between 0 and n={n}")
    z = z_value(confidence)
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    denominator = 1 + z2 / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


@dataclass(frozen=True)
class Difference:
    """``candidate - baseline`` of two pass rates, with its interval."""

    delta: float
    low: float
    high: float
    method: str


def newcombe_unpaired(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> Difference:
    """p2 - p1 for independent samples: k1/n1 (baseline) and k2/n2 (candidate)."""
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both runs need at least one determinate result")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, confidence)
    l2, u2 = wilson(k2, n2, confidence)
    delta = p2 - p1
    low = delta - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    high = delta + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    return Difference(delta, max(-1.0, low), min(1.0, high), "newcombe-unpaired")


def newcombe_paired(both: int, only_baseline: int, only_candidate: int, neither: int, confidence: float = 0.95) -> Difference:
    """Candidate minus baseline pass rate over the same rows.

    ``both`` rows passed in both runs, ``only_baseline`` passed only in the baseline (the
    regressions), ``only_candidate`` passed only in the candidate, ``neither`` failed in both.
    """
    a, b, c, d = both, only_baseline, only_candidate, neither
    n = a + b + c + d
    if n <= 0:
        raise ValueError("no row has a determinate result in both runs")
    p1, p2 = (a + b) / n, (a + c) / n  # baseline, candidate
    l1, u1 = wilson(a + b, n, confidence)
    l2, u2 = wilson(a + c, n, confidence)
    phi = 0.0
    product = (a + b) * (c + d) * (a + c) * (b + d)
    if product > 0:
        ad_bc = a * d - b * c
        # Newcombe's continuity correction of the correlation between the two runs.
        corrected = ad_bc - n / 2 if ad_bc > n / 2 else (ad_bc if ad_bc < 0 else 0.0)
        phi = corrected / math.sqrt(product)
    delta = p2 - p1
    # Square-and-add for (p2 - p1), with the covariance term the pairing brings.
    low = delta - math.sqrt(max(0.0, (p2 - l2) ** 2 - 2 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1) ** 2))
    high = delta + math.sqrt(max(0.0, (u2 - p2) ** 2 - 2 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1) ** 2))
    return Difference(delta, max(-1.0, low), min(1.0, high), "newcombe-paired")
