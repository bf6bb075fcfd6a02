"""``haina crossborder``: the composite tax and the ID-number check from the terminal.

::

    haina crossborder check-id ID          # "valid", or exit 1 with the reason
    haina crossborder tax --amount 1000 --vat-rate 0.13 --consumption-rate 0.15 [--json]
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
