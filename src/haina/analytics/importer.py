"""Importing an order history from elsewhere (a CSV or Parquet export of another shop system)
so that a merchant can analyse it: ``haina analytics import``.

The file is read by DuckDB into a scratch DuckDB database on disk (so a file larger than memory
is fine), checked whole, and only then written:

- to the tenant's ``analytics_transactions`` (``--tenant SLUG``), from where a refresh with
  ``source: "import"`` scores its customers; rows of the same ``batch`` (by default the file's
  name) replace those of an earlier import, so importing a file again does not count it twice;
- or to a Parquet file (``--out FILE.parquet``) with the columns of
  :mod:`haina.analytics.sources` (``customer_id, ordered_at, amount, amount_minor``), which
  ``haina analytics summarize`` reads.

Rules: every row needs a customer id, a date and an amount. Dates are timestamps, dates or text
DuckDB reads as one (ISO 8601), or text in ``--date-format`` (strptime, e.g. ``%d/%m/%Y``);
times without a zone are taken as UTC. Amounts are decimal numbers in major units (``129.90``),
rounded half-even to the currency's minor unit (the one rounding point). Rows with an amount of
zero or less (returns, voids) are not purchases: they are skipped and counted. The first bad
value stops the import with its column, data row number (1 = the first row after the header)
and value; nothing is written then.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlalchemy import delete, insert
from sqlalchemy.orm import Session, sessionmaker

from haina.core.context import Tenant
from haina.core.db import transaction, utcnow
from haina.core.money import exponent

from .models import ImportedTransaction

ROWS_PER_WRITE = 20_000
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


class BadImportFile(ValueError):
    """Bad input file: reported as one line."""


@dataclass
class ImportResult:
    rows: int            # purchases imported
    skipped: int         # rows with amount <= 0
    customers: int
    first: dt.datetime | None
    last: dt.datetime | None
    batch: str | None = None


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Source:
    """The file loaded into a scratch DuckDB database, with the checked, normalised rows as
    the view ``purchases(line, customer_id, ordered_at, amount, amount_minor)``."""

    def __init__(self, path: Path, customer_col: str, date_col: str, amount_col: str, *,
                 currency: str, date_format: str | None, scratch: Path) -> None:
        if not path.exists():
            raise BadImportFile(f"no such file: {path}")
        if path.is_dir():
            raise BadImportFile(f"{path} is a directory, not a CSV or Parquet file")
        name = path.name.lower()
        if name.endswith(PARQUET_SUFFIXES):
            reader = f"read_parquet({_literal(str(path))})"
        elif name.endswith(CSV_SUFFIXES):
            # all text: the checks below name the first bad value, where DuckDB's sniffer
            # would stop at it with a type error
            reader = f"read_csv({_literal(str(path))}, all_varchar = true)"
        else:
            raise BadImportFile(f"{path}: expected a .csv or .parquet file")
        self.con = duckdb.connect(str(scratch / "import.duckdb"))
        try:
            self.con.execute("SET TimeZone = 'UTC'")
        except duckdb.Error:  # pragma: no cover - ICU ships with DuckDB's wheels
            pass
        try:
            self.con.execute(f"CREATE TABLE src AS SELECT * FROM {reader}")
        except duckdb.Error as exc:
            raise BadImportFile(f"{path}: not a readable file ({_first_line(exc)})") from None
        types = dict(self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'src' ORDER BY ordinal_position").fetchall())
        for role, col in (("customer", customer_col), ("date", date_col),
                          ("amount", amount_col)):
            if col not in types:
                raise BadImportFile(f"{path.name} has no {role} column {col!r} "
                                   f"(columns: {', '.join(types)})")
        self.path = path
        self.columns = (customer_col, date_col, amount_col)
        date = self._date_expression(date_col, types[date_col], date_format)
        amount = self._amount_expression(amount_col, types[amount_col])
        scale = 10 ** exponent(currency)
        self.con.execute(f"""
            CREATE VIEW parsed AS SELECT
                rowid + 1 AS line,
                CAST({_quote(customer_col)} AS VARCHAR) AS customer_id,
                {_quote(date_col)} AS raw_date, {date} AS ordered_at,
                {_quote(amount_col)} AS raw_amount, {amount} AS amount
            FROM src""")
        self._check()
        self.con.execute(f"""
            CREATE VIEW purchases AS SELECT line, customer_id, ordered_at,
                CAST(amount AS DOUBLE) AS amount,
                CAST(round_even(amount * {scale}, 0) AS BIGINT) AS amount_minor
            FROM parsed WHERE amount > 0""")

    @staticmethod
    def _date_expression(col: str, kind: str, date_format: str | None) -> str:
        q = _quote(col)
        kind = kind.upper()
        if date_format is not None:
            return f"TRY_STRPTIME(CAST({q} AS VARCHAR), {_literal(date_format)})"
        if kind == "TIMESTAMP WITH TIME ZONE":
            return f"CAST({q} AS TIMESTAMP)"  # in UTC (the session's zone)
        if kind.startswith(("TIMESTAMP", "DATE")):
            return f"CAST({q} AS TIMESTAMP)"
        if kind == "VARCHAR":
            return f"CAST(TRY_CAST({q} AS TIMESTAMPTZ) AS TIMESTAMP)"
        raise BadImportFile(f"column {col!r} holds {kind.lower()} values, not dates: pass "
                           "--date-format (e.g. %Y%m%d for 20240131)")

    @staticmethod
    def _amount_expression(col: str, kind: str) -> str:
        q = _quote(col)
        kind = kind.upper()
        if kind == "VARCHAR":
            return f"TRY_CAST(TRIM({q}) AS DECIMAL(38, 9))"
        if kind.startswith(("DECIMAL", "DOUBLE", "FLOAT", "REAL", "INTEGER", "BIGINT", "SMALLINT",
                            "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT")):
            return f"CAST({q} AS DECIMAL(38, 9))"
        raise BadImportFile(f"column {col!r} holds {kind.lower()} values, not amounts")

    def _check(self) -> None:
        customer_col, date_col, amount_col = self.columns
        amount_hint = "is not a decimal amount such as 129.90"
        date_hint = "(pass --date-format, e.g. %d/%m/%Y)"
        checks = [
            ("customer_id IS NULL OR TRIM(customer_id) = ''",
             f"no customer id in column {customer_col!r}", None),
            ("raw_date IS NULL", f"no date in column {date_col!r}", None),
            ("ordered_at IS NULL", f"cannot read {{value}} in column {date_col!r} as a date "
             + date_hint, "raw_date"),
            ("raw_amount IS NULL", f"no amount in column {amount_col!r}", None),
            ("amount IS NULL", f"{{value}} in column {amount_col!r} {amount_hint}", "raw_amount"),
            ("length(customer_id) > 200",
             f"the customer id in column {customer_col!r} is longer than 200 characters", None),
        ]
        for condition, message, raw in checks:
            found = self.con.execute(
                f"SELECT line, {raw or 'NULL'} FROM parsed WHERE {condition} "
                "ORDER BY line LIMIT 1").fetchone()
            if found:
                value = repr(str(found[1])) if raw else ""
                raise BadImportFile(f"{self.path.name}, data row {found[0]}: "
                                   + message.replace("{value}", value))

    def totals(self) -> tuple[int, int, int, dt.datetime | None, dt.datetime | None]:
        totals = self.con.execute(
            "SELECT count(*), count(DISTINCT customer_id), min(ordered_at), max(ordered_at) "
            "FROM purchases").fetchone()
        invalid = self.con.execute("SELECT count(*) FROM parsed WHERE amount <= 0").fetchone()
        assert totals is not None and invalid is not None  # aggregates: always one row
        rows, customers, first, last = totals
        return int(rows), int(invalid[0]), int(customers), first, last

    def batches(self, size: int):
        """(line, customer_id, ordered_at, amount_minor) tuples, ``size`` at a time."""
        result = self.con.execute(
            "SELECT line, customer_id, ordered_at, amount_minor FROM purchases ORDER BY line")
        while rows := result.fetchmany(size):
            yield rows

    def close(self) -> None:
        self.con.close()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None else None


Progress = Callable[[int, int], None]


def import_for_tenant(sessions: sessionmaker[Session], tenant: Tenant, path: Path,
                      customer_col: str, date_col: str, amount_col: str, *,
                      currency: str | None = None, date_format: str | None = None,
                      batch: str | None = None, progress: Progress | None = None
                      ) -> ImportResult:
    """Check the file, then replace the tenant's rows of ``batch`` with its purchases, in one
    transaction. ``progress(done, total)`` follows the writing."""
    currency = (currency or tenant.currency).upper()
    exponent(currency)
    batch = (batch or path.name)[:100]
    with tempfile.TemporaryDirectory(prefix="haina-import-") as scratch:
        source = _Source(path, customer_col, date_col, amount_col, currency=currency,
                         date_format=date_format, scratch=Path(scratch))
        try:
            rows, skipped, customers, first, last = source.totals()
            now = utcnow()
            done = 0
            with transaction(sessions) as session:
                session.execute(delete(ImportedTransaction).where(
                    ImportedTransaction.tenant_id == tenant.id,
                    ImportedTransaction.batch == batch))
                for chunk in source.batches(ROWS_PER_WRITE):
                    values = [
                        {"tenant_id": tenant.id, "batch": batch, "line": line,
                         "customer_id": customer, "ordered_at": _utc(at), "amount_minor": minor,
                         "currency": currency, "imported_at": now}
                        for line, customer, at, minor in chunk
                    ]
                    if values:
                        session.execute(insert(ImportedTransaction), values)
                    done += len(values)
                    if progress is not None:
                        progress(done, rows)
        finally:
            source.close()
    return ImportResult(rows, skipped, customers, _utc(first), _utc(last), batch)


def import_to_parquet(path: Path, out: Path, customer_col: str, date_col: str, amount_col: str,
                      *, currency: str = "CNY", date_format: str | None = None) -> ImportResult:
    """Check the file and write its purchases to the Parquet file ``out``."""
    currency = currency.upper()
    exponent(currency)
    if out.exists() and out.is_dir():
        raise BadImportFile(f"--out {out} is a directory")
    if not out.name.lower().endswith(PARQUET_SUFFIXES):
        raise BadImportFile(f"--out {out}: expected a .parquet file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="haina-import-") as scratch:
        source = _Source(path, customer_col, date_col, amount_col, currency=currency,
                         date_format=date_format, scratch=Path(scratch))
        try:
            rows, skipped, customers, first, last = source.totals()
            source.con.execute(
                "COPY (SELECT customer_id, ordered_at, amount, amount_minor FROM purchases "
                f"ORDER BY line) TO {_literal(str(out))} (FORMAT parquet)")
        finally:
            source.close()
    return ImportResult(rows, skipped, customers, _utc(first), _utc(last))
