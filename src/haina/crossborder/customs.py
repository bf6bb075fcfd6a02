"""Customs messages of cross-border retail import (the customs' unified cross-border e-commerce
format, namespace ``http://www.chinaport.gov.cn/ceb``): CEB311 order, CEB411 payment, CEB511
waybill and CEB621 inventory list built from plain field tables, each validated against the
package's XSD (``xsd/``); the three-document check; receipts and tax bills read back.

Pure: no database. The service feeds it the order's facts and stores what it returns.
"""

from __future__ import annotations

import datetime as dt
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import xmlschema

NS = "http://www.chinaport.gov.cn/ceb"
XSD_DIR = Path(__file__).parent / "xsd"
VERSION = "1.0"
KINDS = ("CEB311", "CEB411", "CEB511", "CEB621")
# message → (the repeated element, its head, its list of goods or None)
SHAPES = {"CEB311": ("Order", "OrderHead", "OrderList"),
          "CEB411": ("Payment", "PaymentHead", None),
          "CEB511": ("Logistics", "LogisticsHead", None),
          "CEB621": ("Inventory", "InventoryHead", "InventoryList")}
CURRENCY_CNY = "142"  # customs currency code of the renminbi
UNIT_PIECE = "011"    # customs unit code: piece (件)
UNIT_KG = "035"       # customs unit code: kilogram
# ISO 3166-1 alpha-2 → customs country code (the origins Haina's merchants use; extend here)
COUNTRIES = {"HK": "110", "JP": "116", "SG": "132", "KR": "133", "TH": "136", "CN": "142",
             "BE": "301", "DK": "302", "GB": "303", "DE": "304", "FR": "305", "IE": "306",
             "IT": "307", "NL": "309", "PT": "311", "ES": "312", "AT": "315", "SE": "330",
             "CH": "331", "CA": "501", "US": "502", "AU": "601", "NZ": "609"}
# a receipt's message → the message it answers, the element that carries it
RECEIPTS = {"CEB312": ("CEB311", "OrderReturn"), "CEB412": ("CEB411", "PaymentReturn"),
            "CEB512": ("CEB511", "LogisticsReturn"), "CEB622": ("CEB621", "InventoryReturn")}


def q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def new_guid() -> str:
    return str(uuid.uuid4()).upper()


def time14(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d%H%M%S")


@cache
def schema(kind: str) -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD_DIR / f"{kind}.xsd"))


def build(kind: str, head: dict[str, Any], goods: list[dict[str, Any]] | None,
          sender: dict[str, str]) -> str:
    """The XML of message ``kind`` (one head, its goods, the ``BaseTransfer`` sender); fields
    in the order given (the tables' order), ``None`` fields left out."""
    ET.register_namespace("ceb", NS)
    wrapper, head_tag, list_tag = SHAPES[kind]
    root = ET.Element(q(f"{kind}Message"), {"guid": new_guid(), "version": VERSION})
    body = ET.SubElement(root, q(wrapper))
    _fields(ET.SubElement(body, q(head_tag)), head)
    for line in goods or ():
        assert list_tag is not None
        _fields(ET.SubElement(body, q(list_tag)), line)
    _fields(ET.SubElement(root, q("BaseTransfer")), {**sender, "dxpMode": "DXP"}
            if "dxpMode" not in sender else sender)
    return ET.tostring(root, encoding="unicode", xml_declaration=False)


def _fields(parent: ET.Element, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if value is not None:
            ET.SubElement(parent, q(name)).text = str(value)


def problems(kind: str, xml: str) -> list[str]:
    """Why ``xml`` is not a valid message ``kind`` (empty: it is)."""
    return [f"{e.path}: {e.reason}" for e in schema(kind).iter_errors(xml)]


class BadMessage(ValueError):
    """A message that cannot be read (not XML, a DTD, not a known message)."""


def parse(xml: str) -> ET.Element:
    # no DTDs: no entity can be declared, so none expands (billion laughs, external entities)
    if "<!DOCTYPE" in xml or "<!ENTITY" in xml:
        raise BadMessage("a message may not carry a DTD")
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise BadMessage(f"not well-formed XML: {exc}") from None


def head_of(xml: str) -> dict[str, str]:
    """The head fields of a CEB message (tag without namespace → text)."""
    root = parse(xml)
    kind = root.tag.removeprefix(q("")).removesuffix("Message")
    if kind not in SHAPES:
        raise BadMessage(f"not one of {', '.join(KINDS)}")
    wrapper, head_tag, _ = SHAPES[kind]
    head = root.find(f"{q(wrapper)}/{q(head_tag)}")
    if head is None:
        raise BadMessage(f"{kind} without its {head_tag}")
    return {child.tag.removeprefix(q("")): (child.text or "") for child in head}


# ---------------------------------------------------------------- the three-document check

@dataclass(frozen=True)
class Disagreement:
    field: str          # e.g. "payment.payerIdNumber"
    order_field: str    # the order's field it is compared with, e.g. "buyerIdNumber"
    order_value: str
    value: str


# (document, its field, the order's field): what must agree (GAC announcement 2018 No. 194)
THREE_DOCUMENT_RULES = (
    ("payment", "orderNo", "orderNo"),
    ("payment", "amountPaid", "acturalPaid"),
    ("payment", "payerName", "buyerName"),
    ("payment", "payerIdNumber", "buyerIdNumber"),
    ("waybill", "orderNo", "orderNo"),
    ("waybill", "freight", "freight"),
    ("waybill", "consignee", "consignee"),
    ("waybill", "consigneeTelephone", "consigneeTelephone"),
    ("waybill", "consigneeAddress", "consigneeAddress"),
)
AMOUNT_FIELDS = {"amountPaid", "acturalPaid", "freight"}


def three_document_check(order_xml: str, payment_xml: str, waybill_xml: str) -> list[Disagreement]:
    """Compare the order (CEB311), the payment (CEB411) and the waybill (CEB511): every field
    that disagrees, named (amounts compared as numbers, text exactly)."""
    heads = {"order": head_of(order_xml), "payment": head_of(payment_xml),
             "waybill": head_of(waybill_xml)}
    out = []
    for document, name, order_name in THREE_DOCUMENT_RULES:
        mine, theirs = heads["order"].get(order_name, ""), heads[document].get(name, "")
        same = _amount(mine) == _amount(theirs) if name in AMOUNT_FIELDS else mine == theirs
        if not same:
            out.append(Disagreement(f"{document}.{name}", order_name, mine, theirs))
    return out


def _amount(text: str) -> object:
    from decimal import Decimal, InvalidOperation
    try:
        return Decimal(text)
    except InvalidOperation:
        return text


# ---------------------------------------------------------------- receipts and tax bills

@dataclass(frozen=True)
class Receipt:
    kind: str                # CEB312 … CEB622, or CEB816
    answers: str             # the message it answers (CEB311 …; CEB621 for a tax bill)
    guid: str | None         # the answered message's head guid (None: a tax bill)
    order_no: str | None
    return_status: str
    return_info: str
    return_time: str
    fields: dict[str, str]


def read_receipt(xml: str) -> Receipt:
    """A receipt (CEB312/412/512/622) or a tax bill (CEB816)."""
    root = parse(xml)
    kind = root.tag.removeprefix(q("")).removesuffix("Message")
    if kind == "CEB816":
        head = root.find(f"{q('Tax')}/{q('TaxHeadRd')}")
        if head is None:
            raise BadMessage("CEB816 without its Tax/TaxHeadRd")
        f = {c.tag.removeprefix(q("")): (c.text or "") for c in head}
        return Receipt(kind, "CEB621", None, f.get("orderNo"), f.get("status", ""),
                       f.get("note", ""), f.get("returnTime", ""), f)
    if kind not in RECEIPTS:
        raise BadMessage(f"not a receipt: {', '.join(RECEIPTS)} or CEB816")
    answers, tag = RECEIPTS[kind]
    element = root.find(q(tag))
    if element is None:
        raise BadMessage(f"{kind} without its {tag}")
    f = {c.tag.removeprefix(q("")): (c.text or "") for c in element}
    if not f.get("guid") or not f.get("returnStatus"):
        raise BadMessage(f"{kind} needs guid and returnStatus")
    return Receipt(kind, answers, f["guid"], f.get("orderNo"), f["returnStatus"],
                   f.get("returnInfo", ""), f.get("returnTime", ""), f)


def receipt_xml(kind: str, answers_guid: str, return_status: str, at: dt.datetime,
                info: str = "", order_no: str = "") -> str:
    """A receipt as customs sends it (CEB312/412/512/622 answering the message whose head
    guid is ``answers_guid``): for the demo and for brokers' test rigs."""
    _, tag = RECEIPTS[kind]
    text = info.replace("&", "&amp;").replace("<", "&lt;")
    return (f'<ceb:{kind}Message xmlns:ceb="{NS}" guid="{new_guid()}" version="{VERSION}">'
            f"<ceb:{tag}><ceb:guid>{answers_guid}</ceb:guid><ceb:orderNo>{order_no}"
            f"</ceb:orderNo><ceb:returnStatus>{return_status}</ceb:returnStatus>"
            f"<ceb:returnTime>{time14(at)}</ceb:returnTime><ceb:returnInfo>{text}"
            f"</ceb:returnInfo></ceb:{tag}></ceb:{kind}Message>")
