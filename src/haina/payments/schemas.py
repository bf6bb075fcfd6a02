from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from haina.core.money import Money, MoneyIn
from haina.core.schema_types import Id, RequestModel


class PaymentMethodIn(RequestModel):
    type: Literal["card", "cash"] = "card"
    number: str | None = Field(None, max_length=32,
                               description="card number (sandbox test cards: see docs)")
    exp_month: int | None = Field(None, ge=1, le=12)
    exp_year: int | None = Field(None, ge=2000, le=2100)
    cvc: str | None = Field(None, pattern=r"^\d{3,4}$")

    @field_validator("number")
    @classmethod
    def _digits(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.replace(" ", "").replace("-", "")
        if not v.isdigit() or not 12 <= len(v) <= 19:
            raise ValueError("a card number is 12 to 19 digits")
        from haina.payments.providers import luhn_ok
        if not luhn_ok(v):
            raise ValueError("this card number fails the Luhn check")
        return v

    @model_validator(mode="after")
    def _card_has_number(self) -> PaymentMethodIn:
        if self.type == "card" and not self.number:
            raise ValueError("a card payment needs the card number")
        return self


class PaymentIntentCreate(RequestModel):
    order_id: Id
    payment_method: PaymentMethodIn
    capture_method: Literal["automatic", "manual"] = Field(
        "automatic", description="manual: authorise now, capture later")
    provider: Literal["sandbox"] = "sandbox"


AMOUNT_DESCRIPTION = "a decimal string of at most 10^12 (1000000000000) major units"


class CaptureIn(RequestModel):
    amount: MoneyIn | None = Field(None, description="default: the whole authorised amount; "
                                                   + AMOUNT_DESCRIPTION)


class PaymentIntentOut(BaseModel):
    id: str
    object: str = "payment_intent"
    order_id: str
    amount: Money
    status: str
    capture_method: str
    captured: Money
    refunded: Money
    provider: str
    payment_method: dict
    failure_code: str | None
    failure_message: str | None
    created_at: dt.datetime


class RefundCreate(RequestModel):
    payment_intent_id: Id | None = None
    order_id: Id | None = None
    amount: MoneyIn | None = Field(None, description="default: everything not yet refunded; "
                                                   + AMOUNT_DESCRIPTION)
    reason: str = Field("requested_by_customer", max_length=64)

    @model_validator(mode="after")
    def _one_target(self) -> RefundCreate:
        if bool(self.payment_intent_id) == bool(self.order_id):
            raise ValueError("give exactly one of payment_intent_id or order_id")
        return self


class RefundOut(BaseModel):
    id: str
    object: str = "refund"
    payment_intent_id: str
    order_id: str
    amount: Money
    reason: str
    status: str
    created_at: dt.datetime


class PayoutCreate(RequestModel):
    amount: MoneyIn = Field(description=AMOUNT_DESCRIPTION)


class PayoutOut(BaseModel):
    id: str
    object: str = "payout"
    amount: Money
    status: str
    created_at: dt.datetime


class JournalLineOut(BaseModel):
    account: str
    debit: Money
    credit: Money


class JournalEntryOut(BaseModel):
    id: str
    object: str = "journal_entry"
    kind: str
    ref_id: str
    currency: str
    memo: str | None
    lines: list[JournalLineOut]
    created_at: dt.datetime


class BalanceOut(BaseModel):
    account: str
    currency: str
    normal_side: Literal["debit", "credit"]
    balance: Money = Field(description="on the account's normal side")
    debits: Money
    credits: Money
