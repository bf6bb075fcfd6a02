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
_MIN_ROWS_PER_THREAD = 20_000
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def threads() -> int:
    """Threads a compiled pass uses: one per core (``HAINA_CLV_THREADS`` overrides)."""
    configured = os.environ.get("HAINA_CLV_THREADS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return max(1, os.cpu_count() or 1)


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
