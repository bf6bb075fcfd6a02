"""The Gamma-Gamma model of spend per transaction (Fader, Hardie & Lee 2005; Fader & Hardie 2013).

Fader, P. S. & Hardie, B. G. S. (2013), "The Gamma-Gamma Model of Monetary Value" (note 025,
cited as FH below), building on Colombo & Jiang (1999), "A Stochastic RFM Model", *Journal of
Interactive Marketing* 13(3), and Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves
for Customer Base Analysis", *Journal of Marketing Research* 42(4).

A customer's transaction values are Gamma(p, nu); across customers nu ~ Gamma(q, gamma).
Lifetimes calls ``gamma`` ``v``. The model is fitted on customers with at least one repeat
purchase: ``x`` repeat purchases with mean value ``m`` (``monetary_value``).
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from . import _kernels
from ._fitting import (
    FittedModel,
    as_float_array,
    as_weights,
    counts_by_value,
    dot,
    maximize_log_likelihood_newton,
    param_vector,
    same_shape_output,
    symmetric,
    to_log_space,
)

PARAM_NAMES = ("p", "q", "gamma")

#: where ``p`` and ``q`` count as a boundary optimum (:meth:`GammaGammaFitter.degeneracy`)
BOUNDARY = (1e-4, 1e4)
#: the weight, in purchases, of the population's spend in :func:`shrunk_average_spend`
SHRINKAGE_PURCHASES = 1.0

#: months per time unit of ``T``, as lifetimes' ``customer_lifetime_value`` counts them
PERIODS_PER_MONTH = {"W": 4.345, "M": 1.0, "D": 30.0, "H": 30.0 * 24.0}


class _Data:
    """Customers with ``x > 0``. The per-customer work of the likelihood is one ``log`` and one
    division (one compiled pass, or a few NumPy ones); everything that depends on ``x`` alone
    is evaluated once per distinct ``x``, and the terms that do not involve the parameters are
    summed once (grouping rows by ``(x, m)`` would cost more than it saves: ``m`` is a
    continuous amount)."""

    def __init__(
        self, frequency: np.ndarray, monetary_value: np.ndarray, weights: np.ndarray
    ) -> None:
        keep = (frequency > 0) & (weights > 0)
        x, m, w = frequency[keep], monetary_value[keep], weights[keep]
        if x.shape[0] == 0:
            raise ValueError(
                "no customer has a repeat purchase: the Gamma-Gamma model needs frequency > 0"
            )
        if not np.all(np.isfinite(m)) or np.any(m <= 0):
            raise ValueError("monetary_value must be positive for customers with repeat purchases")
        if np.any(x != np.round(x)):
            raise ValueError("frequency must be a whole number of repeat purchases")
        self.x, self.m, self.w = x, m, w
        self.n = float(w.sum())
        self.rows = x.shape[0]
        self.ux, self.wx = counts_by_value(x, w)
        log_m = np.log(m)
        wx_row = w * x
        self.sum_x_log_m = dot(wx_row, log_m)
        self.sum_log_m = dot(w, log_m)
        self.sum_x_log_x = dot(wx_row, np.log(x))
        self._xm: np.ndarray | None = None

    def sums(self, gamma: float) -> np.ndarray:
        """``[sum w x L, sum w L, sum w x/u, sum w/u, sum w x/u^2, sum w/u^2]`` with
        ``u = x m + gamma`` and ``L = log u`` (:func:`._compiled.gamma_gamma_sums`)."""
        kernels = _kernels.compiled()
        if kernels is not None:
            return _kernels.run(kernels.gamma_gamma_sums, self.rows, self.x, self.m, self.w,
                                float(gamma))
        if self._xm is None:
            self._xm = self.x * self.m
        u = self._xm + gamma
        L = np.log(u)
        inv = 1.0 / u
        wx, w = self.w * self.x, self.w
        inv2 = inv * inv
        return np.array([dot(wx, L), dot(w, L), dot(wx, inv), dot(w, inv), dot(wx, inv2),
                         dot(w, inv2)])


def _neg_log_likelihood_gradient_hessian(
    log_theta: np.ndarray, d: _Data, hessian: bool = True
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Total negative log-likelihood of the mean spends, FH eq. (1a) (the density of ``m`` given
    ``x``), its gradient and Hessian w.r.t. log-parameters::

        LL_i = lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma)
               + (px-1) ln(m) + px ln(x) - (px+q) ln(xm+gamma)
    """
    theta = np.exp(log_theta)
    p, q, gamma = theta
    ux, wx, n = d.ux, d.wx, d.n
    sum_wxL, sum_wL, sum_wx_inv, sum_w_inv, sum_wx_inv2, sum_w_inv2 = d.sums(gamma)
    ll = (
        dot(wx, gammaln(p * ux + q) - gammaln(p * ux))
        - n * gammaln(q)
        + n * q * np.log(gamma)
        + p * d.sum_x_log_m
        - d.sum_log_m
        + p * d.sum_x_log_x
        - p * sum_wxL
        - q * sum_wL
    )
    psi_pxq = digamma(p * ux + q)
    g = np.array([
        dot(wx, ux * (psi_pxq - digamma(p * ux))) + d.sum_x_log_m + d.sum_x_log_x - sum_wxL,
        dot(wx, psi_pxq) - n * digamma(q) + n * np.log(gamma) - sum_wL,
        n * q / gamma - p * sum_wx_inv - q * sum_w_inv,
    ])
    H = None
    if hessian:
        t_pxq = polygamma(1, p * ux + q)
        H = symmetric(np.array([
            dot(wx, ux * ux * (t_pxq - polygamma(1, p * ux))),
            dot(wx, ux * t_pxq),
            -sum_wx_inv,
            dot(wx, t_pxq) - n * polygamma(1, q),
            n / gamma - sum_w_inv,
            -n * q / gamma**2 + p * sum_wx_inv2 + q * sum_w_inv2,
        ]), 3)
    return to_log_space(-float(ll), -g, None if H is None else -H, theta)


def _neg_log_likelihood_and_gradient(log_theta: np.ndarray, d: _Data) -> tuple[float, np.ndarray]:
    """Total negative log-likelihood of the mean spends, FH eq. (1a), and its gradient w.r.t.
    log-parameters."""
    f, g, _ = _neg_log_likelihood_gradient_hessian(log_theta, d, hessian=False)
    return f, g


def population_spend(frequency, monetary_value) -> float:
    """The population's typical spend per purchase when Gamma-Gamma cannot say: the median of
    the repeat buyers' mean spends (a median, since a degenerate fit often comes from a heavy
    tail, which would pull a mean)."""
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary_value, dtype=float)
    repeat = m[(x > 0) & (m > 0)]
    if repeat.shape[0] == 0:
        raise ValueError("no customer has a repeat purchase with a positive spend")
    return float(np.median(repeat))


def shrunk_average_spend(frequency, monetary_value, population: float,
                         purchases: float = SHRINKAGE_PURCHASES):
    """The expected spend per purchase served when a Gamma-Gamma fit is degenerate: each
    customer's mean repeat spend ``m`` shrunk towards the population's (``population``, see
    :func:`population_spend`) as if it were ``purchases`` more purchases of hers,
    ``(x m + k m0) / (x + k)``. It has Gamma-Gamma's form (FH eq. 5, a weighted average of the
    customer's mean and the population's, the weight on hers growing with ``x``) with a fixed
    weight instead of a fitted one; a customer without a repeat purchase gets ``m0``."""
    x = np.asarray(frequency, dtype=float)
    m = np.where(x > 0, np.asarray(monetary_value, dtype=float), 0.0)
    value = (x * m + purchases * population) / (x + purchases)
    return same_shape_output(frequency, value)


def discounted_value(transaction_model, spend, frequency, recency, T, time: float = 12,
                     discount_rate: float = 0.01, freq: str = "D"):
    """Discounted expected revenue over the next ``time`` months given each customer's expected
    ``spend`` per purchase (:meth:`GammaGammaFitter.customer_lifetime_value` with
    Gamma-Gamma's spend; :func:`shrunk_average_spend` where that fit is degenerate)."""
    if freq not in PERIODS_PER_MONTH:
        raise ValueError(f"freq must be one of {sorted(PERIODS_PER_MONTH)}")
    factor = PERIODS_PER_MONTH[freq]
    spend = np.asarray(spend, dtype=float)
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    age = np.asarray(T, dtype=float)
    predict = transaction_model.conditional_expected_number_of_purchases_up_to_time
    clv = np.zeros(np.broadcast(x, tx, age, spend).shape)
    previous = np.asarray(predict(0.0, x, tx, age), dtype=float)
    for month in range(1, int(time) + 1):
        cumulative = np.asarray(predict(month * factor, x, tx, age), dtype=float)
        clv += spend * (cumulative - previous) / (1.0 + discount_rate) ** month
        previous = cumulative
    return same_shape_output(frequency, clv)


def log_likelihood(params, frequency, monetary_value, weights=None) -> float:
    """Total Gamma-Gamma log-likelihood (FH eq. 1a) at ``params = (p, q, gamma)``; customers with
    ``frequency == 0`` are left out."""
    frequency = as_float_array(frequency, "frequency")
    monetary_value = as_float_array(monetary_value, "monetary_value")
    d = _Data(frequency, monetary_value, as_weights(weights, frequency.shape[0]))
    theta = param_vector(params, PARAM_NAMES)
    return -_neg_log_likelihood_and_gradient(np.log(theta), d)[0]


class GammaGammaFitter(FittedModel):
    """Gamma-Gamma spend estimator: ``fit(frequency, monetary_value)``.

    Customers with ``frequency == 0`` are left out of the fit (their mean repeat spend is
    undefined); ``n_`` counts the customers used. Attributes after ``fit``: ``params_`` (``p, q,
    gamma``), ``standard_errors_``, ``log_likelihood_`` (total), ``n_``.
    """

    param_names = PARAM_NAMES

    def fit(self, frequency, monetary_value, weights=None, initial_params=None) -> GammaGammaFitter:
        """Maximum likelihood on FH eq. (1a)."""
        frequency = as_float_array(frequency, "frequency")
        monetary_value = as_float_array(monetary_value, "monetary_value")
        if frequency.shape != monetary_value.shape:
            raise ValueError("frequency and monetary_value must have the same length")
        if np.any(frequency < 0) or not np.all(np.isfinite(frequency)):
            raise ValueError("frequency must be a non-negative whole number of repeat purchases")
        d = _Data(frequency, monetary_value, as_weights(weights, frequency.shape[0]))
        if initial_params is None:
            initial_params = (1.0, 2.0, float(np.average(d.m, weights=d.w)))
        fit = maximize_log_likelihood_newton(
            lambda z: _neg_log_likelihood_gradient_hessian(z, d), initial_params, d.n
        )
        self.distinct_rows_ = d.rows
        self._store(fit, d.n)
        return self

    def conditional_expected_average_profit(self, frequency, monetary_value):
        """E[M | x, m], FH eq. (5): a weighted average of the population mean ``p gamma/(q-1)``
        and the customer's own mean ``m``, with weight ``px/(px+q-1)`` on ``m``."""
        p, q, gamma = self._unload()
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary_value, dtype=float)
        individual_weight = p * x / (p * x + q - 1.0)
        population_mean = gamma * p / (q - 1.0)
        value = (1.0 - individual_weight) * population_mean + individual_weight * m
        return same_shape_output(frequency, value)

    def customer_lifetime_value(
        self,
        transaction_model,
        frequency,
        recency,
        T,
        monetary_value,
        time: float = 12,
        discount_rate: float = 0.01,
        freq: str = "D",
    ):
        """Discounted expected revenue over the next ``time`` months, as lifetimes computes it.

        For each month ``k = 1..time`` the expected purchases in that month from
        ``transaction_model.conditional_expected_number_of_purchases_up_to_time`` (differences of
        the cumulative prediction at ``k`` and ``k-1`` months) times the expected spend
        (:meth:`conditional_expected_average_profit`), discounted by ``(1+discount_rate)^k``
        (FHL 2005 "RFM and CLV", section "Computing CLV", monthly discrete discounting).
        ``freq`` is the time unit of ``recency`` and ``T``: ``D``, ``W``, ``M`` or ``H``.
        """
        spend = np.asarray(
            self.conditional_expected_average_profit(frequency, monetary_value), dtype=float
        )
        return discounted_value(transaction_model, spend, frequency, recency, T, time=time,
                                discount_rate=discount_rate, freq=freq)

    def degeneracy(self) -> list[str]:
        """Why this fit's spend predictions should not be served, if they should not (an empty
        list for a sound fit):

        - ``q <= 1``: the population mean spend ``p gamma/(q-1)`` is infinite, so a customer's
          expected spend is dominated by a meaningless population term;
        - the Hessian at the optimum is not positive definite: no standard errors, the
          likelihood is flat in some direction (typically: spend varies no more between
          customers than within them, and ``q, gamma`` run off together);
        - a boundary optimum: ``p`` or ``q`` beyond ``1e4`` or below ``1e-4`` (dimensionless:
          a coefficient of variation of 1 % or of 100 times the mean), or a fit that stopped
          before converging.

        What to serve instead is :func:`shrunk_average_spend`.
        """
        p, q, _ = self._unload()
        reasons = []
        if q <= 1:
            reasons.append(f"q = {q:.3g} <= 1: the mean spend has no finite expectation")
        if not getattr(self, "hessian_positive_definite_", True) or not all(
            np.isfinite(v) for v in self.standard_errors_.values()
        ):
            reasons.append("the Hessian at the optimum is not positive definite (no standard "
                           "errors): spend varies too little between customers to tell them "
                           "apart from the population")
        far = [f"{k} = {v:.3g}" for k, v in (("p", p), ("q", q))
               if not BOUNDARY[0] <= v <= BOUNDARY[1]]
        if far:
            reasons.append(f"the optimum is at the boundary ({', '.join(far)})")
        if not getattr(self, "converged_", True):
            reasons.append("the fit stopped before converging")
        return reasons

    def log_likelihood(self, frequency, monetary_value, weights=None) -> float:
        """Total log-likelihood of other customers under the fitted parameters."""
        return log_likelihood(self.params_, frequency, monetary_value, weights)
