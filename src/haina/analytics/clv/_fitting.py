"""Shared machinery of the lifecycle estimators: grouping, maximum likelihood, standard errors.

Every model here is fitted the same way:

1. the per-customer rows are collapsed to their distinct tuples with a count (weight), as Fader
   and Hardie do in their spreadsheets ("the RFM matrix"): a daily or weekly summary of a
   million customers has far fewer distinct ``(frequency, recency, T)`` tuples than rows;
2. the total log-likelihood and its analytic gradient are evaluated on the tuples, vectorised;
3. ``scipy.optimize.minimize(jac=True, method="BFGS")`` maximises it over log-parameters (so
   every parameter stays positive; L-BFGS-B takes over if BFGS' line search gives up), then a
   few Newton steps on a numerical Hessian of the analytic gradient polish the optimum;
4. that Hessian, inverted, gives the asymptotic covariance (delta method back to the natural
   parameters), hence ``standard_errors_``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

#: log-parameters are kept inside this box so that ``exp`` never overflows during line searches.
LOG_BOUND = 30.0


class ConvergenceError(RuntimeError):
    """The optimiser ended on a non-finite likelihood: no estimate to report."""


class ConvergenceWarning(RuntimeWarning):
    """The optimiser stopped with a gradient that is not yet negligible, typically because the
    likelihood keeps rising towards a boundary (say Pareto/NBD's ``s, beta -> infinity`` when all
    customers drop out at the same rate): the estimate is usable but not a proper maximum."""


def as_float_array(values, name: str) -> np.ndarray:
    """A 1-d float64 copy of ``values`` (a list, NumPy array or pandas Series)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    return arr


def as_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = as_float_array(weights, "weights")
    if w.shape[0] != n:
        raise ValueError("weights must have one value per row")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and non-negative")
    return w


def check_frequency_recency_age(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> None:
    """The data contract of the purchase fitters (lifetimes' ``_check_inputs`` checks)."""
    if not (frequency.shape == recency.shape == T.shape):
        raise ValueError("frequency, recency and T must have the same length")
    if frequency.shape[0] == 0:
        raise ValueError("there are no customers to fit")
    for name, arr in (("frequency", frequency), ("recency", recency), ("T", T)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has missing or infinite values")
    if np.any(frequency < 0) or np.any(frequency != np.round(frequency)):
        raise ValueError("frequency must be a non-negative whole number of repeat purchases")
    if np.any(recency < 0):
        raise ValueError("recency must be non-negative")
    if np.any(recency > T):
        raise ValueError("recency is larger than T for some customers")
    if np.any(recency[frequency == 0] != 0):
        raise ValueError("recency must be 0 for customers with no repeat purchase")
    if np.any(T <= 0):
        raise ValueError("T (customer age) must be positive")


def distinct_rows(
    *columns: np.ndarray, weights: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Collapse rows to their distinct tuples.

    Returns ``(distinct_columns, summed_weights, inverse)`` with
    ``distinct_columns[k][inverse] == columns[k]``. This is ``np.unique(..., axis=0,
    return_inverse=True)`` done with one ``lexsort`` (several times faster than ``np.unique`` on
    rows, which sorts a void view).
    """
    n = columns[0].shape[0]
    order = np.lexsort(columns[::-1])
    starts = np.empty(n, dtype=bool)
    starts[:1] = True
    if n > 1:
        change = np.zeros(n - 1, dtype=bool)
        for col in columns:
            s = col[order]
            change |= s[1:] != s[:-1]
        starts[1:] = change
    group_sorted = np.cumsum(starts) - 1
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = group_sorted
    first = order[starts]
    distinct = [col[first] for col in columns]
    summed = np.bincount(inverse, weights=weights, minlength=first.shape[0])
    return distinct, summed, inverse


def param_vector(params, names: Sequence[str]) -> np.ndarray:
    """``params`` as floats in ``names`` order, from a dict by name or from a sequence."""
    return np.array([params[k] for k in names] if isinstance(params, dict) else params,
                    dtype=float)


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` without BLAS: a BLAS ``ddot`` may start threads for long vectors, which on a
    busy machine costs more than the sum itself (measured 10x slower fits under load)."""
    return float(np.einsum("i,i->", a, b))


def factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct_values, index)`` so that ``distinct_values[index] == values``."""
    uniq, index = np.unique(values, return_inverse=True)
    return uniq, index.reshape(-1)


@dataclass
class MaximumLikelihood:
    """The outcome of :func:`maximize_log_likelihood`."""

    params: np.ndarray  # natural (positive) parameters
    log_likelihood: float  # total, over all customers
    covariance: np.ndarray  # of the natural parameters, from the inverse Hessian
    gradient_norm: float  # max |d LL / d log(theta)| / n at the optimum
    iterations: int
    converged: bool
    message: str


def numerical_hessian(
    grad: Callable[[np.ndarray], np.ndarray], x: np.ndarray, step: float = 1e-5
) -> np.ndarray:
    """Central differences of an analytic gradient: ``H[i, j] = d grad_i / d x_j``, symmetrised."""
    k = x.shape[0]
    H = np.empty((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step
        H[:, j] = (grad(x + e) - grad(x - e)) / (2 * step)
    return (H + H.T) / 2


def maximize_log_likelihood(
    neg_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: Sequence[float],
    n: float,
    *,
    max_iterations: int = 2000,
    newton_steps: int = 3,
) -> MaximumLikelihood:
    """Maximise a log-likelihood over log-parameters.

    ``neg_ll_and_grad(log_theta)`` returns the TOTAL negative log-likelihood and its gradient with
    respect to ``log_theta``. The optimiser sees it divided by ``n`` (the number of customers) so
    that its tolerances do not depend on the size of the data.
    """
    x0 = np.log(np.asarray(start, dtype=np.float64))

    def scaled(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = neg_ll_and_grad(z)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            # line searches backtrack from a large finite value; inf or nan would abort them
            return 1e300, np.zeros_like(z)
        return f / n, g / n

    # BFGS keeps its k x k algebra in NumPy; L-BFGS-B calls BLAS from C on every iteration, and a
    # threaded OpenBLAS turns each call into milliseconds of thread hand-offs on a busy machine.
    result = minimize(
        scaled, x0, jac=True, method="BFGS", options={"maxiter": max_iterations, "gtol": 1e-8}
    )
    if not result.success and np.max(np.abs(result.jac)) > 1e-6:
        # BFGS' line search can give up far from the optimum on a ridge: L-BFGS-B from there
        result = minimize(
            scaled,
            np.clip(result.x, -LOG_BOUND, LOG_BOUND),
            jac=True,
            method="L-BFGS-B",
            bounds=[(-LOG_BOUND, LOG_BOUND)] * x0.shape[0],
            options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
        )
    x = result.x
    f, g = scaled(x)

    def grad(z: np.ndarray) -> np.ndarray:
        return neg_ll_and_grad(z)[1]

    hessian = numerical_hessian(grad, x)
    # Newton polish: BFGS stops on a small gradient; Newton steps on the Hessian we need for the
    # standard errors anyway land on the optimum to machine precision. The steps are tiny, so the
    # Hessian is not recomputed (its change is below the precision the standard errors need).
    for _ in range(newton_steps):
        try:
            step = np.linalg.solve(hessian, -g * n)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1e-2:
            break
        candidate = np.clip(x + step, -LOG_BOUND, LOG_BOUND)
        f_new, g_new = scaled(candidate)
        if not (f_new <= f + 1e-15 * abs(f) and np.max(np.abs(g_new)) < np.max(np.abs(g))):
            break
        x, f, g = candidate, f_new, g_new

    theta = np.exp(x)
    covariance = _natural_covariance(hessian, theta)
    gradient_norm = float(np.max(np.abs(g)))
    converged = bool(result.success) or gradient_norm < 1e-6
    return MaximumLikelihood(
        params=theta,
        log_likelihood=float(-f * n),
        covariance=covariance,
        gradient_norm=gradient_norm,
        iterations=int(result.nit),
        converged=converged,
        message=str(result.message),
    )


def _natural_covariance(hessian_log: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Covariance of ``theta`` from the Hessian of the total negative log-likelihood in log-space.

    At the optimum ``H_log = D H D`` with ``D = diag(theta)``, so ``inv(H) = D inv(H_log) D``
    (the delta method).
    """
    try:
        inv = np.linalg.inv(hessian_log)
    except np.linalg.LinAlgError:
        return np.full_like(hessian_log, np.nan)
    cov = inv * np.outer(theta, theta)
    if np.any(np.diag(cov) < 0):
        return np.full_like(hessian_log, np.nan)
    return cov


def standard_errors(names: Sequence[str], covariance: np.ndarray) -> dict[str, float]:
    return {name: float(np.sqrt(v)) for name, v in zip(names, np.diag(covariance), strict=True)}


class FittedModel:
    """Attributes shared by the fitted estimators (lifetimes' names, our types).

    ``params_`` (dict), ``standard_errors_`` (dict), ``log_likelihood_`` (total over customers),
    ``n_`` (number of customers used), ``converged_``.
    """

    param_names: tuple[str, ...] = ()

    params_: dict[str, float]
    standard_errors_: dict[str, float]
    log_likelihood_: float
    n_: int

    def _store(self, fit: MaximumLikelihood, n: float) -> None:
        self.params_ = {k: float(v) for k, v in zip(self.param_names, fit.params, strict=True)}
        self.standard_errors_ = standard_errors(self.param_names, fit.covariance)
        self.variance_matrix_ = fit.covariance
        self.log_likelihood_ = fit.log_likelihood
        self.n_ = round(n)
        self.converged_ = fit.converged
        self.iterations_ = fit.iterations
        if not (np.isfinite(fit.log_likelihood) and np.all(np.isfinite(fit.params))):
            raise ConvergenceError(
                f"{type(self).__name__} found no finite maximum of the likelihood"
            )
        if not fit.converged:
            warnings.warn(
                f"{type(self).__name__} stopped before converging "
                f"({fit.message.strip() or 'line search'}); "
                f"max |gradient| per customer {fit.gradient_norm:.3g}",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _unload(self) -> tuple[float, ...]:
        if not hasattr(self, "params_"):
            raise ValueError("the model has not been fitted yet: call fit() first")
        return tuple(self.params_[k] for k in self.param_names)

    def __repr__(self) -> str:
        if not hasattr(self, "params_"):
            return f"<{type(self).__name__}: not fitted>"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
        return (
            f"<{type(self).__name__}: {self.n_} customers, {params}, LL={self.log_likelihood_:.6g}>"
        )


def rfm_arrays(frequency, recency, T, weights, *, check: bool = False):
    """``frequency, recency, T`` as float arrays and the row weights (checked if asked)."""
    frequency = as_float_array(frequency, "frequency")
    recency = as_float_array(recency, "recency")
    T = as_float_array(T, "T")
    if check:
        check_frequency_recency_age(frequency, recency, T)
    return frequency, recency, T, as_weights(weights, frequency.shape[0])


class PurchaseModel(FittedModel):
    """BG/NBD and Pareto/NBD: fitted on ``(frequency, recency, T)`` condensed to distinct rows.

    A model names its grouped-data class (``grouped``, built from the four arrays), its
    negative log-likelihood and gradient in log parameters (``neg_log_likelihood(z, d)``) and
    its starting point (``initial_params``)."""

    grouped: Any
    neg_log_likelihood: Any

    def initial_params(self, mean_x: float, mean_T: float) -> tuple[float, ...]:
        raise NotImplementedError

    def fit(self, frequency, recency, T, weights=None, initial_params=None):
        """Maximum likelihood with the analytic gradient.

        ``weights`` counts customers per row (Fader & Hardie's condensed RFM matrix); rows are
        also condensed here to their distinct ``(frequency, recency, T)`` tuples.
        """
        frequency, recency, T, w = rfm_arrays(frequency, recency, T, weights, check=True)
        d = self.grouped(frequency, recency, T, w)
        if initial_params is None:
            initial_params = self.initial_params(float(np.average(frequency, weights=w)),
                                                 float(np.average(T, weights=w)))
        fit = maximize_log_likelihood(lambda z: self.neg_log_likelihood(z, d),
                                      initial_params, d.n)
        self.distinct_rows_ = d.rows
        self._store(fit, d.n)
        return self

    @classmethod
    def log_likelihood_and_gradient(cls, params, frequency, recency, T, weights=None):
        """Total log-likelihood at ``params`` and its gradient w.r.t. them."""
        d = cls.grouped(*rfm_arrays(frequency, recency, T, weights))
        theta = param_vector(params, cls.param_names)
        f, g = cls.neg_log_likelihood(np.log(theta), d)
        return -f, -g / theta


def same_shape_output(template, values: np.ndarray):
    """Return ``values`` as a pandas Series indexed like ``template`` when it is one."""
    index = getattr(template, "index", None)
    values = np.asarray(values, dtype=np.float64)
    if index is not None and getattr(template, "ndim", 0) == 1 and values.shape == (len(index),):
        import pandas as pd

        return pd.Series(values, index=index)
    if values.ndim == 0:
        return float(values)
    return values
