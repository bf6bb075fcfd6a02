"""Which implementation of the per-customer passes runs: compiled (Numba) or NumPy.

The compiled kernels (:mod:`._compiled`) come with the ``analytics`` extra; without Numba, or
with ``HAINA_CLV_NUMBA=0`` in the environment, or inside :func:`numpy_only`, every model runs
its vectorised NumPy code instead, with the same results (to rounding) and the same API.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

_compiled: ModuleType | None
try:  # the analytics extra installs Numba; the NumPy code below needs nothing more
    from . import _compiled
except ImportError:  # pragma: no cover - depends on the environment
    _compiled = None


def _warm_up(kernels: ModuleType) -> None:
    """Call each kernel once on two rows, with the argument types the models pass.

    The first call of compiled code in a process starts Numba's machinery (some 0.5-1 s on this
    project's machine, whatever the data) and loads the kernels from the on-disk cache (or, the
    first time after an install, compiles them, some 20 s); doing it here makes it part of
    importing the estimators, once per process, rather than of the first fit."""
    x = np.array([0.0, 2.0])
    tx = np.array([0.0, 1.5])
    T = np.array([3.0, 4.0])
    w = np.ones(2)
    kernels.bgnbd_sums(0, 2, x, tx, T, w, np.ones(3), np.ones(3), 0.5, 1.0, 1.0)
    kernels.gamma_gamma_sums(0, 2, x + 1.0, T, w, 1.0)
    table = kernels.pnbd_table(0.5, 0.5, True, 3, 3)
    kernels.pnbd_sums(0, 2, x, tx, T, w, 0.5, 2.0, 0.5, 1.0, 0.98, 100, table,
                      np.zeros(2, dtype=np.int8))
    G = np.zeros((5, 2))
    kernels.pnbd_points(0, 2, x, tx, 0.5, 2.0, 0.5, 1.0, 0.98, 100, table, G,
                        np.zeros(2, dtype=np.int8))
    index = np.arange(2, dtype=np.int64)
    kernels.pnbd_point_sums(0, 2, x, tx, T, w, index, index[::-1].copy(), G, 0.5, 2.0, 0.5, 1.0)


if _compiled is not None:
    try:
        _warm_up(_compiled)
    except Exception:  # pragma: no cover - a broken Numba install: NumPy does the work
        _compiled = None

_enabled = os.environ.get("HAINA_CLV_NUMBA", "1").strip().lower() not in ("0", "false", "no")


def compiled() -> ModuleType | None:
    """The compiled kernels' module, or None when the NumPy code is to run."""
    return _compiled if _enabled else None


def available() -> bool:
    """Numba is installed (whether or not it is switched off)."""
    return _compiled is not None


@contextmanager
def numpy_only() -> Iterator[None]:
    """Run the NumPy code inside the block (tests compare both paths)."""
    global _enabled
    before = _enabled
    _enabled = False
    try:
        yield
    finally:
        _enabled = before


#: rows below which a pass runs on the calling thread (a thread hand-off costs more)
_MIN_ROWS_PER_THREAD = 8_192
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def threads() -> int:
    """Threads a compiled pass uses: one per core (``HAINA_CLV_THREADS`` overrides)."""
    configured = os.environ.get("HAINA_CLV_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, os.cpu_count() or 1)


def _forget_pool() -> None:
    """A forked child has none of its parent's threads: it starts a pool of its own."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < workers:  # noqa: SLF001 - grow once
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="haina-clv")
        return _pool


def run(kernel: Callable[..., np.ndarray], rows: int, *args: Any) -> np.ndarray:
    """``kernel(lo, hi, *args)`` over rows ``0 .. rows-1``, cut into one slice per thread; the
    slices' sums added in order. The kernels release the GIL, so the slices run in parallel."""
    parts = min(threads(), max(1, rows // _MIN_ROWS_PER_THREAD))
    if parts == 1:
        return kernel(0, rows, *args)
    bounds = np.linspace(0, rows, parts + 1).astype(np.int64)
    pool = _executor(parts)
    futures = [
        pool.submit(kernel, int(bounds[i]), int(bounds[i + 1]), *args) for i in range(parts)
    ]
    total = futures[0].result().copy()
    for future in futures[1:]:
        total += future.result()
    return total
