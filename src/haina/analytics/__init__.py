"""Customer analytics: lifecycle estimators (BG/NBD, Pareto/NBD, Gamma-Gamma), RFM segments,
lifecycle stages and cohorts over order data read through Ibis (DuckDB by default).

The pure library is ``haina.analytics.clv`` (``clv.estimators`` the fitters, ``clv.summary``
transaction log to per-customer summary, ``clv.rfm``, ``clv.cohorts``); the platform's side —
refresh jobs, stored scores, segments, the API — is ``haina.analytics.service``. Nothing heavy is
imported with the package itself.
"""
