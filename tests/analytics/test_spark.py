"""The Spark path (the ``spark`` extra): the same Ibis expressions on PySpark (``local[*]``) give
the same summaries, holdout tables and cohorts as on DuckDB, and a refresh on the Spark engine
stores the same scores. Skipped, with the reason, where pyspark or Java is missing."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from haina.analytics import service, sources, spark
from haina.analytics.clv import cohorts, summary
from haina.analytics.schemas import RefreshIn
from haina.core.db import make_engine, make_sessionmaker, transaction

from .platform_data import buying_history, new_members, write_orders
from .test_platform_reading import END

REASON = spark.unavailable_reason()
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"the Spark backend cannot run here: {REASON}"),
    pytest.mark.slow,
]


# The JVM's warm-up is most of these tests' time (Spark compiles code for every query): its
# quick JIT compiler only and one garbage collector thread, as for any short-lived JVM. Neither
# changes what the JVM computes.
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


@pytest.fixture(scope="module")
def spark_connection():
    with pytest.MonkeyPatch.context() as env:  # read once, when the JVM starts
        env.setenv("JAVA_TOOL_OPTIONS",
                   f"{os.environ.get('JAVA_TOOL_OPTIONS', '')} {JAVA_OPTIONS}".strip())
        con = spark.connect()
    yield con
    spark.stop()


@pytest.fixture(scope="module")
def cdnow_parquet(cdnow_transactions, tmp_path_factory):
    """The CDNOW log in the columns of an exported transaction file."""
    path = tmp_path_factory.mktemp("spark") / "cdnow.parquet"
    log = cdnow_transactions
    table = pa.table({
        "customer_id": pa.array(log["customer_id"].astype(str), pa.string()),
        "ordered_at": pa.array(log["date"].astype("datetime64[us]"), pa.timestamp("us")),
        "amount": pa.array(log["dollar_value"].astype(float), pa.float64()),
        "amount_minor": pa.array((log["dollar_value"] * 100).round().astype("int64"), pa.int64()),
    }, schema=sources.SCHEMA)
    pq.write_table(table, path)
    return path


def frames(table) -> dict[str, pd.DataFrame]:
    args = ("customer_id", "ordered_at", "amount")
    return {
        "daily": summary.summary_expression(table, *args, observation_end="1997-09-30",
                                            last_gap=True).order_by("customer_id").to_pandas(),
        "weekly": summary.summary_expression(table, *args, freq="W")
        .order_by("customer_id").to_pandas(),
        "holdout": summary.holdout_expression(table, "customer_id", "ordered_at", "1997-09-30",
                                              "1998-06-30", "amount", freq="W")
        .order_by("customer_id").to_pandas(),
        "cohorts": cohorts.cohort_expression(table, "customer_id", "ordered_at", "amount_minor")
        .order_by(["cohort_month", "months_since_first"]).to_pandas(),
    }


def test_duckdb_and_spark_summaries_are_identical(cdnow_parquet, spark_connection):
    on_duckdb = frames(sources.duckdb_table(cdnow_parquet))
    on_spark = frames(spark.read_parquet(spark_connection, cdnow_parquet))
    for name, expected in on_duckdb.items():
        got = on_spark[name]
        assert len(got) == len(expected) > 0, name
        assert list(got.columns) == list(expected.columns), name
        for col in expected.columns:
            if expected[col].dtype.kind in "fiu":
                pd.testing.assert_series_equal(got[col].astype(float), expected[col].astype(float),
                                               check_exact=False, rtol=1e-12, obj=f"{name}.{col}")
            else:
                assert got[col].astype(str).tolist() == expected[col].astype(str).tolist(), col
    assert len(on_duckdb["daily"]) == 23_570


def test_a_refresh_on_the_spark_engine_stores_the_scores_duckdb_would(
        sqlite_template, tmp_path, spark_connection):
    from haina.core.context import Tenant
    from haina.platform import service as platform

    shutil.copyfile(sqlite_template, tmp_path / "haina.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'haina.db'}")
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        t = platform.create_tenant(s, "sparkly", "Sparkly")
    tenant = Tenant(id=t.id, slug=t.slug, currency=t.currency)
    ids = new_members(sessions, tenant, 40)
    write_orders(sessions, tenant, list(zip(*buying_history(tenant.id, ids, end=END),
                                            strict=True)))
    scores = {}
    for engine_name in ("duckdb", "spark"):
        with transaction(sessions) as s:
            job = service.start_refresh(s, tenant, RefreshIn(engine=engine_name,
                                                             observation_end=END))
        assert service.run_job(sessions, job.id) == "succeeded"
        with transaction(sessions) as s:
            run_id = service.get_job(s, tenant, job.id).run_id
            assert service.get_run(s, tenant, run_id).engine == engine_name
            scores[engine_name] = [service.member_scores(s, tenant, m).model_dump(
                exclude={"run_id", "computed_at"}) for m in ids]
    assert scores["spark"] == scores["duckdb"]
    engine.dispose()
