"""``haina analytics import``: an outside order history, checked whole, stored for a merchant
(replacing an earlier import of the same file) or written to Parquet; bad input is one line on
stderr and exit status 1. The commands run ``haina.cli.main`` in this process
(``support.run_cli``: a new interpreter costs ~2 s of CPU in imports), but one import to Parquet,
which runs ``python -m haina.cli analytics import`` itself (docs/testing.md, "The command line
in tests")."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from sqlalchemy import func, select
from support import run_cli
from typer.testing import CliRunner

from haina.analytics import service
from haina.analytics.cli import app as analytics_app
from haina.analytics.models import ImportedTransaction
from haina.analytics.schemas import RefreshIn
from haina.core.db import transaction


@pytest.fixture
def haina(monkeypatch, capsys):
    """``haina analytics ARGS`` in this process against ``url``: a CompletedProcess."""
    def run(*args: str, url: str = "sqlite:///unused.db") -> subprocess.CompletedProcess:
        code, out, err = run_cli(url, ["analytics", *args], monkeypatch, capsys)
        return subprocess.CompletedProcess(args, code, out, err)
    return run


def haina_process(*args: str, url: str = "sqlite:///unused.db") -> subprocess.CompletedProcess:
    """The same through a new interpreter: the entry point itself."""
    return subprocess.run([sys.executable, "-m", "haina.cli", "analytics", *args],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "HAINA_DATABASE_URL": url})


def outside_history(path, customers: int = 40, seed: int = 3) -> pd.DataFrame:
    """A CSV export of another shop system: its own column names, text dates, some returns."""
    rnd = random.Random(seed)
    rows = []
    for c in range(customers):
        day = rnd.randrange(0, 200)
        while day < 400:
            rows.append({"Kunde": f"C-{c:04d}", "Bestelldatum": str(dt.date(2024, 1, 1)
                                                                   + dt.timedelta(days=day)),
                         "Summe": f"{rnd.randrange(1000, 40000) / 100:.2f}"})
            if rnd.random() < 0.1:
                break
            day += 1 + int(rnd.expovariate(1 / 25))
    rows.append({"Kunde": "C-0000", "Bestelldatum": "2024-03-03", "Summe": "-19.90"})  # a return
    df = pd.DataFrame(rows)
    df.to_csv(path, index=False)
    return df


def test_a_csv_imported_for_a_merchant_is_stored_once_and_refreshes_its_customers(
        db_url, sessions, tenant, tmp_path, haina):
    csv = tmp_path / "shop-export.csv"
    df = outside_history(csv)
    args = ("import", str(csv), "--customer-col", "Kunde", "--date-col", "Bestelldatum",
            "--amount-col", "Summe", "--tenant", tenant.slug)
    done = haina(*args, url=db_url)
    assert done.returncode == 0, done.stderr
    purchases = len(df) - 1
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith(f"imported {purchases:,} purchases of 40 customers")
    assert "skipped 1 row with amount <= 0" in done.stdout
    assert haina(*args, url=db_url).returncode == 0  # the same file again: replaced, not added
    with transaction(sessions) as s:
        stored = s.scalar(select(func.count()).select_from(ImportedTransaction)
                          .where(ImportedTransaction.tenant_id == tenant.id))
        total = s.scalar(select(func.sum(ImportedTransaction.amount_minor))
                         .where(ImportedTransaction.tenant_id == tenant.id))
        job = service.start_refresh(s, tenant, RefreshIn(source="import", freq="W",
                                                         observation_end="2025-02-15"))
    assert stored == purchases
    assert total == round(df["Summe"].astype(float).clip(lower=0).sum() * 100)
    assert service.run_job(sessions, job.id) == "succeeded"
    with transaction(sessions) as s:
        scores = service.member_scores(s, tenant, "C-0001")
        run = service.get_run(s, tenant, service.get_job(s, tenant, job.id).run_id)
    assert run.source == "import" and run.customers == 40 and run.unit == "week"
    assert scores.member_id == "C-0001"


def test_import_to_parquet_rounds_half_even_and_reads_typed_columns(tmp_path, haina):
    src = tmp_path / "orders.parquet"
    pd.DataFrame({
        "customer": [1001, 1001, 1002, 1003],
        "at": pd.to_datetime(["2024-01-05 10:00", "2024-02-10 18:30", "2024-01-20 00:00",
                              "2024-03-01 00:00"]),
        "total": ["50.505", "50.515", "0.125", "0"],
    }).to_parquet(src)
    out = tmp_path / "normalised.parquet"
    done = haina_process("import", str(src), "--customer-col", "customer", "--date-col", "at",
                         "--amount-col", "total", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing from the imports either
    assert "imported 3 purchases of 2 customers, 2024-01-05 to 2024-02-10" in done.stdout
    got = pd.read_parquet(out)
    assert list(got.columns) == ["customer_id", "ordered_at", "amount", "amount_minor"]
    assert got["customer_id"].tolist() == ["1001", "1001", "1002"]
    assert got["amount_minor"].tolist() == [5050, 5052, 12]  # half-even: .5 goes to the even cent
    summary = haina("summarize", str(out), "--customer-col", "customer_id",
                    "--date-col", "ordered_at", "--amount-col", "amount")
    assert summary.returncode == 0, summary.stderr


@pytest.mark.parametrize(("rows", "options", "message"), [
    ("a,2024-01-05,10\n", {"--date-col": "when"},
     "has no date column 'when' (columns: customer, day, total)"),
    ("a,2024-01-05,10\nb,2024-02-30,5\n", {},
     "data row 2: cannot read '2024-02-30' in column 'day' as a date"),
    ("a,05/01/2024,10\n", {"--date-format": "%Y-%m-%d"},
     "data row 1: cannot read '05/01/2024' in column 'day' as a date"),
    ("a,2024-01-05,12 RMB\n", {}, "data row 1: '12 RMB' in column 'total' is not a decimal"),
    (",2024-01-05,12\n", {}, "data row 1: no customer id in column 'customer'"),
    ("a,2024-01-05,12\n", {"--out": None}, "give either --tenant SLUG"),
])
def test_bad_input_is_one_line_on_stderr_and_exit_1(tmp_path, rows, options, message):
    csv = tmp_path / "bad.csv"
    csv.write_text("customer,day,total\n" + rows)
    out = tmp_path / "out.parquet"
    given = {"--customer-col": "customer", "--date-col": "day", "--amount-col": "total",
             "--out": str(out), **options}
    done = CliRunner().invoke(analytics_app, [
        "import", str(csv),
        *[part for name, value in given.items() if value is not None for part in (name, value)]])
    assert done.exit_code == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert done.stdout == "" and not out.exists()


def test_importing_for_an_unknown_merchant_or_a_missing_file_is_one_line(sqlite_template,
                                                                        tmp_path, haina):
    shutil.copyfile(sqlite_template, tmp_path / "haina.db")
    db_url = f"sqlite:///{tmp_path / 'haina.db'}"
    csv = tmp_path / "orders.csv"
    outside_history(csv, customers=2)
    unknown = haina("import", str(csv), "--customer-col", "Kunde", "--date-col", "Bestelldatum",
                    "--amount-col", "Summe", "--tenant", "nobody", url=db_url)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "error: no tenant 'nobody'"
    missing = haina("import", str(tmp_path / "nope.csv"), "--tenant", "nobody", url=db_url)
    assert missing.returncode == 1 and "no such file" in missing.stderr
