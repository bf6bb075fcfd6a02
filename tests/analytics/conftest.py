"""Fixtures for the analytics tests: the CDNOW data shipped in the lifetimes wheel, and lifetimes
itself as the reference implementation.

lifetimes 0.11.3 predates the library versions pinned here; the shims below keep it importable:

- ``lifetimes.datasets`` finds its files with ``pkg_resources.resource_filename``; setuptools no
  longer ships ``pkg_resources`` in every environment, so a stand-in resolving paths inside the
  installed package is registered when the real one is missing.
- ``lifetimes.utils`` sets ``pandas.options.mode.chained_assignment``, deprecated in pandas 3
  (a warning only, filtered here).
"""

from __future__ import annotations

import importlib.util
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def _ensure_pkg_resources() -> None:
    if importlib.util.find_spec("pkg_resources") is not None:
        return
    shim = types.ModuleType("pkg_resources")

    def resource_filename(package: str, resource: str) -> str:
        spec = importlib.util.find_spec(package)
        return str(Path(spec.origin).parent / resource)

    shim.resource_filename = resource_filename
    sys.modules["pkg_resources"] = shim


_ensure_pkg_resources()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import lifetimes
    import lifetimes.datasets
    import lifetimes.utils

CALIBRATION_END = "1997-09-30"
OBSERVATION_END = "1998-06-30"


@pytest.fixture(scope="session")
def cdnow_summary() -> pd.DataFrame:
    """The published 2,357-customer CDNOW calibration summary (39 weeks, weekly units)."""
    return lifetimes.datasets.load_cdnow_summary(index_col=[0])


@pytest.fixture(scope="session")
def cdnow_with_monetary() -> pd.DataFrame:
    """The same customers with mean repeat spend ``monetary_value``."""
    return lifetimes.datasets.load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="session")
def cdnow_transactions() -> pd.DataFrame:
    """CDNOW_master: 69,659 orders of 23,570 customers, 1997-01-01 to 1998-06-30."""
    df = lifetimes.datasets.load_dataset("CDNOW_master.txt", sep=r"\s+")
    df["date"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d")
    return df


@pytest.fixture(scope="session")
def cdnow_sample_ids() -> pd.Series:
    """CDNOW_sample.txt maps the 1-in-10 sample's ids (1..2357, used by the published summary)
    to the master ids."""
    sample = lifetimes.datasets.load_dataset(
        "CDNOW_sample.txt",
        header=None,
        sep=r"\s+",
        names=["id_total", "id_sample", "date", "cds", "value"],
    )
    return sample.groupby("id_total")["id_sample"].first()


@pytest.fixture(scope="session")
def lifetimes_twin():
    """``lifetimes_twin(our_fitted_model)``: the lifetimes fitter of the same model carrying the
    same parameters (lifetimes names Gamma-Gamma's ``gamma`` ``v``), for comparing predictions."""
    from haina.analytics.clv.estimators import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter

    classes = {
        BetaGeoFitter: (lifetimes.BetaGeoFitter, ["r", "alpha", "a", "b"]),
        ParetoNBDFitter: (lifetimes.ParetoNBDFitter, ["r", "alpha", "s", "beta"]),
        GammaGammaFitter: (lifetimes.GammaGammaFitter, ["p", "q", "v"]),
    }

    def twin(model):
        cls, names = classes[type(model)]
        fitter = cls()
        fitter.params_ = pd.Series(list(model.params_.values()), index=names)
        if hasattr(fitter, "conditional_expected_number_of_purchases_up_to_time"):
            fitter.predict = (
                fitter.conditional_expected_number_of_purchases_up_to_time
            )  # set by lifetimes' fit
        return fitter

    return twin


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def pytest_configure(config: pytest.Config) -> None:
    # third-party deprecation noise under pandas 3 and duckdb 2 (in ibis' and lifetimes' code)
    config.addinivalue_line(
        "filterwarnings", "ignore:The 'future.infer_string' option is deprecated"
    )
    config.addinivalue_line(
        "filterwarnings", "ignore:The 'mode.chained_assignment' option is deprecated"
    )
    config.addinivalue_line(
        "filterwarnings", "ignore:fetch_arrow_table\\(\\) is deprecated:DeprecationWarning"
    )
    # pyspark 4.0's toPandas under pandas 3
    config.addinivalue_line("filterwarnings", "ignore:The copy keyword is deprecated")

