"""``haina analytics``: fit lifecycle models and summarise transaction logs from the terminal.

::

    haina analytics fit --summary summary.csv --model bgnbd|pnbd|gg [--json] [--plot DIR]
    haina analytics summarize orders.csv --customer-col customer_id --date-col date \\
        [--amount-col amount] [--freq D|W] [--calibration-end DATE] [--observation-end DATE] \\
        [--out summary.csv]
    haina analytics import FILE --customer-col C --date-col D --amount-col A \\
        (--tenant SLUG | --out FILE.parquet) [--currency CNY] [--date-format FMT] [--batch NAME]
    haina analytics refresh --tenant SLUG [--model bgnbd|pnbd] [--freq D|W] \\
        [--source orders|import] [--engine duckdb|spark] [--json]

Also runnable as ``python -m haina.analytics.cli``. Bad input (a missing file or column, an
unknown model) prints one line on stderr and exits with status 1.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Customer analytics: lifecycle models (BG/NBD, Pareto/NBD, Gamma-Gamma) and summaries.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

MODEL_NAMES = ("bgnbd", "pnbd", "gg")
TRANSACTION_COLUMNS = ("frequency", "recency", "T")


class UserError(Exception):
    """Bad input: reported as one line on stderr, exit status 1."""


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(str(message).split())}\n")
    raise typer.Exit(1)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Bad input ends the command with one line on stderr and exit 1, never a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except ImportError as exc:
        _fail(_missing_extra(exc))
    except _platform_errors() as exc:
        _fail(_problem_message(exc))
    except _user_errors() as exc:
        _fail(_message(exc))


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the input was wrong, not the program."""
    errors: list[type[BaseException]] = [UserError, OSError, ValueError, KeyError, TypeError]
    try:
        import duckdb

        errors.append(duckdb.Error)
    except ImportError:  # pragma: no cover - duckdb comes with the analytics extra
        pass
    try:
        from ibis.common.exceptions import IbisError

        errors.append(IbisError)
    except ImportError:  # pragma: no cover
        pass
    try:
        from .clv.estimators import ConvergenceError

        errors.append(ConvergenceError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(errors)


def _missing_extra(exc: ImportError) -> str:
    missing = exc.name or exc
    return (
        f"{missing} is not installed: install the analytics extra, pip install 'haina[analytics]'"
    )


def _message(exc: BaseException) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    return str(exc) or type(exc).__name__


def _read_summary(path: Path, model: str):
    """The summary's columns as arrays, from ``frequency, recency, T[, monetary_value]`` or from
    lifetimes' calibration names (``frequency_cal``, ...)."""
    import pandas as pd

    if not path.exists():
        raise UserError(f"no such file: {path}")
    if path.is_dir():
        raise UserError(f"{path} is a directory, not a CSV file")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV file ({' '.join(str(exc).split())})") from None
    suffix = "" if "frequency" in df.columns else ("_cal" if "frequency_cal" in df.columns else "")
    needed = ["frequency"] + (["monetary_value"] if model == "gg" else ["recency", "T"])
    missing = [c + suffix for c in needed if c + suffix not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column(s) {', '.join(missing)} "
            f"(has {', '.join(map(str, df.columns))})"
        )
    columns = {}
    for name in ("frequency", "recency", "T", "monetary_value"):
        if name + suffix in df.columns:
            values = pd.to_numeric(df[name + suffix], errors="coerce")
            if values.isna().any():
                raise UserError(f"{path}: column {name + suffix} has missing or non-numeric values")
            columns[name] = values.to_numpy(dtype=float)
    holdout = None
    if {"frequency_holdout", "duration_holdout"} <= set(df.columns) and set(
        TRANSACTION_COLUMNS
    ) <= set(columns):
        holdout = {
            "frequency_cal": columns["frequency"],
            "recency_cal": columns["recency"],
            "T_cal": columns["T"],
            "frequency_holdout": pd.to_numeric(df["frequency_holdout"], errors="coerce").to_numpy(
                float
            ),
            "duration_holdout": pd.to_numeric(df["duration_holdout"], errors="coerce").to_numpy(
                float
            ),
        }
    return columns, holdout


def _fit(model: str, columns: dict):
    from .clv.estimators import MODELS, ConvergenceWarning, GammaGammaFitter, PurchaseModel

    fitter = MODELS[model]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        started = time.perf_counter()
        if isinstance(fitter, GammaGammaFitter):  # model == "gg"
            fitter.fit(columns["frequency"], columns["monetary_value"])
        else:
            assert isinstance(fitter, PurchaseModel)
            fitter.fit(columns["frequency"], columns["recency"], columns["T"])
        seconds = time.perf_counter() - started
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            sys.stderr.write(f"warning: {' '.join(str(warning.message).split())}\n")
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return fitter, seconds


@app.command()
def fit(
    summary: Annotated[
        Path | None,
        typer.Option("--summary", help="CSV with frequency, recency, T[, monetary_value]"),
    ] = None,
    model: Annotated[str, typer.Option("--model", help="bgnbd, pnbd or gg")] = "bgnbd",
    as_json: Annotated[bool, typer.Option("--json", help="print only a JSON object")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="write PNG and SVG charts into this directory")
    ] = None,
    freq: Annotated[
        str, typer.Option("--freq", help="time unit of recency and T for CLV: D, W, M or H")
    ] = "D",
    months: Annotated[float, typer.Option("--months", help="CLV horizon in months (charts)")] = 12,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", help="monthly discount rate (charts)")
    ] = 0.01,
) -> None:
    """Fit a model to a customer summary and print its parameters."""
    with _one_line_errors():
        if summary is None:
            raise UserError("--summary FILE.csv is required")
        model = model.strip().lower()
        if model not in MODEL_NAMES:
            raise UserError(f"unknown model {model!r}: choose bgnbd, pnbd or gg")
        from .clv.estimators import PERIODS_PER_MONTH

        if freq not in PERIODS_PER_MONTH:
            raise UserError(f"unknown --freq {freq!r}: choose D, W, M or H")
        columns, holdout = _read_summary(summary, model)
        fitter, seconds = _fit(model, columns)
        written = (
            _plots(plot, model, fitter, columns, holdout, freq, months, discount_rate)
            if plot
            else []
        )
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "model": model,
                    "params": fitter.params_,
                    "log_likelihood": fitter.log_likelihood_,
                    "n": fitter.n_,
                    "seconds": round(seconds, 6),
                }
            )
            + "\n"
        )
        return
    _print_fit(model, fitter, seconds, written)


def _print_fit(model: str, fitter, seconds: float, written: list[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    names = {"bgnbd": "BG/NBD", "pnbd": "Pareto/NBD", "gg": "Gamma-Gamma"}
    table = Table(title=f"{names[model]} — {fitter.n_} customers")
    table.add_column("parameter")
    table.add_column("estimate", justify="right")
    table.add_column("std. error", justify="right")
    for name, value in fitter.params_.items():
        table.add_row(name, f"{value:.6g}", f"{fitter.standard_errors_[name]:.4g}")
    console = Console()
    console.print(table)
    console.print(f"log-likelihood {fitter.log_likelihood_:.4f}, fitted in {seconds:.3f} s")
    if model == "gg" and fitter.degeneracy():
        console.print("[bold yellow]degenerate fit[/]: " + "; ".join(fitter.degeneracy())
                      + " — a refresh would not serve its spend predictions (docs/analytics.md)")
    for path in written:
        console.print(f"wrote {path}")


def _plots(
    directory: Path,
    model: str,
    fitter,
    columns: dict,
    holdout,
    freq: str,
    months: float,
    discount_rate: float,
) -> list[Path]:
    from .clv import plots
    from .clv.estimators import BetaGeoFitter, calibration_vs_holdout_purchases

    if directory.exists() and not directory.is_dir():
        raise UserError(f"--plot {directory}: not a directory")
    written: list[Path] = []
    has_rft = set(TRANSACTION_COLUMNS) <= set(columns)
    transaction_model = fitter if model != "gg" else None
    if transaction_model is not None:
        written += plots.p_alive_vs_recency(
            transaction_model, columns["frequency"], columns["recency"], columns["T"], directory
        )
    if model == "gg" and has_rft:
        # CLV needs a purchase model too: BG/NBD on the same customers
        transaction_model = BetaGeoFitter().fit(
            columns["frequency"], columns["recency"], columns["T"]
        )
        clv = fitter.customer_lifetime_value(
            transaction_model,
            columns["frequency"],
            columns["recency"],
            columns["T"],
            columns["monetary_value"],
            time=months,
            discount_rate=discount_rate,
            freq=freq,
        )
        written += plots.clv_distribution(clv, directory, months=months, unit=freq)
    if holdout is not None and transaction_model is not None:
        rows = calibration_vs_holdout_purchases(transaction_model, holdout)
        written += plots.holdout_fit(rows, directory)
    return written


@app.command()
def summarize(
    transactions: Annotated[Path, typer.Argument(help="transaction log: CSV or Parquet")],
    customer_col: Annotated[
        str, typer.Option("--customer-col", help="customer id column")
    ] = "customer_id",
    date_col: Annotated[str, typer.Option("--date-col", help="order date/time column")] = "date",
    amount_col: Annotated[
        str | None, typer.Option("--amount-col", help="order amount column")
    ] = None,
    freq: Annotated[str, typer.Option("--freq", help="period: D (days) or W (weeks)")] = "D",
    freq_multiplier: Annotated[
        float, typer.Option("--freq-multiplier", help="divide periods by this")
    ] = 1,
    calibration_end: Annotated[
        str | None, typer.Option("--calibration-end", help="last day of calibration")
    ] = None,
    observation_end: Annotated[
        str | None, typer.Option("--observation-end", help="last day observed")
    ] = None,
    date_format: Annotated[
        str | None, typer.Option("--date-format", help="strptime format of the dates")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="write the summary to this CSV")] = None,
    rows: Annotated[int, typer.Option("--rows", help="rows to show without --out")] = 20,
) -> None:
    """Summarise a transaction log into per-customer frequency, recency, T and monetary value."""
    with _one_line_errors():
        if freq not in ("D", "W"):
            raise UserError(f"unknown --freq {freq!r}: choose D or W")
        if not transactions.exists():
            raise UserError(f"no such file: {transactions}")
        from .clv import summary as summaries

        started = time.perf_counter()
        if calibration_end is not None:
            df = summaries.calibration_and_holdout_data(
                transactions,
                customer_col,
                date_col,
                calibration_end,
                observation_end,
                amount_col,
                freq=freq,
                freq_multiplier=freq_multiplier,
                date_format=date_format,
            )
        else:
            df = summaries.summary_data_from_transaction_data(
                transactions,
                customer_col,
                date_col,
                amount_col,
                observation_end=observation_end,
                freq=freq,
                freq_multiplier=freq_multiplier,
                date_format=date_format,
            )
        seconds = time.perf_counter() - started
        if out is not None:
            df.to_csv(out)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if out is not None:
        console.print(f"wrote {len(df)} customers to {out} in {seconds:.2f} s")
        return
    table = Table(title=f"{len(df)} customers", caption=f"summarised in {seconds:.2f} s")
    table.add_column(str(df.index.name or "customer"))
    for col in df.columns:
        table.add_column(col, justify="right")
    for key, row in df.head(rows).iterrows():
        table.add_row(str(key), *[f"{v:.4g}" for v in row.to_numpy(float)])
    console.print(table)


def _platform_sessions():
    """Sessions on the platform database (HAINA_DATABASE_URL), refusing one that is behind."""
    from haina.core.config import get_settings
    from haina.core.db import make_engine, make_sessionmaker
    from haina.core.schema import ensure_current

    settings = get_settings()
    engine = make_engine(settings.database_url, echo=settings.echo_sql)
    ensure_current(engine)
    return make_sessionmaker(engine)


def _tenant(sessions, slug: str):
    from haina.core.db import transaction
    from haina.platform import service as platform

    with transaction(sessions) as session:
        return platform.tenant_for_slug(session, slug)


def _platform_errors() -> tuple[type[BaseException], ...]:
    from haina.core.errors import Problem
    from haina.core.schema import SchemaBehind

    return (Problem, SchemaBehind)


def _problem_message(exc: BaseException) -> str:
    return getattr(exc, "detail", None) or str(exc)


def _progress_bar():
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="order history: CSV or Parquet")],
    customer_col: Annotated[
        str, typer.Option("--customer-col", help="customer id column")
    ] = "customer_id",
    date_col: Annotated[str, typer.Option("--date-col", help="order date/time column")] = "date",
    amount_col: Annotated[
        str, typer.Option("--amount-col", help="order amount column (major units)")
    ] = "amount",
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="store for this merchant (slug)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="write a Parquet file instead")
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="currency of the amounts (default: the "
                                 "merchant's; CNY with --out)")
    ] = None,
    date_format: Annotated[
        str | None, typer.Option("--date-format", help="strptime format, e.g. %d/%m/%Y")
    ] = None,
    batch: Annotated[
        str | None, typer.Option("--batch", help="name replacing an earlier import (default: "
                                 "the file's name)")
    ] = None,
) -> None:
    """Import an order history from elsewhere, for a merchant (--tenant) or into a Parquet file
    (--out), checking every row first."""
    with _one_line_errors():
        if (tenant is None) == (out is None):
            raise UserError("give either --tenant SLUG (store it for the merchant's refresh) or "
                            "--out FILE.parquet")
        from . import importer

        if out is not None:
            result = importer.import_to_parquet(
                file, out, customer_col, date_col, amount_col,
                currency=currency or "CNY", date_format=date_format,
            )
            where = str(out)
        else:
            if not file.exists():
                raise UserError(f"no such file: {file}")
            assert tenant is not None  # exactly one of --tenant and --out (checked above)
            sessions = _platform_sessions()
            merchant = _tenant(sessions, tenant)
            with _progress_bar() as progress:
                task = progress.add_task(f"importing {file.name}", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                result = importer.import_for_tenant(
                    sessions, merchant, file, customer_col, date_col, amount_col,
                    currency=currency, date_format=date_format, batch=batch, progress=advance,
                )
            where = f"tenant {tenant} (batch {result.batch!r})"
    span = (
        f", {result.first:%Y-%m-%d} to {result.last:%Y-%m-%d}" if result.first and result.last
        else ""
    )
    skipped = (
        f"; skipped {_count(result.skipped, 'row')} with amount <= 0" if result.skipped else ""
    )
    sys.stdout.write(
        f"imported {_count(result.rows, 'purchase')} of {_count(result.customers, 'customer')}"
        f"{span} "
        f"into {where}{skipped}\n"
    )


@app.command()
def refresh(
    tenant: Annotated[str, typer.Option("--tenant", help="merchant (slug)")],
    model: Annotated[str, typer.Option("--model", help="bgnbd or pnbd")] = "bgnbd",
    freq: Annotated[str, typer.Option("--freq", help="D (days) or W (weeks)")] = "D",
    source: Annotated[str, typer.Option("--source", help="orders or import")] = "orders",
    engine: Annotated[str, typer.Option("--engine", help="duckdb or spark")] = "duckdb",
    holdout_days: Annotated[int, typer.Option("--holdout-days")] = 90,
    clv_months: Annotated[int, typer.Option("--clv-months")] = 12,
    discount_rate: Annotated[
        float, typer.Option("--discount-rate", help="monthly")
    ] = 0.01,
    observation_end: Annotated[
        str | None, typer.Option("--observation-end", help="last day observed (default today)")
    ] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone of the days")] = "UTC",
    consented_only: Annotated[bool, typer.Option(
        "--consented-only", help="score only members who granted the data_analysis consent")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
) -> None:
    """Refresh a merchant's scores now, in this process (the API's POST /v1/analytics/refresh
    queues the same job for `haina worker`)."""
    with _one_line_errors():
        from pydantic import ValidationError

        from haina.core.db import transaction

        from . import service
        from .schemas import RefreshIn

        try:
            # validated from the options as given (the choices are Literals, the day a string)
            params = RefreshIn.model_validate(dict(
                model=model, freq=freq, source=source, engine=engine, holdout_days=holdout_days,
                clv_months=clv_months, discount_rate=discount_rate,
                observation_end=observation_end, timezone=timezone,
                consented_only=consented_only,
            ))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = first["msg"].removeprefix("Value error, ")
            raise UserError(f"--{where.replace('_', '-')}: {msg}" if where else msg) from None
        sessions = _platform_sessions()
        merchant = _tenant(sessions, tenant)
        with transaction(sessions) as session:
            job = service.start_refresh(session, merchant, params)
        with _progress_bar() as progress:
            task = progress.add_task("refreshing", total=100)
            service.run_job(
                sessions, job.id,
                on_progress=lambda pct, message: progress.update(
                    task, completed=pct, description=message),
            )
        with transaction(sessions) as session:
            job = service.get_job(session, merchant, job.id)
            if job.status != "succeeded":
                raise UserError(f"refresh failed: {job.message}")
            assert job.run_id is not None  # a succeeded job has recorded its run
            run = service.get_run(session, merchant, job.run_id)
            overview = service.segments_overview(session, merchant)
    if as_json:
        sys.stdout.write(run.model_dump_json() + "\n")
        return
    _print_run(run, overview)


def _print_run(run, overview) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    names = {"bgnbd": "BG/NBD", "pnbd": "Pareto/NBD", "gg": "Gamma-Gamma"}
    fitted = Table(
        title=f"{names[run.purchases.model]} and Gamma-Gamma — {run.customers:,} customers, "
        f"{run.transactions:,} purchases to {run.observation_end}"
    )
    fitted.add_column("model")
    fitted.add_column("parameter")
    fitted.add_column("estimate", justify="right")
    fitted.add_column("std. error", justify="right")
    for part in (run.purchases, run.spend):
        for name, value in part.params.items():
            se = part.standard_errors.get(name)
            shown = "–" if se is None else f"{se:.4g}"
            fitted.add_row(names[part.model], name, f"{value:.6g}", shown)
    console.print(fitted)
    if run.clv_basis == "shrunk_mean_spend":
        fallback = run.spend.fallback
        shown = f" ({fallback.population_spend:,.2f} {run.currency})" if fallback else ""
        console.print(
            "[bold yellow]CLV basis: shrunk mean spend[/] — the Gamma-Gamma fit is degenerate ("
            + "; ".join(run.spend.degenerate) + "), so each member's CLV uses her mean spend "
            f"shrunk to the population's median{shown}, not the model's prediction; every "
            "score of this run carries clv_basis shrunk_mean_spend")
    else:
        console.print("CLV basis: Gamma-Gamma")
    if run.holdout:
        h = run.holdout
        console.print(f"holdout {h.calibration_end} to {h.observation_end}: "
                      f"{h.actual_purchases:,.0f} purchases, predicted {h.predicted_purchases:,.1f}")
    counts = Table(title="members")
    counts.add_column("RFM segment")
    counts.add_column("members", justify="right")
    counts.add_column("lifecycle stage")
    counts.add_column("members", justify="right")
    segments, stages = overview.rfm_segments, overview.lifecycle_stages
    for i in range(max(len(segments), len(stages))):
        a = segments[i] if i < len(segments) else None
        b = stages[i] if i < len(stages) else None
        counts.add_row(a.name if a else "", str(a.members) if a else "",
                       b.name if b else "", str(b.members) if b else "")
    console.print(counts)
    for note in run.notes:
        console.print(f"note: {note}")


if __name__ == "__main__":
    app()
