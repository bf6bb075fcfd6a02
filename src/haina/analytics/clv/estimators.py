"""Customer-lifetime estimators: the public face of ``bgnbd``, ``pnbd`` and ``gammagamma``.

- :class:`BetaGeoFitter` — BG/NBD (Fader, Hardie & Lee 2005), params ``r, alpha, a, b``;
- :class:`ParetoNBDFitter` — Pareto/NBD (Schmittlein, Morrison & Colombo 1987), params
  ``r, alpha, s, beta``;
- :class:`GammaGammaFitter` — spend per transaction (Fader & Hardie 2013), params ``p, q, gamma``;
- :func:`calibration_vs_holdout_purchases` — predicted against actual holdout purchases per
  calibration frequency, the data behind lifetimes'
  ``plot_calibration_purchases_vs_holdout_purchases``.

The method and attribute names follow lifetimes so code written against it reads the same;
``params_`` and ``standard_errors_`` are dicts and ``log_likelihood_`` is the total log-likelihood
in the data's own time unit.
"""

from __future__ import annotations

import numpy as np

from ._fitting import ConvergenceError, ConvergenceWarning, FittedModel, PurchaseModel
from .bgnbd import BetaGeoFitter
from .gammagamma import PERIODS_PER_MONTH, GammaGammaFitter
from .pnbd import ParetoNBDFitter

__all__ = [
    "MODELS",
    "PURCHASE_MODELS",
    "PERIODS_PER_MONTH",
    "BetaGeoFitter",
    "ConvergenceError",
    "ConvergenceWarning",
    "GammaGammaFitter",
    "ParetoNBDFitter",
    "PurchaseModel",
    "calibration_vs_holdout_purchases",
]

#: short names used by the CLI and the API
PURCHASE_MODELS: dict[str, type[PurchaseModel]] = {"bgnbd": BetaGeoFitter,
                                                   "pnbd": ParetoNBDFitter}
MODELS: dict[str, type[FittedModel]] = {**PURCHASE_MODELS, "gg": GammaGammaFitter}


def calibration_vs_holdout_purchases(
    model, summary, *, by: str = "frequency_cal", max_buckets: int = 7
) -> list[dict]:
    """Mean actual and predicted holdout purchases per calibration bucket.

    ``summary`` has lifetimes' calibration/holdout columns (``frequency_cal``, ``recency_cal``,
    ``T_cal``, ``frequency_holdout``, ``duration_holdout``), as made by
    :func:`haina.analytics.clv.summary.calibration_and_holdout_data`. The prediction for each customer
    is ``model.conditional_expected_number_of_purchases_up_to_time(duration_holdout, ...)``. ``by``
    is ``frequency_cal`` (the default, lifetimes' ``kind``), ``recency_cal``, ``T_cal`` or
    ``time_since_last_purchase``; the first ``max_buckets`` buckets in ascending order are returned,
    like lifetimes' ``.iloc[:n]``.

    Returns a list of ``{"bucket", "customers", "actual", "predicted"}`` dicts.
    """
    cols = {
        k: np.asarray(summary[k], dtype=float)
        for k in ("frequency_cal", "recency_cal", "T_cal", "frequency_holdout", "duration_holdout")
    }
    duration = cols["duration_holdout"]
    predicted = np.asarray(
        model.conditional_expected_number_of_purchases_up_to_time(
            duration, cols["frequency_cal"], cols["recency_cal"], cols["T_cal"]
        ),
        dtype=float,
    )
    if by == "time_since_last_purchase":
        key = cols["T_cal"] - cols["recency_cal"]
    elif by in ("frequency_cal", "recency_cal", "T_cal"):
        key = cols[by]
    else:
        raise ValueError("by must be frequency_cal, recency_cal, T_cal or time_since_last_purchase")
    buckets, index = np.unique(key, return_inverse=True)
    index = index.reshape(-1)
    count = np.bincount(index, minlength=buckets.shape[0])
    actual = (
        np.bincount(index, weights=cols["frequency_holdout"], minlength=buckets.shape[0]) / count
    )
    mean_predicted = np.bincount(index, weights=predicted, minlength=buckets.shape[0]) / count
    rows = []
    for i in range(min(max_buckets, buckets.shape[0])):
        rows.append(
            {
                "bucket": float(buckets[i]),
                "customers": int(count[i]),
                "actual": float(actual[i]),
                "predicted": float(mean_predicted[i]),
            }
        )
    return rows
