"""Money: ``Decimal`` amounts with a currency, stored as integer minor units. Never float.

Rounding is half-even and happens only where a function here says so.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from haina.core.trusted import construct

# ISO 4217 minor-unit exponents of the currencies the platform accepts.
EXPONENTS = {
    "CNY": 2, "HKD": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "AUD": 2, "CAD": 2, "SGD": 2,
    "NZD": 2, "CHF": 2, "THB": 2, "MYR": 2, "JPY": 0, "KRW": 0,
}


class MoneyError(ValueError):
    pass


def exponent(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unsupported currency {currency!r}") from None


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """Exact conversion to minor units; an amount finer than the currency allows is an error."""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        raise MoneyError(f"not a decimal amount: {amount!r}") from None
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {amount!r}")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more decimals than {currency} allows (at most "
                         f"{exponent(currency)} decimals)")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    # scaleb keeps the exponent: Decimal(9900).scaleb(-2) is Decimal("99.00")
    return Decimal(minor).scaleb(-exponent(currency))


def format_amount(minor: int, currency: str) -> str:
    return str(from_minor(minor, currency))


def share(minor: int, numerator: int, denominator: int) -> int:
    """``minor * numerator / denominator`` rounded half-even to a whole minor unit."""
    if denominator == 0:
        return 0
    return int((Decimal(minor) * numerator / denominator).quantize(Decimal(1), ROUND_HALF_EVEN))


def bps(minor: int, basis_points: int) -> int:
    """A fee or rate in basis points of an amount, rounded half-even (the one rounding point)."""
    return share(minor, basis_points, 10_000)


_AMOUNT_TEXT = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?")


def _amount_str(v: object) -> object:
    """An amount in a request is a decimal string (``"99.00"``), as Stripe's: a JSON number
    (``99`` or ``99.0``), an exponent (``"1e5"``), ``"NaN"`` or spaces are refused. A
    ``Decimal`` (an amount built in code) passes."""
    if isinstance(v, (int, float)):  # bool is an int
        raise ValueError("amounts are decimal strings such as \"99.00\", not JSON numbers")
    if isinstance(v, str):
        if not _AMOUNT_TEXT.fullmatch(v):
            raise ValueError("an amount is a decimal string of digits with an optional sign "
                             "and decimal point, such as \"99.00\", of at most 10^12 "
                             "(1000000000000) major units")
        return Decimal(v)
    return v


AMOUNT_PATTERN = "^" + _AMOUNT_TEXT.pattern + "$"

AmountStr = Annotated[
    Decimal,
    BeforeValidator(_amount_str),
    PlainSerializer(lambda d: str(d), return_type=str),
    WithJsonSchema({"type": "string", "pattern": AMOUNT_PATTERN}),
    Field(description="Decimal amount as a string, e.g. \"99.00\""),
]


# The largest amount a request may carry, in major units of any currency (10^12: a trillion
# yuan, yen or dollars). Its minor units (at most 10^14) leave room in a 64-bit integer for order
# totals of many lines and large quantities.
MAX_AMOUNT = Decimal(10) ** 12


class Money(BaseModel):
    """An amount with its currency, e.g. ``{"amount": "99.00", "currency": "CNY"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: AmountStr
    currency: str = Field(default="CNY", min_length=3, max_length=3, examples=["CNY"])

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, v: str) -> str:
        v = v.upper()
        exponent(v)
        return v

    @model_validator(mode="after")
    def _fits_currency(self) -> Money:
        # (an "after" validator also runs for every Money a response is built of: keep it cheap)
        to_minor(self.amount, self.currency)
        return self

    @property
    def minor(self) -> int:
        return to_minor(self.amount, self.currency)

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        """From trusted minor units (skips validation: this is on every response's path).
        A Money is frozen, so the same amount is given as the same object while it is kept
        (a cart's answer has a dozen amounts, most of them repeated: prices, zeros)."""
        if cls is not Money:
            return construct(cls, amount=from_minor(minor, currency), currency=currency)
        found = _MADE.get((minor, currency))
        if found is None:
            if len(_MADE) >= MADE_MAX:
                _MADE.clear()
            found = _MADE[(minor, currency)] = construct(
                cls, amount=from_minor(minor, currency), currency=currency)
        return found


# Money.of's amounts, by (minor units, currency); cleared when it holds MADE_MAX
_MADE: dict[tuple[int, str], Money] = {}
MADE_MAX = 10_000


class MoneyIn(Money):
    """An amount with its currency as a request gives it, e.g. ``{"amount": "99.00",
    "currency": "CNY"}``: a decimal string (never a JSON number) of at most 10^12
    (1000000000000) major units in size, with no more decimals than the currency has
    (``"1.000"`` is not a CNY amount); no other field."""

    @model_validator(mode="before")
    @classmethod
    def _from_money(cls, data: object) -> object:
        # a Money built in code (Money.of, Money(...)) is checked as a request's, not refused
        if isinstance(data, Money) and not isinstance(data, cls):
            return {"amount": data.amount, "currency": data.currency}
        return data

    @model_validator(mode="after")
    def _request_bounds(self) -> MoneyIn:
        places = -self.amount.as_tuple().exponent  # type: ignore[operator]
        if places > exponent(self.currency):
            raise ValueError(f"{self.currency} amounts have at most "
                             f"{exponent(self.currency)} decimals, not {places}")
        if abs(self.amount) > MAX_AMOUNT:
            raise ValueError("an amount is at most 10^12 (1000000000000) major units in size")
        return self


# The largest price the catalog takes: the largest amount (see MAX_AMOUNT).
MAX_PRICE = MAX_AMOUNT

PriceAmount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE),
    BeforeValidator(_amount_str),
    PlainSerializer(lambda d: str(d), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^[0-9]{1,13}(\.[0-9]{1,20})?$"}),
    Field(description="Decimal amount as a string, e.g. \"99.00\": from 0 (free samples) to "
                      "1000000000000 (10^12) major units"),
]


class Price(MoneyIn):
    """A price, e.g. ``{"amount": "99.00", "currency": "CNY"}``: from 0 (free samples) to 10^12
    major units."""

    # Money itself also carries refunds, captures and adjustments, which these bounds are not for

    amount: PriceAmount
