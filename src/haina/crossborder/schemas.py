"""The cross-border API's types: tax quotes, cross-border products, buyers, order records."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from haina.core.money import AmountStr, Money
from haina.core.schema_types import Id, LaxDate, NotBlank, RequestModel
from haina.crossborder.identity import id_number_problem, normalise

_RATE = re.compile(r"0(\.[0-9]{1,4})?")
_WEIGHT = re.compile(r"[0-9]{1,6}(\.[0-9]{1,3})?")


def _decimal_text(pattern: re.Pattern[str], what: str, example: str) -> Callable[[object], object]:
    def parse(v: object) -> object:
        if isinstance(v, Decimal):
            return v
        if not isinstance(v, str) or not pattern.fullmatch(v):
            raise ValueError(f"{what} is a decimal string such as \"{example}\"")
        return Decimal(v)
    return parse


Rate = Annotated[
    Decimal, BeforeValidator(_decimal_text(_RATE, "a rate", "0.13")),
    PlainSerializer(lambda d: str(d), return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^" + _RATE.pattern + "$"}),
    Field(description="a rate as a decimal string from 0 to below 1, e.g. \"0.13\""),
]
Weight = Annotated[
    Decimal, BeforeValidator(_decimal_text(_WEIGHT, "a weight in kg", "0.250")),
    PlainSerializer(lambda d: str(d), return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^" + _WEIGHT.pattern + "$"}),
    Field(description="kilograms as a decimal string with at most 3 decimals, e.g. \"0.250\""),
]
Mode = Literal["bonded", "direct_mail"]  # customs' 1210 (bonded warehouse) and 9610 (direct mail)


# ---------------------------------------------------------------- tax quotes

class TaxLineIn(RequestModel):
    amount: AmountStr = Field(description="the line's dutiable price in CNY (goods and freight, "
                                          "less discounts), e.g. \"1000.00\"")
    product_id: Id | None = Field(None, description="take the rates from this cross-border "
                                                    "product (then give no rates)")
    vat_rate: Rate | None = Field(None, description="default 0.13 (or the product's)")
    consumption_rate: Rate | None = Field(None, description="default 0 (or the product's)")

    @model_validator(mode="after")
    def _checks(self) -> TaxLineIn:
        if self.amount < 0 or self.amount > Decimal(10) ** 12 or \
                self.amount != self.amount.quantize(Decimal("0.01")):
            raise ValueError("amount is CNY from 0 to 10^12 with at most 2 decimals")
        if self.product_id and (self.vat_rate is not None or self.consumption_rate is not None):
            raise ValueError("give a product_id or rates, not both")
        return self


class TaxQuoteIn(RequestModel):
    lines: list[TaxLineIn] = Field(min_length=1, max_length=200)


class TaxLineOut(BaseModel):
    product_id: str | None = None
    amount: AmountStr
    vat_rate: Rate
    consumption_rate: Rate
    consumption_tax: AmountStr
    vat: AmountStr
    tariff: AmountStr
    total: AmountStr


class TaxQuoteOut(BaseModel):
    object: str = "tax_quote"
    currency: str = "CNY"
    lines: list[TaxLineOut]
    consumption_tax: AmountStr
    vat: AmountStr
    tariff: AmountStr
    total: AmountStr


# ---------------------------------------------------------------- products

class CrossborderProductIn(RequestModel):
    enabled: bool = Field(True, description="sold cross-border (an order may carry it)")
    hs_code: str = Field(pattern=r"^[0-9]{10}$", description="the 10-digit HS code, e.g. 3304990099")
    origin_country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2, e.g. FR")
    vat_rate: Rate = Decimal("0.13")
    consumption_rate: Rate = Decimal("0")
    net_weight_kg: Weight
    gross_weight_kg: Weight
    mode: Mode = "bonded"
    brand_id: Id | None = Field(None, description="the foreign brand it is sold under; an "
                                                  "enabled product needs an approved brand")

    @model_validator(mode="after")
    def _weights(self) -> CrossborderProductIn:
        if self.gross_weight_kg < self.net_weight_kg:
            raise ValueError("the gross weight is at least the net weight")
        return self


class CrossborderProductOut(BaseModel):
    object: str = "crossborder_product"
    product_id: str
    enabled: bool
    hs_code: str
    origin_country: str
    vat_rate: Rate
    consumption_rate: Rate
    net_weight_kg: Weight
    gross_weight_kg: Weight
    mode: Mode
    brand_id: str | None = None
    updated_at: dt.datetime


# ---------------------------------------------------------------- buyers and orders

def _valid_id_number(value: str) -> str:
    problem = id_number_problem(value)
    if problem:
        raise ValueError(problem)
    return normalise(value)


class PayerIn(RequestModel):
    name: Annotated[str, NotBlank] = Field(min_length=1, max_length=60)
    id_number: str = Field(min_length=1, max_length=32,
                           description="the payer's resident ID number (GB 11643-1999)")

    _id = field_validator("id_number")(_valid_id_number)


class BuyerIn(PayerIn):
    """The orderer (订购人): real name, resident ID number, phone."""

    phone: str = Field(pattern=r"^\+?[0-9][0-9 -]{4,19}$", examples=["13800138000"])


class CrossborderIn(RequestModel):
    buyer: BuyerIn
    payer: PayerIn | None = Field(None, description="who pays, if given: must be the buyer "
                                                    "(name and ID number)")


class BuyerOut(BaseModel):
    name: str
    id_number: str = Field(description="masked (3604**********0071) unless read with the "
                                       "crossborder:identity scope")
    phone: str


class CrossborderOrderOut(BaseModel):
    object: str = "crossborder_order"
    order_id: str
    buyer: BuyerOut
    dutiable: Money = Field(description="goods − discount + shipping: what the quotas count")
    tax: Money
    tax_lines: list[TaxLineOut]
    quota_year: int
    quota_status: str = Field(description="claimed, or released (cancelled or refunded)")
    quota_returned: Money | None = Field(
        None, description="what partial refunds gave back of the yearly quota (in proportion "
                          "to the amount refunded); the whole dutiable price once released")
    tax_refunded: Money | None = Field(
        None, description="the share of the composite tax in what was refunded")
    created_at: dt.datetime


class CrossborderClaim(BaseModel):
    """What claiming an order's cross-border part answers to orders: the tax to carry."""

    tax_minor: int
    record: CrossborderOrderOut


class QuotaOut(BaseModel):
    object: str = "crossborder_quota"
    year: int
    limit: Money
    used: Money
    remaining: Money


def record_data(record: CrossborderOrderOut) -> dict[str, Any]:
    return record.model_dump(mode="json")


# ---------------------------------------------------------------- customs declarations

Code18 = Annotated[str, Field(min_length=1, max_length=18, pattern=r"^[0-9A-Za-z]+$")]
Name100 = Annotated[str, NotBlank, Field(min_length=1, max_length=100)]
No60 = Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[0-9A-Za-z_-]+$")]


class EnterpriseIn(RequestModel):
    """Who declares: the platform (ebp), the merchant (ebc), the customs broker (agent), and
    where (customs and port codes, 4 digits)."""

    ebp_code: Code18
    ebp_name: Name100
    ebc_code: Code18
    ebc_name: Name100
    agent_code: Code18
    agent_name: Name100
    customs_code: str = Field(pattern=r"^[0-9]{4}$", examples=["5141"])
    port_code: str = Field(pattern=r"^[0-9]{4}$", examples=["5141"])
    dxp_id: No60 = Field(description="the sender's data-exchange id (BaseTransfer dxpId)")
    traf_mode: str = Field("5", pattern=r"^[0-9A-Z]$", description="customs transport mode")


class PaymentDocIn(RequestModel):
    """The payment as the payment enterprise reports it; left out: the order's."""

    pay_code: Code18
    pay_name: Name100
    transaction_id: No60
    payer_name: Name100 | None = Field(None, description="default: the buyer's")
    payer_id_number: str | None = Field(None, min_length=1, max_length=32,
                                        description="default: the buyer's")
    amount: AmountStr | None = Field(None, description="default: what the order was paid")
    paid_at: dt.datetime | None = Field(None, strict=False)

    _id = field_validator("payer_id_number")(
        lambda v: None if v is None else _valid_id_number(v))


class WaybillIn(RequestModel):
    """The waybill as the logistics enterprise reports it; left out: the order's."""

    logistics_code: Code18
    logistics_name: Name100
    logistics_no: No60
    order_no: No60 | None = None
    freight: AmountStr | None = None
    consignee: Name100 | None = None
    consignee_phone: str | None = Field(None, min_length=1, max_length=50)
    consignee_address: str | None = Field(None, min_length=1, max_length=1000)


class DeclarationIn(RequestModel):
    order_id: Id
    enterprise: EnterpriseIn | None = Field(
        None, description="default: the merchant's customs profile (PUT "
                          "/v1/crossborder/customs-profile)")
    payment: PaymentDocIn
    waybill: WaybillIn


class CustomsProfileOut(EnterpriseIn):
    """The merchant's customs profile: who declares its orders, and where."""

    object: str = "crossborder_customs_profile"
    updated_at: dt.datetime


class DeclaredLine(BaseModel):
    product_id: str
    sku: str
    title: str
    quantity: int
    unit_price_minor: int
    total_minor: int


class DeclaredOrder(BaseModel):
    """What a declaration needs of an order (the checkout flow reads it from orders)."""

    order_id: str
    status: str
    member_id: str | None
    currency: str
    subtotal_minor: int
    discount_minor: int
    shipping_minor: int
    tax_minor: int
    total_minor: int
    paid_minor: int
    paid_at: dt.datetime | None
    consignee_name: str | None
    consignee_phone: str | None
    consignee_address: str | None
    lines: list[DeclaredLine]


class ReceiptIn(RequestModel):
    message: str = Field(min_length=1, max_length=200_000,
                         description="a CEB312, CEB412, CEB512, CEB622 receipt or CEB816 tax "
                                     "bill, as XML")


class ReceiptOut(BaseModel):
    kind: str
    answers: str
    return_status: str
    return_info: str
    return_time: str
    received_at: dt.datetime


class DeclarationOut(BaseModel):
    object: str = "declaration"
    id: str
    order_id: str
    status: str
    messages: dict[str, str] = Field(description="CEB311, CEB411, CEB511, CEB621 as XML, the "
                                                 "buyer's ID number masked")
    receipts: list[ReceiptOut]
    tax_bill: dict[str, str] | None
    created_at: dt.datetime
    updated_at: dt.datetime


class DeclarationMessages(BaseModel):
    object: str = "declaration_messages"
    id: str
    order_id: str
    messages: dict[str, str] = Field(description="as sent to customs (ID numbers unmasked)")


TrackingStatus = Literal["picked_up", "in_transit", "arrived_in_china", "customs_cleared",
                         "out_for_delivery", "delivered", "exception"]


class TrackingIn(RequestModel):
    carrier: Annotated[str, NotBlank] = Field(min_length=1, max_length=64)
    tracking_number: str = Field(min_length=1, max_length=60)
    status: TrackingStatus
    at: dt.datetime = Field(strict=False, description="when it happened, with a time zone")
    location: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=500)

    @field_validator("at")
    @classmethod
    def _aware(cls, v: dt.datetime) -> dt.datetime:
        if v.tzinfo is None:
            raise ValueError("at needs a time zone")
        return v


class TrackingOut(BaseModel):
    object: str = "tracking_event"
    event_id: str
    order_id: str
    carrier: str
    tracking_number: str
    status: str
    at: dt.datetime
    location: str | None
    description: str | None


class DocumentCheckOut(BaseModel):
    """One rule of the three-document check (GAC announcement 2018 No. 194): a field of the
    payment or the waybill against the order's, as the messages stored hold them (ID numbers
    masked the same way on both sides)."""

    document: Literal["payment", "waybill"]
    field: str = Field(description="the document's field, e.g. payerIdNumber")
    order_field: str = Field(description="the order's (CEB311) field it must agree with")
    order_value: str
    value: str
    agrees: bool


class TrackingStatusOut(BaseModel):
    """A cross-border order's parcel as the carrier last reported it."""

    object: str = "crossborder_tracking"
    order_id: str
    carrier: str
    tracking_number: str = Field(description="the declared waybill's number (CEB511 "
                                             "logisticsNo)")
    status: str
    at: dt.datetime = Field(description="when the latest event happened")
    location: str | None
    description: str | None
    events: int = Field(description="how many tracking events were received")
    updated_at: dt.datetime


# ---------------------------------------------------------------- qualification files

DocumentKind = Literal["trademark_registration", "business_licence", "origin_certificate",
                       "agency_agreement", "product_registration", "other"]
BrandStatus = Literal["submitted", "approved", "rejected", "revoked", "expired"]
_URL = r"^https://[^\s]{1,1990}$"
_SHA256 = r"^[0-9a-f]{64}$"


class DocumentIn(RequestModel):
    """A document of the file: where it is kept (an https URL, e.g. the agency's document
    store) and/or its reference number, and the digest of the file as reviewed."""

    kind: DocumentKind
    title: Annotated[str, NotBlank] = Field(max_length=200)
    url: str | None = Field(None, pattern=_URL, description="where the file can be read")
    reference: str | None = Field(None, min_length=1, max_length=200,
                                  description="the document's number (a trademark "
                                              "registration, a licence)")
    sha256: str | None = Field(None, pattern=_SHA256, description="the file's SHA-256 digest")
    valid_until: LaxDate | None = None

    @model_validator(mode="after")
    def _somewhere(self) -> DocumentIn:
        if not self.url and not self.reference:
            raise ValueError("a document gives its url, its reference, or both")
        return self


class AuthorisationIn(RequestModel):
    """The brand owner's authorisation of the seller (or its agency) to sell the brand's
    goods to China cross-border: who granted it to whom, its number and validity."""

    grantor: Annotated[str, NotBlank] = Field(max_length=200, description="the brand owner")
    grantee: Annotated[str, NotBlank] = Field(max_length=200,
                                              description="the merchant or agency authorised")
    reference: Annotated[str, NotBlank] = Field(max_length=200)
    valid_from: LaxDate
    valid_until: LaxDate
    url: str | None = Field(None, pattern=_URL)
    sha256: str | None = Field(None, pattern=_SHA256)

    @model_validator(mode="after")
    def _period(self) -> AuthorisationIn:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until comes after valid_from")
        return self


class BrandIn(RequestModel):
    name: Annotated[str, NotBlank] = Field(max_length=200, description="the brand")
    origin_country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2")
    owner: Annotated[str, NotBlank] = Field(max_length=200,
                                            description="the foreign company owning the brand")
    agency_app_id: Id | None = Field(None, description="the operating agency's app, installed "
                                                       "at the merchant with a crossborder "
                                                       "scope (an app submitting is the agency)")
    agency_name: Annotated[str, NotBlank] = Field(max_length=200,
                                                  description="the operating agency in China")
    authorisation: AuthorisationIn
    documents: list[DocumentIn] = Field(default_factory=list, max_length=20)


class BrandDecisionIn(RequestModel):
    decision: Literal["approve", "reject", "revoke"]
    reason: Annotated[str, NotBlank] = Field(max_length=2000,
                                             description="why: every decision is recorded")


class BrandDecisionOut(BaseModel):
    action: Literal["submitted", "approved", "rejected", "revoked", "expired"]
    actor: str = Field(description="merchant:…, app:… or platform:… (who)")
    reason: str | None
    at: dt.datetime


class BrandOut(BaseModel):
    object: str = "crossborder_brand"
    id: str
    name: str
    origin_country: str
    owner: str
    agency_app_id: str | None
    agency_name: str
    authorisation: dict[str, Any]
    documents: list[dict[str, Any]]
    status: BrandStatus
    submitted_by: str
    decided_by: str | None
    decided_at: dt.datetime | None
    reason: str | None
    decisions: list[BrandDecisionOut]
    valid_until: dt.date | None = Field(
        None, description="the last day the file holds: its authorisation's or a document's "
                          "valid_until, whichever comes first (the worker expires the brand "
                          "the day after)")
    created_at: dt.datetime
    updated_at: dt.datetime


class ReviewerOut(BaseModel):
    object: str = "crossborder_reviewer"
    app_id: str
    delegated_by: str
    evidence: str
    delegated_at: dt.datetime
    revoked_at: dt.datetime | None
