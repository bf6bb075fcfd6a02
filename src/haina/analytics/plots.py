"""Charts of a fitted model, written as PNG and SVG (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def _save(fig, directory: Path, stem: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.png", directory / f"{stem}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return paths


def p_alive_vs_recency(model, frequency, recency, T, directory: Path) -> list[Path]:
    """P(alive) against recency at the median age, one line per typical frequency, over the
    customers' own P(alive) as dots."""
    frequency = np.asarray(frequency, dtype=float)
    recency = np.asarray(recency, dtype=float)
    T = np.asarray(T, dtype=float)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sample = np.random.default_rng(0).permutation(frequency.shape[0])[:5000]
    p_customers = np.asarray(
        model.conditional_probability_alive(frequency[sample], recency[sample], T[sample])
    )
    ax.scatter(recency[sample], p_customers, s=4, alpha=0.25, color="0.5", label="customers")
    age = float(np.median(T))
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
    ax.set_xlabel(f"recency (age {age:g})")
    ax.set_ylabel("P(alive)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"P(alive) against recency — {type(model).__name__}")
    ax.legend(fontsize=8)
    return _save(fig, directory, "p_alive_vs_recency")


def clv_distribution(clv, directory: Path, *, months: float, unit: str) -> list[Path]:
    """Histogram of customer lifetime value (log-scaled counts)."""
    clv = np.asarray(clv, dtype=float)
    clv = clv[np.isfinite(clv)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.hist(clv, bins=60, color="#3b7dd8")
    ax.set_yscale("log")
    ax.set_xlabel(f"expected value of the next {months:g} months (time unit {unit})")
    ax.set_ylabel("customers")
    ax.set_title(f"Customer lifetime value — mean {clv.mean():.2f}, median {np.median(clv):.2f}")
    return _save(fig, directory, "clv_distribution")


def holdout_fit(rows: list[dict], directory: Path) -> list[Path]:
    """Actual against predicted mean holdout purchases per calibration frequency."""
    buckets = [r["bucket"] for r in rows]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(buckets, [r["actual"] for r in rows], marker="o", label="actual")
    ax.plot(buckets, [r["predicted"] for r in rows], marker="s", label="predicted")
    ax.set_xlabel("purchases in calibration period")
    ax.set_ylabel("mean purchases in holdout period")
    ax.set_title("Holdout purchases: actual against predicted")
    ax.legend()
    return _save(fig, directory, "holdout_fit")
