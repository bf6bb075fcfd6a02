"""Shared machinery of the lifecycle estimators: grouping, maximum likelihood, standard errors.

Every model here is fitted the same way:

1. when it pays, the per-customer rows are collapsed to their distinct tuples with a count
   (weight), as Fader and Hardie do in their spreadsheets ("the RFM matrix"): a daily or weekly
   summary of a million customers has far fewer distinct ``(frequency, recency, T)`` tuples
   than rows. Whether it pays is decided on a sample (:func:`worth_grouping`): a summary in
   fractional weeks, hours or seconds has nearly as many distinct tuples as rows, and sorting
   them would cost more than it saves;
2. the total log-likelihood and its analytic gradient (and, for BG/NBD and Gamma-Gamma, its
   analytic Hessian) are evaluated in one compiled pass over the rows on every core
   (:mod:`._compiled`, Numba), or vectorised with NumPy where Numba is missing;
3. with a Hessian, a trust-region Newton method (``trust-exact``) maximises over
   log-parameters (every parameter stays positive) in a handful of passes; without one,
   ``scipy.optimize.minimize(jac=True, method="BFGS")`` (L-BFGS-B takes over if BFGS' line
   search gives up), then a few Newton steps on a numerical Hessian of the analytic gradient
   polish the optimum;
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


#: rows below which grouping is always done (it costs next to nothing there)
_ALWAYS_GROUP_BELOW = 50_000
_GROUPING_SAMPLE = 4096


def worth_grouping(*columns: np.ndarray, cost_per_row: float) -> bool:
    """Whether collapsing rows to distinct tuples pays for its sort.

    ``cost_per_row`` is what one row costs over a whole fit, in units of what sorting it once
    costs (measured per model and implementation). Grouping saves ``duplicates x cost_per_row``
    and pays one sort, so it pays when the share of duplicate rows exceeds
    ``1 / cost_per_row``. The share is estimated on a random sample of 4,096 rows; a sample
    shows fewer duplicates than the whole (rows that repeat in the data may not both be drawn),
    so the estimate errs towards not grouping, which is never much slower.
    """
    n = columns[0].shape[0]
    if n <= _ALWAYS_GROUP_BELOW:
        return True
    rng = np.random.default_rng(0)
    idx = np.unique(rng.integers(0, n, _GROUPING_SAMPLE))
    sample = [c[idx] for c in columns]
    _, counts, _ = distinct_rows(*sample, weights=np.ones(idx.shape[0]))
    duplicates = 1.0 - counts.shape[0] / idx.shape[0]
    return duplicates * cost_per_row > 1.0


def counts_by_value(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct_values, summed_weights)`` of whole non-negative ``values`` (frequencies): a
    ``bincount`` when the values are small enough, a sort otherwise."""
    if values.shape[0] and values.max() <= 4 * values.shape[0] + 1_000_000:
        summed = np.bincount(values.astype(np.int64), weights=weights)
        present = np.flatnonzero(np.bincount(values.astype(np.int64)))
        return present.astype(np.float64), summed[present]
    uniq, index = factorize(values)
    return uniq, np.bincount(index, weights=weights, minlength=uniq.shape[0])


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
    hessian_log: np.ndarray | None = None  # of the total negative log-likelihood, log-params


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
    hess_inv0: np.ndarray | None = None,
    gtol: float = 1e-8,
) -> MaximumLikelihood:
    """Maximise a log-likelihood over log-parameters.

    ``neg_ll_and_grad(log_theta)`` returns the TOTAL negative log-likelihood and its gradient with
    respect to ``log_theta``. The optimiser sees it divided by ``n`` (the number of customers) so
    that its tolerances do not depend on the size of the data. ``hess_inv0`` is BFGS' first
    inverse Hessian of that scaled function (from a pilot fit, say), the identity if not given.
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
    options: dict[str, Any] = {"maxiter": max_iterations, "gtol": gtol}
    if hess_inv0 is not None:
        options["hess_inv0"] = hess_inv0
    result = minimize(scaled, x0, jac=True, method="BFGS", options=options)
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
    x, f, g, hessian = _polish(neg_ll_and_grad, scaled, x, f, g, n, newton_steps)

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
        hessian_log=hessian,
    )


def _polish(neg_ll_and_grad, scaled, x, f, g, n: float, newton_steps: int):
    """The Hessian at ``x`` by central differences of the analytic gradient, then up to
    ``newton_steps`` Newton steps on it: an optimiser stops on a small gradient; Newton steps on
    the Hessian the standard errors need anyway land on the optimum to machine precision. The
    steps are tiny, so the Hessian is not recomputed (its change is below the precision the
    standard errors need). Returns ``(x, f, g, hessian)``, ``f`` and ``g`` per customer."""

    def grad(z: np.ndarray) -> np.ndarray:
        return neg_ll_and_grad(z)[1]

    hessian = numerical_hessian(grad, x)
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
    return x, f, g, hessian


def maximize_log_likelihood_chord(
    neg_ll_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    start: Sequence[float],
    n: float,
    hessian_per_customer: np.ndarray,
    *,
    newton_steps: int = 3,
) -> MaximumLikelihood:
    """Maximise from a pilot fit: Newton steps on a fixed Hessian (the pilot's, per customer)
    with a backtracking line search, each step one pass over the data, converging linearly at
    the rate the pilot's Hessian differs from the data's (a few per cent for a pilot of 20,000
    customers: some 5 passes from the pilot's optimum to machine precision, where BFGS' line
    search, near the optimum, can spend dozens of passes on differences of the likelihood at
    the level of rounding). Then the Hessian of all the data by differences of the analytic
    gradient, for Newton polish and the standard errors (:func:`_polish`)."""
    fixed = hessian_per_customer * n

    def scaled(z: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = neg_ll_and_grad(z)
        if not np.isfinite(f) or not np.all(np.isfinite(g)):
            return 1e300, np.zeros_like(z)
        return f / n, g / n

    chord = maximize_log_likelihood_newton(
        lambda z: (*neg_ll_and_grad(z), fixed), start, n, fallback=False
    )
    x = np.log(chord.params)
    f, g = scaled(x)
    if not (np.max(np.abs(g)) < 1e-6):
        # the pilot's Hessian led nowhere: BFGS from where it got to
        return maximize_log_likelihood(neg_ll_and_grad, list(chord.params), n)
    x, f, g, hessian = _polish(neg_ll_and_grad, scaled, x, f, g, n, newton_steps)
    theta = np.exp(x)
    return MaximumLikelihood(
        params=theta,
        log_likelihood=float(-f * n),
        covariance=_natural_covariance(hessian, theta),
        gradient_norm=float(np.max(np.abs(g))),
        iterations=chord.iterations,
        converged=True,
        message="Newton on a pilot fit's Hessian: " + chord.message,
        hessian_log=hessian,
    )


def newton_direction(g: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``-H^-1 g`` where ``H`` is positive definite; otherwise the same with each eigenvalue of
    ``H`` replaced by its absolute value (bounded away from 0), a descent direction all the
    same."""
    try:
        L = np.linalg.cholesky(H)
        return -np.linalg.solve(L.T, np.linalg.solve(L, g))
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(H)
        floor = 1e-8 * max(float(np.max(np.abs(values))), 1e-12)
        return -vectors @ ((vectors.T @ g) / np.maximum(np.abs(values), floor))


def maximize_log_likelihood_newton(
    neg_ll_grad_hess: Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray | None]],
    start: Sequence[float],
    n: float,
    *,
    max_iterations: int = 100,
    fallback: bool = True,
) -> MaximumLikelihood:
    """Maximise a log-likelihood over log-parameters with its analytic Hessian.

    ``neg_ll_grad_hess(log_theta)`` returns the TOTAL negative log-likelihood, its gradient and
    its Hessian with respect to ``log_theta``; each call is one pass over the data. Newton's
    method with a backtracking line search (Armijo) needs a handful of them where BFGS needs
    dozens; a step is at most a factor ``e^3`` on any parameter, and where the Hessian is not
    positive definite (far from the optimum) its eigenvalues are taken in absolute value. It
    stops when the gradient per customer is below ``1e-10`` or the Newton decrement
    ``g' H^-1 g / 2`` below ``1e-14`` of the log-likelihood, i.e. at the optimum to machine
    precision. If it cannot get there, BFGS continues from where it got to
    (:func:`maximize_log_likelihood`).
    """
    x = np.log(np.asarray(start, dtype=np.float64))
    k = x.shape[0]

    def evaluate(z: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        if np.any(np.abs(z) > LOG_BOUND):
            return np.inf, np.zeros(k), np.eye(k)
        f, g, H = neg_ll_grad_hess(z)
        if H is None:
            raise ValueError("neg_ll_grad_hess returned no Hessian")
        if np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(H)):
            return f / n, g / n, H / n
        return np.inf, np.zeros(k), np.eye(k)

    f, g, H = evaluate(x)
    iterations = 0
    converged = False
    message = "Newton: iteration limit"
    while np.isfinite(f) and iterations < max_iterations:
        step = newton_direction(g, H)
        slope = float(g @ step)
        if np.max(np.abs(g)) < 1e-10 or -slope < 2e-14 * max(abs(f), 1.0):
            converged, message = True, "Newton: converged"
            break
        longest = float(np.max(np.abs(step)))
        if longest > 3.0:
            step = step * (3.0 / longest)
            slope = float(g @ step)
        t = 1.0
        while True:
            f_new, g_new, H_new = evaluate(x + t * step)
            if f_new <= f + 1e-4 * t * slope:
                break
            t *= 0.5
            if t < 1e-8:
                break
        iterations += 1
        if not f_new <= f + 1e-4 * t * slope:
            message = "Newton: line search failed"
            break
        x, f, g, H = x + t * step, f_new, g_new, H_new
    gradient_norm = float(np.max(np.abs(g))) if np.isfinite(f) else np.inf
    if fallback and not converged and not gradient_norm < 1e-8:
        # stuck (a ridge, the box): BFGS from the best point so far
        start_again = [float(v) for v in (np.exp(x) if np.isfinite(f) else start)]
        return maximize_log_likelihood(lambda z: neg_ll_grad_hess(z)[:2], start_again, n)
    theta = np.exp(x)
    return MaximumLikelihood(
        params=theta,
        log_likelihood=float(-f * n),
        covariance=_natural_covariance(H * n, theta),
        gradient_norm=gradient_norm,
        iterations=iterations,
        converged=True,
        message=message,
        hessian_log=H * n,
    )


def to_log_space(
    f: float, g: np.ndarray, H: np.ndarray | None, theta: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Gradient and Hessian w.r.t. ``log theta`` from those w.r.t. ``theta``:
    ``g_log = g theta``, ``H_log = diag(theta) H diag(theta) + diag(g theta)``."""
    g_log = g * theta
    if H is None:
        return f, g_log, None
    return f, g_log, H * np.outer(theta, theta) + np.diag(g_log)


def symmetric(upper: np.ndarray, k: int) -> np.ndarray:
    """A k x k symmetric matrix from its upper triangle, row-major."""
    H = np.zeros((k, k))
    H[np.triu_indices(k)] = upper
    return H + np.triu(H, 1).T


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


def _positive_definite(matrix: np.ndarray | None) -> bool:
    """Whether the Hessian of the negative log-likelihood is positive definite (a proper
    maximum with finite standard errors)."""
    if matrix is None or not np.all(np.isfinite(matrix)):
        return False
    try:
        np.linalg.cholesky((matrix + matrix.T) / 2)
    except np.linalg.LinAlgError:
        return False
    return True


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
        self.hessian_positive_definite_ = _positive_definite(fit.hessian_log)
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


#: a fit without an analytic Hessian on more than twice this many rows starts from a pilot fit
_PILOT_ROWS = 20_000


class PurchaseModel(FittedModel):
    """BG/NBD and Pareto/NBD: fitted on ``(frequency, recency, T)`` condensed to distinct rows.

    A model names its grouped-data class (``grouped``, built from the four arrays), its
    negative log-likelihood and gradient in log parameters (``neg_log_likelihood(z, d)``) and
    its starting point (``initial_params``)."""

    grouped: Any
    neg_log_likelihood: Any
    #: ``(f, g, H)`` in log-parameters, where the model has an analytic Hessian
    neg_log_likelihood_hessian: Any = None

    def initial_params(self, mean_x: float, mean_T: float) -> tuple[float, ...]:
        raise NotImplementedError

    def fit(self, frequency, recency, T, weights=None, initial_params=None, group=None):
        """Maximum likelihood with the analytic gradient (and Hessian, where the model has one).

        ``weights`` counts customers per row (Fader & Hardie's condensed RFM matrix); rows are
        also condensed here to their distinct ``(frequency, recency, T)`` tuples when that pays
        (``group=None``, decided on a sample; ``True`` or ``False`` forces it).
        ``grouped_`` says whether they were, ``distinct_rows_`` how many rows the fit ran on.
        """
        frequency, recency, T, w = rfm_arrays(frequency, recency, T, weights, check=True)
        d = self.grouped(frequency, recency, T, w, group=group)
        if initial_params is None:
            initial_params = self.initial_params(float(np.average(frequency, weights=w)),
                                                 float(np.average(T, weights=w)))
        if self.neg_log_likelihood_hessian is not None:
            fit = maximize_log_likelihood_newton(
                lambda z: self.neg_log_likelihood_hessian(z, d), initial_params, d.n
            )
        else:
            hessian = None
            if d.rows > 2 * _PILOT_ROWS:
                initial_params, hessian = self._pilot(d, initial_params)
            if hessian is not None:
                fit = maximize_log_likelihood_chord(lambda z: self.neg_log_likelihood(z, d),
                                                    initial_params, d.n, hessian)
            else:
                fit = maximize_log_likelihood(lambda z: self.neg_log_likelihood(z, d),
                                              initial_params, d.n)
        self.distinct_rows_ = d.rows
        self.grouped_ = d.grouped
        self._store(fit, d.n)
        return self

    def _pilot(self, d, initial_params) -> tuple[Any, np.ndarray | None]:
        """A starting point and a Hessian per customer from a fit on a random 20,000 of the
        rows: Newton steps on that Hessian from there need a handful of passes over all of them
        (:func:`maximize_log_likelihood_chord`) instead of BFGS' thirty to sixty. Falls back to
        ``initial_params`` (and no Hessian) if the pilot fit fails."""
        # 20,000 customers drawn at random (rows in proportion to the customers they count,
        # so that a pilot on grouped rows is a sample of customers, not of distinct rows)
        rng = np.random.default_rng(0)
        draws = rng.choice(d.rows, _PILOT_ROWS, replace=True, p=d.w / d.w.sum())
        counts = np.bincount(draws, minlength=d.rows)
        idx = np.flatnonzero(counts)
        sub = self.grouped(d.x[idx], d.tx[idx], d.T[idx], counts[idx].astype(np.float64),
                           group=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # a starting point needs no more than a few digits (the full fit finishes it)
            pilot = maximize_log_likelihood(lambda z: self.neg_log_likelihood(z, sub),
                                            initial_params, sub.n, gtol=1e-6, newton_steps=0)
        if not (pilot.converged and np.all(np.isfinite(pilot.params))
                and pilot.hessian_log is not None):
            return initial_params, None
        per_customer = (pilot.hessian_log + pilot.hessian_log.T) / 2 / sub.n
        if not _positive_definite(per_customer):
            return pilot.params, None
        return pilot.params, per_customer

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
