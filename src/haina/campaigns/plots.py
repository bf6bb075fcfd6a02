"""The lift chart of a campaign's results (matplotlib, Agg backend, no pyplot: several
threads may draw at once), rendered as the analytics charts are."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from haina.analytics.clv.plots import render as render  # noqa: E402
from haina.campaigns.schemas import CampaignResultsOut  # noqa: E402


def lift_figure(r: CampaignResultsOut) -> Figure:
    """Left: revenue per member, treated against holdout. Right: the incremental revenue per
    member with its 95 % interval, against zero."""
    fig = Figure(figsize=(8, 4))
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    cur = r.treated.revenue.currency
    values = [float(r.treated.revenue_per_member.amount),
              float(r.holdout.revenue_per_member.amount)]
    bars = left.bar([f"treated ({r.treated.members})", f"holdout ({r.holdout.members})"],
                    values, color=["#2f6fb3", "#9aa5b1"])
    left.bar_label(bars, fmt="%.2f")
    left.set_ylabel(f"revenue per member ({cur})")
    left.set_title("Revenue per member in the campaign window")
    est = r.incremental_per_member
    x = float(est.estimate.amount)
    if est.low is not None and est.high is not None:
        low, high = float(est.low.amount), float(est.high.amount)
        right.errorbar([0], [x], yerr=[[x - low], [high - x]], fmt="o", capsize=8,
                       color="#2f6fb3")
    else:
        right.plot([0], [x], "o", color="#2f6fb3")
    right.axhline(0, color="#666", linewidth=0.8)
    right.set_xticks([0], ["incremental"])
    right.set_xlim(-1, 1)
    right.set_ylabel(f"per treated member ({cur}), 95 % interval")
    right.set_title("Lift")
    fig.tight_layout()
    return fig
