"""RFM scores and segments, and lifecycle stages, from the per-customer summary.

The input is the table of :mod:`haina.analytics.clv.summary` (``frequency, recency, T`` and, for M,
``monetary_value``); the rules are documented in ``docs/analytics.md`` and repeated here.

RFM scores (1-5, 5 best), by quintile of the customer's position among all customers:

- R from the periods since the last purchase, ``T - recency`` (fewer is better);
- F from the number of purchases, ``frequency + 1``;
- M from ``monetary_value`` (mean repeat spend; 0 without a repeat purchase).

``score = 1 + floor(5 (k - 1) / n)`` where ``k`` is the customer's rank from worst to best
(1-based) and customers with equal values share the rank of the first of them, so a value shared
by the bottom 60% of customers scores 1 for all of them.

Segments, on R and ``FM = round_half_up((F + M) / 2)``; the first rule that matches wins:

============  ==============================
new           R >= 4 and F == 1
champions     R >= 4 and FM >= 4
loyal         R >= 3 and FM >= 3
potential     R >= 3
cant_lose     R == 1 and FM >= 4
at_risk       R <= 2 and FM >= 3
hibernating   R == 2
lost          R == 1
============  ==============================

Lifecycle stages, from P(alive) (of a fitted BG/NBD or Pareto/NBD model) and the time since the
last purchase ``since = T - recency``; the first rule that matches wins:

===========  =============================================================================
new          no repeat purchase yet and first purchase within ``new_within``
lapsed       P(alive) < ``lapsed_below`` (0.2) or ``since`` > ``lapse_after``
at_risk      P(alive) < ``at_risk_below`` (0.5) or ``since`` > ``at_risk_after``
reactivated  bought within ``new_within`` after a silence of at least ``reactivation_gap``
active       everyone else
===========  =============================================================================

Default periods (days / weeks): ``new_within`` 30 / 4, ``at_risk_after`` 180 / 26,
``lapse_after`` 365 / 52, ``reactivation_gap`` 180 / 26. The time rules matter for one-time
buyers, whose BG/NBD P(alive) is 1 by construction (FHL 2005: dropout happens only after a
repeat purchase).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENTS = ("new", "champions", "loyal", "potential", "cant_lose", "at_risk", "hibernating", "lost")
STAGES = ("new", "active", "at_risk", "lapsed", "reactivated")

#: default period thresholds in the summary's time unit
STAGE_PERIODS = {
    "D": {
        "new_within": 30.0,
        "at_risk_after": 180.0,
        "lapse_after": 365.0,
        "reactivation_gap": 180.0,
    },
    "W": {"new_within": 4.0, "at_risk_after": 26.0, "lapse_after": 52.0, "reactivation_gap": 26.0},
}


def quintile_scores(values, *, higher_is_better: bool = True) -> np.ndarray:
    """Scores 1-5 by quintile of position; ties share the score of the lowest of their positions."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return np.zeros(0, dtype=np.int64)
    if np.isnan(v).any():
        raise ValueError("RFM inputs have missing values")
    key = v if higher_is_better else -v
    rank = pd.Series(key).rank(method="min").to_numpy()  # 1 = worst
    return (1 + np.floor(5 * (rank - 1) / v.size)).astype(np.int64)


def _segment(r: np.ndarray, f: np.ndarray, fm: np.ndarray) -> np.ndarray:
    conditions = [
        (r >= 4) & (f == 1),
        (r >= 4) & (fm >= 4),
        (r >= 3) & (fm >= 3),
        r >= 3,
        (r == 1) & (fm >= 4),
        (r <= 2) & (fm >= 3),
        r == 2,
        r == 1,
    ]
    return np.select(conditions, SEGMENTS, default="lost")


def rfm_segments(summary: pd.DataFrame, *, monetary_col: str = "monetary_value") -> pd.DataFrame:
    """``r_score, f_score, m_score, rfm`` (e.g. ``"545"``) and ``segment`` per customer.

    ``summary`` needs ``frequency, recency, T`` and ``monetary_col``; the index is kept.
    """
    for col in ("frequency", "recency", "T", monetary_col):
        if col not in summary.columns:
            raise KeyError(f"the summary has no column {col!r}")
    since = summary["T"].to_numpy(float) - summary["recency"].to_numpy(float)
    r = quintile_scores(since, higher_is_better=False)
    f = quintile_scores(summary["frequency"].to_numpy(float) + 1)
    m = quintile_scores(summary[monetary_col].to_numpy(float))
    fm = (f + m + 1) // 2  # round half up
    out = pd.DataFrame({"r_score": r, "f_score": f, "m_score": m}, index=summary.index)
    out["rfm"] = [f"{a}{b}{c}" for a, b, c in zip(r, f, m, strict=True)]
    out["segment"] = _segment(r, f, fm)
    return out


def lifecycle_stages(
    summary: pd.DataFrame,
    p_alive,
    *,
    freq: str = "D",
    at_risk_below: float = 0.5,
    lapsed_below: float = 0.2,
    new_within: float | None = None,
    at_risk_after: float | None = None,
    lapse_after: float | None = None,
    reactivation_gap: float | None = None,
) -> pd.Series:
    """The lifecycle stage of each customer (rules in the module docstring).

    ``p_alive`` is ``model.conditional_probability_alive(frequency, recency, T)``. Customers are
    ``reactivated`` only when the summary has a ``last_gap`` column (``last_gap=True`` in
    :func:`haina.analytics.clv.summary.summary_data_from_transaction_data`).
    """
    if freq not in STAGE_PERIODS:
        raise ValueError("freq must be 'D' or 'W'")
    periods = dict(STAGE_PERIODS[freq])
    for name, value in (
        ("new_within", new_within),
        ("at_risk_after", at_risk_after),
        ("lapse_after", lapse_after),
        ("reactivation_gap", reactivation_gap),
    ):
        if value is not None:
            periods[name] = float(value)
    if not 0 <= lapsed_below <= at_risk_below <= 1:
        raise ValueError("need 0 <= lapsed_below <= at_risk_below <= 1")
    p = np.asarray(p_alive, dtype=float)
    x = summary["frequency"].to_numpy(float)
    T = summary["T"].to_numpy(float)
    since = T - summary["recency"].to_numpy(float)
    if p.shape != x.shape:
        raise ValueError("p_alive must have one value per customer")
    if "last_gap" in summary.columns:
        came_back = (summary["last_gap"].to_numpy(float) >= periods["reactivation_gap"]) & (x > 0)
    else:
        came_back = np.zeros(x.shape, dtype=bool)
    conditions = [
        (x == 0) & (T <= periods["new_within"]),
        (p < lapsed_below) | (since > periods["lapse_after"]),
        (p < at_risk_below) | (since > periods["at_risk_after"]),
        came_back & (since <= periods["new_within"]),
    ]
    stages = np.select(conditions, ["new", "lapsed", "at_risk", "reactivated"], default="active")
    return pd.Series(stages, index=summary.index, name="stage")
