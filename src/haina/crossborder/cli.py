"""``haina crossborder``: the composite tax and the ID-number check from the terminal.

::

    haina crossborder check-id ID          # "valid", or exit 1 with the reason
    haina crossborder tax --amount 1000 --vat-rate 0.13 --consumption-rate 0.15 [--json]
    haina crossborder reseal               # re-encrypt ID numbers under the newest key
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from haina.crossborder.identity import id_number_problem
from haina.crossborder.tax import DEFAULT_VAT_RATE, composite_tax, tax_summary

app = typer.Typer(help="Cross-border import: composite tax, buyers' ID numbers.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


def _decimal(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} must be a decimal number, not {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number")
    return value


@app.command("check-id")
def check_id(id_number: Annotated[str, typer.Argument(help="an 18-character resident ID number")]) -> None:
    """Check a resident ID number (GB 11643-1999): length, region, birth date, check character."""
    problem = id_number_problem(id_number)
    if problem:
        raise ValueError(problem)
    print("valid")


@app.command("tax")
def tax(amount: Annotated[str, typer.Option(help="the dutiable price in CNY")],
        vat_rate: Annotated[str, typer.Option(help="the VAT rate")] = str(DEFAULT_VAT_RATE),
        consumption_rate: Annotated[str, typer.Option(help="the consumption-tax rate")] = "0",
        as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """The composite tax of cross-border retail import on one price."""
    price = _decimal(amount, "--amount")
    if price != price.quantize(Decimal("0.01")) or price < 0:
        raise ValueError("--amount is CNY of at least 0 with at most 2 decimals")
    line = composite_tax(price, _decimal(vat_rate, "--vat-rate"),
                         _decimal(consumption_rate, "--consumption-rate"))
    summary = tax_summary([line])
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    table = Table("tax", "CNY")
    for name in ("consumption_tax", "vat", "tariff", "total"):
        table.add_row(name.replace("_", " "), summary[name])
    Console().print(table)


@app.command("reseal")
def reseal() -> None:
    """Re-encrypt buyers' ID numbers and declarations sealed under older keys with the first
    key of HAINA_CROSSBORDER_KEYS, so that the older keys can be dropped."""
    from haina.core.config import get_settings
    from haina.core.db import make_engine, make_sessionmaker, transaction
    from haina.core.schema import ensure_current
    from haina.crossborder import service

    engine = make_engine(get_settings().database_url)
    try:
        ensure_current(engine)
        sessions = make_sessionmaker(engine)
        total = 0
        while True:
            with transaction(sessions) as session:
                done = service.reseal(session)
            total += done
            if not done:
                break
    finally:
        engine.dispose()
    print(f"resealed {total}")
