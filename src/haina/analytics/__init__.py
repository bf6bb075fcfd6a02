"""Customer analytics: lifecycle estimators (BG/NBD, Pareto/NBD, Gamma-Gamma), RFM segments,
lifecycle stages and cohorts over order data read through Ibis (DuckDB by default).

Import what you need from the submodules: ``haina.analytics.estimators`` (the fitters),
``haina.analytics.summary`` (transaction log to per-customer summary), ``haina.analytics.rfm``,
``haina.analytics.cohorts``. Nothing heavy is imported with the package itself.
"""
