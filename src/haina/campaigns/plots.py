"""The lift chart of a campaign's results (matplotlib, Agg backend, no pyplot: several
threads may draw at once), rendered as the analytics charts are."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from haina.analytics.clv.plots import render as render  # noqa: E402
from haina.campaigns.schemas import CampaignDailyOut, CampaignResultsOut  # noqa: E402


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


def daily_figure(d: CampaignDailyOut) -> Figure:
    """The lift per member day by day, cumulative from the launch: incremental (before the
    coupon's discount) and net (paid), each with its 95 % band, against zero."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    from matplotlib.dates import date2num
    days = [float(v) for v in date2num([x.day for x in d.days])]
    cur = d.days[0].treated_revenue_per_member.currency if d.days else ""
    for name, color in (("incremental_per_member", "#2f6fb3"), ("net_per_member", "#c05621")):
        series = [getattr(x, name) for x in d.days]
        ax.plot(days, [float(i.estimate.amount) for i in series], color=color,
                label=name.replace("_per_member", "").replace("_", " "))
        banded = [(x, i) for x, i in zip(days, series, strict=True) if i.low is not None]
        if banded:
            ax.fill_between([x for x, _ in banded], [float(i.low.amount) for _, i in banded],
                            [float(i.high.amount) for _, i in banded], color=color, alpha=0.15,
                            linewidth=0)
    ax.axhline(0, color="#666", linewidth=0.8)
    ax.xaxis_date()
    ax.set_ylabel(f"per treated member ({cur}), 95 % band")
    ax.set_title(f"Lift since the launch, day by day ({d.time_zone})"
                 if d.days else "No results yet: the campaign has not launched")
    if d.days:
        ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig
