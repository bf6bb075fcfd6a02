"""The customer-lifetime-value library: pure computation over order logs and per-customer
summaries, with no database and no platform code.

- ``estimators``: BG/NBD, Pareto/NBD and Gamma-Gamma fitters (``bgnbd``, ``pnbd``,
  ``gammagamma``, sharing ``_fitting``) and the holdout check;
- ``summary``: transaction log to per-customer summary (Ibis; DuckDB by default);
- ``rfm``: RFM scores, segments and lifecycle stages; ``cohorts``: monthly acquisition cohorts;
- ``simulate``: customers drawn from each estimator's generative process; ``plots``: charts.

Nothing here imports SQLAlchemy or another haina module (a test keeps it so); the platform's
side (reading purchases, storing scores, jobs) lives in ``haina.analytics``. Nothing heavy is
imported with the package itself.
"""
