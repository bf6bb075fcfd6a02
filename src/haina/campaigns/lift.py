"""The pure parts of a campaign: who falls in the holdout (drawn reproducibly from the
campaign's seed), the order members are enrolled in, and the lift's estimator.

The estimator is the difference of the two groups' mean revenue per member with Welch's
standard error and a Student t quantile on the Welch-Satterthwaite degrees of freedom
(Welch 1947, eq. 9; Satterthwaite 1946): no equal-variance assumption, which matters since
a coupon changes the treated group's spread as well as its mean.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist


def _unit(text: str) -> float:
    """A number in [0, 1) drawn from ``text`` by SHA-256: the same text, the same draw."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2.0**64


def in_holdout(seed: str, member_id: str, holdout_bps: int) -> bool:
    """Whether the member is in the campaign's holdout: a draw of (seed, member) below the
    holdout share (basis points). Independent of who else is targeted."""
    return _unit(f"{seed}:{member_id}") < holdout_bps / 10_000


def enrolment_order(seed: str, member_ids: Sequence[str]) -> list[str]:
    """The members in the order a campaign enrols them (a second, independent draw), so a
    budget that stops the enrolment part-way leaves a random subset of the audience."""
    return sorted(member_ids, key=lambda m: (_unit(f"{seed}:order:{m}"), m))


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float | None  # None: fewer than two members in a group
    high: float | None
    standard_error: float | None
    df: float | None


def _t_quantile(p: float, df: float) -> float:
    try:
        from scipy.stats import t
    except ImportError:  # without the [analytics] extra: the normal quantile (large groups)
        return NormalDist().inv_cdf(p)
    return float(t.ppf(p, df))


def _mean_var(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    return mean, math.fsum((v - mean) ** 2 for v in values) / (n - 1)


def welch_interval(treated: Sequence[float], holdout: Sequence[float],
                   level: float = 0.95) -> Interval:
    """The difference of means (treated − holdout) and its ``level`` confidence interval by
    Welch's t: SE = √(s²ₜ/nₜ + s²ₕ/nₕ), df = SE⁴ / Σ (s²/n)²/(n−1)."""
    if not treated or not holdout:
        raise ValueError("both groups need members")
    mean_t = math.fsum(treated) / len(treated)
    mean_h = math.fsum(holdout) / len(holdout)
    if len(treated) < 2 or len(holdout) < 2:
        return Interval(mean_t - mean_h, None, None, None, None)
    _, var_t = _mean_var(treated)
    _, var_h = _mean_var(holdout)
    return _welch(mean_t, var_t, len(treated), mean_h, var_h, len(holdout), level)


def welch_from_sums(treated: tuple[int, int, int], holdout: tuple[int, int, int],
                    level: float = 0.95) -> Interval:
    """:func:`welch_interval` from each group's (members, Σ value, Σ value²) in integers
    (minor units): exact sums that a running total updates member by member, so a series
    (the lift day by day) costs one pass over the orders, not one over the members per day."""
    (nt, st, qt), (nh, sh, qh) = treated, holdout
    if not nt or not nh:
        raise ValueError("both groups need members")
    mean_t, mean_h = st / nt, sh / nh
    if nt < 2 or nh < 2:
        return Interval(mean_t - mean_h, None, None, None, None)
    # s² = (n Σx² − (Σx)²) / (n (n − 1)): integer numerators, one rounding each
    var_t = (nt * qt - st * st) / (nt * (nt - 1))
    var_h = (nh * qh - sh * sh) / (nh * (nh - 1))
    return _welch(mean_t, var_t, nt, mean_h, var_h, nh, level)


def _welch(mean_t: float, var_t: float, nt: int, mean_h: float, var_h: float, nh: int,
           level: float) -> Interval:
    diff = mean_t - mean_h
    a, b = var_t / nt, var_h / nh
    se = math.sqrt(a + b)
    if se == 0:  # every member alike in both groups: no spread to speak of
        return Interval(diff, diff, diff, 0.0, None)
    df = (a + b) ** 2 / ((a * a / (nt - 1) if a else 0.0) + (b * b / (nh - 1) if b else 0.0))
    q = _t_quantile(0.5 + level / 2, df)
    return Interval(diff, diff - q * se, diff + q * se, se, df)
