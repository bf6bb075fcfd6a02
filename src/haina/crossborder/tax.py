"""The composite tax of cross-border retail import (跨境电商零售进口综合税), one place.

Rules (MOF/GAC/SAT notice 2016 No. 18, limits raised by notice 2018 No. 49): within the limits
(5,000 CNY an order, 26,000 CNY a year per buyer) the tariff is 0 and the import consumption
tax and VAT are levied at 70 % of the statutory amount. The statutory consumption tax is
levied on the composite taxable price ``price ÷ (1 − c)``, so it is ``price ÷ (1 − c) × c``;
the statutory VAT is levied on ``price + statutory consumption tax``.

Rounding points (half-even, to the fen): each tax of each line once, after the 70 %; nothing
in between is rounded. A line's total is the sum of its two rounded taxes; an order's tax is
the sum of its lines' totals. Rates are exact decimals (``Decimal("0.13")``), never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

FEN = Decimal("0.01")
LEVY = Decimal("0.7")  # 70 % of the statutory consumption tax and VAT
DEFAULT_VAT_RATE = Decimal("0.13")


@dataclass(frozen=True)
class LineTax:
    """One line's composite tax in CNY (each amount rounded to the fen)."""

    price: Decimal
    vat_rate: Decimal
    consumption_rate: Decimal
    consumption_tax: Decimal
    vat: Decimal
    tariff: Decimal

    @property
    def total(self) -> Decimal:
        return self.consumption_tax + self.vat + self.tariff


def check_rate(rate: Decimal, name: str) -> Decimal:
    """A rate is a decimal in [0, 1) with at most 4 decimal places."""
    if not rate.is_finite() or rate < 0 or rate >= 1:
        raise ValueError(f"{name} must be at least 0 and below 1, such as 0.13")
    if rate != rate.quantize(Decimal("0.0001")):
        raise ValueError(f"{name} has at most 4 decimal places")
    return rate


def composite_tax(price: Decimal, vat_rate: Decimal = DEFAULT_VAT_RATE,
                  consumption_rate: Decimal = Decimal(0)) -> LineTax:
    """The composite tax of goods whose dutiable price (CNY, goods + freight − discount) is
    ``price``."""
    if not price.is_finite() or price < 0:
        raise ValueError("the price must be a finite amount of at least 0")
    check_rate(vat_rate, "the VAT rate")
    check_rate(consumption_rate, "the consumption-tax rate")
    with localcontext() as ctx:
        ctx.prec = 60  # exact enough that only the documented roundings round
        statutory_consumption = price / (1 - consumption_rate) * consumption_rate
        consumption_tax = (statutory_consumption * LEVY).quantize(FEN, ROUND_HALF_EVEN)
        vat = ((price + statutory_consumption) * vat_rate * LEVY).quantize(FEN, ROUND_HALF_EVEN)
    return LineTax(price=price, vat_rate=vat_rate, consumption_rate=consumption_rate,
                   consumption_tax=consumption_tax, vat=vat, tariff=Decimal("0.00"))


def tax_summary(lines: list[LineTax]) -> dict[str, str]:
    """The contract's shape: ``{"consumption_tax", "vat", "tariff", "total"}`` as CNY strings."""
    ct = sum((t.consumption_tax for t in lines), Decimal("0.00"))
    vat = sum((t.vat for t in lines), Decimal("0.00"))
    tariff = sum((t.tariff for t in lines), Decimal("0.00"))
    return {"consumption_tax": f"{ct:.2f}", "vat": f"{vat:.2f}", "tariff": f"{tariff:.2f}",
            "total": f"{ct + vat + tariff:.2f}"}
