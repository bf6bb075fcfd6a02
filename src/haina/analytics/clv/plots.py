"""Charts of a fitted model and of the cohorts, as PNG and SVG (matplotlib, Agg backend: no
display needed).

The ``*_figure`` functions build a :class:`matplotlib.figure.Figure` without pyplot, so the API
may draw charts in several threads at once; :func:`render` turns one into bytes. The CLI's
functions (``p_alive_vs_recency``, ``clv_distribution``, ``holdout_fit``) write both formats into
a directory.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from numpy.typing import ArrayLike

matplotlib.use("Agg")
import numpy as np
from matplotlib.figure import Figure

FORMATS = ("png", "svg")


def _figure(width: float = 7, height: float = 4.5):
    fig = Figure(figsize=(width, height))
    return fig, fig.add_subplot()


def render(fig: Figure, fmt: str) -> bytes:
    """The figure as ``png`` or ``svg`` bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}: choose png or svg")
    buffer = io.BytesIO()
    # a fixed date keeps the SVG the same for the same chart (no "created at" metadata)
    metadata = {"Date": None} if fmt == "svg" else {}
    fig.savefig(buffer, format=fmt, dpi=120, bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def _save(fig: Figure, directory: Path, stem: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in FORMATS:
        path = directory / f"{stem}.{fmt}"
        path.write_bytes(render(fig, fmt))
        paths.append(path)
    return paths


def p_alive_figure(model, frequency, recency, T, *, unit: str = "period") -> Figure:
    """P(alive) against recency at the median age, one line per typical frequency, over the
    customers' own P(alive) as dots (at most 5,000 of them)."""
    frequency = np.asarray(frequency, dtype=float)
    recency = np.asarray(recency, dtype=float)
    T = np.asarray(T, dtype=float)
    fig, ax = _figure()
    sample = np.random.default_rng(0).permutation(frequency.shape[0])[:5000]
    p_customers = np.asarray(
        model.conditional_probability_alive(frequency[sample], recency[sample], T[sample])
    )
    ax.scatter(recency[sample], p_customers, s=4, alpha=0.25, color="0.5", label="customers")
    age = float(np.median(T)) if T.size else 1.0
    grid = np.linspace(0.0, age, 200)
    repeaters = frequency[frequency > 0]
    levels = (
        sorted({int(v) for v in np.quantile(repeaters, [0.25, 0.5, 0.9, 0.99])})
        if repeaters.size
        else [1]
    )
    for x in levels:
        p = np.asarray(
            model.conditional_probability_alive(
                np.full_like(grid, x), grid, np.full_like(grid, age)
            )
        )
        ax.plot(grid, p, label=f"{x} repeat purchases")
    ax.set_xlabel(f"recency in {unit}s (lines: age {age:g})")
    ax.set_ylabel("P(alive)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"P(alive) against recency — {type(model).__name__}")
    ax.legend(fontsize=8)
    return fig


def clv_histogram_figure(bin_edges: ArrayLike, bin_counts: ArrayLike, *, xlabel: str) -> Figure:
    """A histogram of customer lifetime value from its bin ``edges`` and ``counts``."""
    edges = np.asarray(bin_edges, dtype=float)
    counts = np.asarray(bin_counts, dtype=float)
    fig, ax = _figure()
    ax.stairs(counts, edges, fill=True, color="#3b7dd8")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("customers")
    total = counts.sum()
    mids = (edges[:-1] + edges[1:]) / 2
    mean = float((mids * counts).sum() / total) if total else 0.0
    ax.set_title(f"Customer lifetime value — {int(total):,} customers, mean about {mean:,.2f}")
    return fig


def holdout_figure(rows: list[dict]) -> Figure:
    """Actual against predicted mean holdout purchases per calibration frequency."""
    buckets = [r["bucket"] for r in rows]
    fig, ax = _figure()
    ax.plot(buckets, [r["actual"] for r in rows], marker="o", label="actual")
    ax.plot(buckets, [r["predicted"] for r in rows], marker="s", label="predicted")
    ax.set_xlabel("purchases in calibration period")
    ax.set_ylabel("mean purchases in holdout period")
    ax.set_title("Holdout purchases: actual against predicted")
    ax.legend()
    return fig


def cohort_heatmap_figure(cohorts: dict) -> Figure:
    """Retention of each monthly acquisition cohort (rows) by months since the first purchase
    (columns): the JSON of ``GET /v1/analytics/cohorts``."""
    rows = cohorts["cohorts"]
    width = max((len(c["months"]) for c in rows), default=1)
    grid = np.full((max(len(rows), 1), width), np.nan)
    for i, cohort in enumerate(rows):
        for month in cohort["months"]:
            grid[i, month["months_since_first"]] = month["retention"]
    fig, ax = _figure(max(6.0, 0.28 * width + 2.5), max(3.0, 0.28 * len(rows) + 1.5))
    image = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=1, interpolation="none")
    ax.set_yticks(range(len(rows)), [f"{c['cohort']} ({c['size']})" for c in rows], fontsize=7)
    step = max(1, width // 12)
    ax.set_xticks(range(0, width, step))
    ax.set_xlabel("months since first purchase")
    ax.set_ylabel("cohort (members)")
    ax.set_title("Retention by monthly acquisition cohort")
    fig.colorbar(image, ax=ax, label="share of the cohort buying")
    return fig


# ---------------------------------------------------------------- the CLI's files

def p_alive_vs_recency(model, frequency, recency, T, directory: Path) -> list[Path]:
    """``p_alive_vs_recency.png`` and ``.svg`` in ``directory``."""
    return _save(p_alive_figure(model, frequency, recency, T), directory, "p_alive_vs_recency")


def clv_distribution(clv, directory: Path, *, months: float, unit: str) -> list[Path]:
    """``clv_distribution.png`` and ``.svg``: a histogram of customer lifetime value."""
    clv = np.asarray(clv, dtype=float)
    clv = clv[np.isfinite(clv)]
    counts, edges = np.histogram(clv, bins=60)
    fig = clv_histogram_figure(
        edges, counts, xlabel=f"expected value of the next {months:g} months (time unit {unit})"
    )
    return _save(fig, directory, "clv_distribution")


def holdout_fit(rows: list[dict], directory: Path) -> list[Path]:
    """``holdout_fit.png`` and ``.svg``: actual against predicted holdout purchases."""
    return _save(holdout_figure(rows), directory, "holdout_fit")
