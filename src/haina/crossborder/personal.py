"""A buyer's personal information in the cross-border tables: found, exported and erased for
the privacy module's data requests (docs/privacy.md, docs/crossborder.md).

What an erasure keeps, because customs and tax law require it (the records of an import must
be kept, PIPL Art. 47 last paragraph): the masked ID number, its blind index (the yearly quota
counter is keyed by it), the dutiable price, the tax and its lines, the quota row, the
declaration's receipts and tax bill. What goes: the buyer's name and phone, the sealed ID
number, and every personal value inside the customs messages (the masked copy and the sealed
copy alike)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.personal import ERASED, MIN_NEEDLE, scrub
from haina.crossborder.identity import keys_from_settings
from haina.crossborder.models import CrossborderOrder, Declaration, Tracking


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value


def _orders(session: Session, tenant: Tenant, order_ids: Sequence[str],
            lock: bool = False) -> list[CrossborderOrder]:
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        return []
    stmt = select(CrossborderOrder).where(CrossborderOrder.tenant_id == tenant.id,
                                          CrossborderOrder.id.in_(ids)).order_by(CrossborderOrder.id)
    return list(session.scalars(stmt.with_for_update() if lock else stmt))


def _declarations(session: Session, tenant: Tenant, order_ids: Sequence[str],
                  lock: bool = False) -> list[Declaration]:
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        return []
    stmt = select(Declaration).where(Declaration.tenant_id == tenant.id,
                                     Declaration.order_id.in_(ids)).order_by(Declaration.id)
    return list(session.scalars(stmt.with_for_update() if lock else stmt))


def order_personal_values(session: Session, tenant: Tenant,
                          order_ids: Sequence[str]) -> list[str]:
    """The buyers' names, phones and ID numbers (opened) of these orders' cross-border parts:
    what an erasure searches for in the copies (events, stored replies, messages)."""
    keys = keys_from_settings()
    values: list[str] = []
    for r in _orders(session, tenant, order_ids):
        values += [v for v in (r.buyer_name, r.buyer_phone) if v and v != ERASED]
        if r.id_cipher:
            values.append(keys.open(r.id_key, r.id_cipher))
    return values


def export_orders(session: Session, tenant: Tenant,
                  order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """The cross-border parts of the person's orders, the ID number opened (it is the
    person's own copy), and their declarations with the messages as sent to customs."""
    keys = keys_from_settings()
    orders = []
    for r in _orders(session, tenant, order_ids):
        orders.append({
            "id": r.id, "buyer_name": r.buyer_name, "buyer_phone": r.buyer_phone,
            "id_number": keys.open(r.id_key, r.id_cipher) if r.id_cipher else r.id_masked,
            "id_masked": r.id_masked, "dutiable_minor": r.dutiable_minor,
            "tax_minor": r.tax_minor, "tax_lines": r.tax_lines, "quota_year": r.quota_year,
            "quota_status": r.quota_status, "created_at": _plain(r.created_at),
            "released_at": _plain(r.released_at)})
    declarations = []
    for d in _declarations(session, tenant, order_ids):
        sealed = d.messages.get("sealed")
        messages = json.loads(keys.open(d.messages["key"], sealed)) if sealed \
            else d.messages["masked"]
        declarations.append({"id": d.id, "order_id": d.order_id, "status": d.status,
                             "messages": messages, "receipts": d.receipts,
                             "tax_bill": d.tax_bill, "created_at": _plain(d.created_at),
                             "updated_at": _plain(d.updated_at)})
    tracking = [{"id": t.id, "carrier": t.carrier, "tracking_number": t.tracking_number,
                 "status": t.status, "at": _plain(t.at), "location": t.location,
                 "description": t.description, "events": t.events}
                for t in _tracking(session, tenant, order_ids)]
    return {"crossborder_orders": orders, "crossborder_declarations": declarations,
            "crossborder_tracking": tracking}


def _tracking(session: Session, tenant: Tenant, order_ids: Sequence[str],
              lock: bool = False) -> list[Tracking]:
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        return []
    stmt = select(Tracking).where(Tracking.tenant_id == tenant.id,
                                  Tracking.id.in_(ids)).order_by(Tracking.id)
    return list(session.scalars(stmt.with_for_update() if lock else stmt))


def _redact_xml(xml: str, values: frozenset[str]) -> str:
    """The message with each personal value replaced: anywhere for values long enough to
    search for, as a whole element's text for short ones (a two-character name)."""
    for v in sorted(values, key=len, reverse=True):
        text = escape(v)
        if len(v) >= MIN_NEEDLE:
            xml = xml.replace(text, ERASED)
        else:
            xml = xml.replace(f">{text}<", f">{ERASED}<")
    return xml


def erase_orders(session: Session, tenant: Tenant, order_ids: Sequence[str],
                 values: frozenset[str]) -> int:
    """Erase the buyer from these orders' cross-border parts and declarations (the kept
    records: this module's docstring). ``values`` are the person's values (names, phones, ID
    numbers, address fields) to take out of the customs messages. Idempotent; returns the
    rows changed."""
    keys = keys_from_settings()
    changed = 0
    rows = _orders(session, tenant, order_ids, lock=True)
    found = values | frozenset(order_personal_values(session, tenant, [r.id for r in rows]))
    for r in rows:
        if r.buyer_name == ERASED and not r.id_cipher:
            continue
        r.buyer_name = r.buyer_phone = ERASED
        r.id_key, r.id_cipher = "", ""
        changed += 1
    for d in _declarations(session, tenant, order_ids, lock=True):
        masked = {k: _redact_xml(x, found) for k, x in d.messages["masked"].items()}
        messages = dict(d.messages, masked=masked)
        sealed_changed = False
        if d.messages.get("sealed"):
            sent = json.loads(keys.open(d.messages["key"], d.messages["sealed"]))
            redacted = {k: _redact_xml(x, found) for k, x in sent.items()}
            if redacted != sent:
                messages["key"], messages["sealed"] = keys.seal(json.dumps(redacted))
                sealed_changed = True
        receipts, c1 = scrub(d.receipts, found)
        tax_bill, c2 = scrub(d.tax_bill, found)
        if masked != d.messages["masked"] or sealed_changed or c1 or c2:
            d.messages, d.receipts, d.tax_bill = messages, receipts, tax_bill
            changed += 1
    for t in _tracking(session, tenant, order_ids, lock=True):
        # a carrier's free text may name the person ("signed for by …")
        before = (t.carrier, t.tracking_number, t.location, t.description)
        after = tuple(scrub(v, found)[0] for v in before)
        if after != before:
            t.carrier, t.tracking_number, t.location, t.description = after
            changed += 1
    session.flush()
    return changed
