"""Customs declarations of cross-border orders: the four messages generated from the order and
validated, the three-document check before anything is stored, and the receipts and tax bill
that move the declaration through ``DECLARATION_LIFECYCLE``.

The messages hold the buyer's ID number, so they are stored sealed (the same keys as the
buyer's record); the declaration, its ``crossborder.declaration.ready`` event and every other
response carry them with the number masked. A broker app reads them as sent with the
``crossborder:identity`` scope."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from haina.core.context import Tenant
from haina.core.db import add_unique, is_postgres, tenant_row, utcnow
from haina.core.errors import Conflict, Invalid, InvalidState
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.core.money import from_minor
from haina.crossborder import customs
from haina.crossborder.identity import ID_NUMBER_PATTERN, keys_from_settings, mask
from haina.crossborder.lifecycle import DECLARATION_LIFECYCLE
from haina.crossborder.models import (
    CrossborderOrder,
    CrossborderProduct,
    CustomsProfile,
    Declaration,
    Tracking,
)
from haina.crossborder.schemas import (
    CustomsProfileOut,
    DeclarationIn,
    DeclarationMessages,
    DeclarationOut,
    DeclaredOrder,
    EnterpriseIn,
    ReceiptIn,
    ReceiptOut,
    TrackingIn,
    TrackingOut,
    TrackingStatusOut,
)

DECLARABLE = ("paid", "fulfilled", "completed")
TRADE_MODES = {"bonded": "1210", "direct_mail": "9610"}
RELEASED = {"800", "899"}          # CEB622: 放行, 结关
REFUSED = {"4", "100", "700"}      # CEB622: sending failed, 退单, 退运


def _masked(text: str) -> str:
    return ID_NUMBER_PATTERN.sub(lambda m: mask(m.group(0)), text)


def _yuan(minor: int) -> str:
    return f"{from_minor(minor, 'CNY'):.2f}"


def _kg(grams: int) -> str:
    return str(Decimal(grams).scaleb(-3))


def declare(session: Session, tenant: Tenant, order: DeclaredOrder,
            data: DeclarationIn) -> DeclarationOut:
    """Generate, validate and check the order's four messages and record the declaration
    ``ready``. 404 for an order without a cross-border part; 409 for an unpaid order or one
    declared already; 422 ``documents-disagree`` naming every field of the payment or the
    waybill that disagrees with the order, ``invalid-customs-message`` for a message its XSD
    refuses, ``unknown-origin-country``, ``mixed-modes``, ``address-required``."""
    xb = tenant_row(session, tenant.id, CrossborderOrder, order.order_id, "crossborder order")
    if order.status not in DECLARABLE:
        raise InvalidState(f"only a paid order is declared; this one is {order.status}",
                           status_now=order.status)
    if not (order.consignee_name and order.consignee_phone and order.consignee_address):
        raise Invalid("a cross-border order needs an address (the consignee) to be declared",
                      slug="address-required")
    products = {p.id: p for p in session.scalars(select(CrossborderProduct).where(
        CrossborderProduct.tenant_id == tenant.id,
        CrossborderProduct.id.in_({ln.product_id for ln in order.lines})))}
    for p in products.values():
        if p.origin_country not in customs.COUNTRIES:
            raise Invalid(f"no customs country code for origin {p.origin_country}",
                          slug="unknown-origin-country", country=p.origin_country)
    modes = {products[ln.product_id].mode for ln in order.lines}
    if len(modes) > 1:
        raise Invalid("one declaration is bonded or direct mail, not both", slug="mixed-modes")
    if not xb.id_cipher:
        raise InvalidState("the buyer of this order was erased at their request: it can no "
                           "longer be declared", slug="buyer-erased")
    enterprise = data.enterprise or _profile(session, tenant)
    keys = keys_from_settings()
    id_number = keys.open(xb.id_key, xb.id_cipher)
    messages = _messages(order, data, enterprise, xb, id_number, products,
                         TRADE_MODES[modes.pop()])
    invalid = {kind: [_masked(p) for p in customs.problems(kind, xml)]
               for kind, xml in messages.items()}
    invalid = {kind: found for kind, found in invalid.items() if found}
    if invalid:
        raise Invalid("a generated message does not validate against its XSD: "
                      + "; ".join(f"{k}: {v[0]}" for k, v in invalid.items()),
                      slug="invalid-customs-message", problems=invalid)
    disagreements = customs.three_document_check(messages["CEB311"], messages["CEB411"],
                                                 messages["CEB511"])
    if disagreements:
        raise Invalid("the payment or the waybill disagrees with the order: "
                      + ", ".join(d.field for d in disagreements), slug="documents-disagree",
                      disagreements=[{"field": d.field, "order_field": d.order_field,
                                      "order_value": _masked(d.order_value),
                                      "value": _masked(d.value)} for d in disagreements])
    now = utcnow()
    masked = {kind: _masked(xml) for kind, xml in messages.items()}
    key_id, sealed = keys.seal(json.dumps(messages))
    row = Declaration(id=new_id("declaration"), tenant_id=tenant.id, order_id=order.order_id,
                      status="ready", receipts=[], tax_bill=None, created_at=now,
                      updated_at=now, messages={
                          "masked": masked, "key": key_id, "sealed": sealed,
                          "waybill_no": data.waybill.logistics_no,
                          "guids": {k: customs.head_of(x)["guid"] for k, x in messages.items()}})
    add_unique(session, row, lambda: Conflict(f"order {order.order_id} is declared already",
                                              slug="declaration-exists"))
    DECLARATION_LIFECYCLE.check("crossborder.declaration.ready", None, "ready")
    # the order is the subject: customs events join the order's timeline (one declaration
    # per order, so the lifecycle walk per subject is the declaration's)
    record_event(session, tenant.id, "crossborder.declaration.ready", order.order_id,
                 {"declaration_id": row.id, "order_id": order.order_id, "status": "ready",
                  "messages": masked})
    return _out(row)


def _messages(order: DeclaredOrder, data: DeclarationIn, enterprise: EnterpriseIn,
              xb: CrossborderOrder, id_number: str, products: dict[str, CrossborderProduct],
              trade_mode: str) -> dict[str, str]:
    e, pay, bill = enterprise, data.payment, data.waybill
    now = utcnow()
    app = {"appType": "1", "appTime": customs.time14(now), "appStatus": "2"}
    sender = {"copCode": e.ebp_code, "copName": e.ebp_name, "dxpMode": "DXP", "dxpId": e.dxp_id}
    cny = customs.CURRENCY_CNY
    consignee = (order.consignee_name, order.consignee_phone, order.consignee_address)
    order_head = {
        "guid": customs.new_guid(), **app, "orderType": "I", "orderNo": order.order_id,
        "ebpCode": e.ebp_code, "ebpName": e.ebp_name, "ebcCode": e.ebc_code,
        "ebcName": e.ebc_name, "goodsValue": _yuan(order.subtotal_minor),
        "freight": _yuan(order.shipping_minor), "discount": _yuan(order.discount_minor),
        "taxTotal": _yuan(order.tax_minor), "acturalPaid": _yuan(order.total_minor),
        "currency": cny, "buyerRegNo": order.member_id or order.order_id,
        "buyerName": xb.buyer_name, "buyerTelephone": xb.buyer_phone, "buyerIdType": "1",
        "buyerIdNumber": id_number, "payCode": pay.pay_code, "payName": pay.pay_name,
        "payTransactionId": pay.transaction_id, "consignee": consignee[0],
        "consigneeTelephone": consignee[1], "consigneeAddress": consignee[2]}
    order_goods = [{"gnum": i, "itemNo": ln.sku, "itemName": ln.title,
                    "unit": customs.UNIT_PIECE, "qty": ln.quantity,
                    "price": _yuan(ln.unit_price_minor), "totalPrice": _yuan(ln.total_minor),
                    "currency": cny,
                    "country": customs.COUNTRIES[products[ln.product_id].origin_country]}
                   for i, ln in enumerate(order.lines, 1)]
    payment_head = {
        "guid": customs.new_guid(), **app, "payCode": pay.pay_code, "payName": pay.pay_name,
        "payTransactionId": pay.transaction_id, "orderNo": order.order_id,
        "ebpCode": e.ebp_code, "ebpName": e.ebp_name, "payerIdType": "1",
        "payerIdNumber": pay.payer_id_number or id_number,
        "payerName": pay.payer_name or xb.buyer_name, "telephone": xb.buyer_phone,
        "amountPaid": f"{pay.amount:.2f}" if pay.amount is not None else _yuan(order.paid_minor),
        "currency": cny, "payTime": customs.time14(pay.paid_at or order.paid_at or now)}
    gross = sum(products[ln.product_id].gross_weight_g * ln.quantity for ln in order.lines)
    net = sum(products[ln.product_id].net_weight_g * ln.quantity for ln in order.lines)
    waybill_head = {
        "guid": customs.new_guid(), **app, "logisticsCode": bill.logistics_code,
        "logisticsName": bill.logistics_name, "logisticsNo": bill.logistics_no,
        "orderNo": bill.order_no or order.order_id,
        "freight": f"{bill.freight:.2f}" if bill.freight is not None
        else _yuan(order.shipping_minor),
        "insuredFee": "0.00", "currency": cny, "weight": _kg(gross), "packNo": 1,
        "consignee": bill.consignee or consignee[0],
        "consigneeAddress": bill.consignee_address or consignee[2],
        "consigneeTelephone": bill.consignee_phone or consignee[1]}
    first = products[order.lines[0].product_id]
    day = customs.time14(now)[:8]
    inventory_head = {
        "guid": customs.new_guid(), **app, "orderNo": order.order_id, "ebpCode": e.ebp_code,
        "ebpName": e.ebp_name, "ebcCode": e.ebc_code, "ebcName": e.ebc_name,
        "logisticsNo": bill.logistics_no, "logisticsCode": bill.logistics_code,
        "logisticsName": bill.logistics_name, "copNo": order.order_id,
        "assureCode": e.ebc_code, "ieFlag": "I", "declTime": day,
        "customsCode": e.customs_code, "portCode": e.port_code, "ieDate": day,
        "buyerIdType": "1", "buyerIdNumber": id_number, "buyerName": xb.buyer_name,
        "buyerTelephone": xb.buyer_phone, "consigneeAddress": consignee[2],
        "agentCode": e.agent_code, "agentName": e.agent_name, "tradeMode": trade_mode,
        "trafMode": e.traf_mode, "country": customs.COUNTRIES[first.origin_country],
        "freight": _yuan(order.shipping_minor), "insuredFee": "0.00", "currency": cny,
        "packNo": 1, "grossWeight": _kg(gross), "netWeight": _kg(net)}
    inventory_goods = [{"gnum": i, "itemNo": ln.sku, "itemName": ln.title,
                        "gcode": products[ln.product_id].hs_code, "gname": ln.title,
                        "gmodel": ln.title,
                        "country": customs.COUNTRIES[products[ln.product_id].origin_country],
                        "currency": cny, "qty": ln.quantity, "unit": customs.UNIT_PIECE,
                        "qty1": _kg(products[ln.product_id].net_weight_g * ln.quantity),
                        "unit1": customs.UNIT_KG, "price": _yuan(ln.unit_price_minor),
                        "totalPrice": _yuan(ln.total_minor)}
                       for i, ln in enumerate(order.lines, 1)]
    return {"CEB311": customs.build("CEB311", order_head, order_goods, sender),
            "CEB411": customs.build("CEB411", payment_head, None, sender),
            "CEB511": customs.build("CEB511", waybill_head, None, sender),
            "CEB621": customs.build("CEB621", inventory_head, inventory_goods, sender)}


def _profile(session: Session, tenant: Tenant) -> EnterpriseIn:
    row = session.get(CustomsProfile, (tenant.id, tenant.id))
    if row is None:
        raise Invalid("name the enterprise in the declaration, or set the merchant's customs "
                      "profile (PUT /v1/crossborder/customs-profile)",
                      slug="customs-profile-required")
    return EnterpriseIn.model_validate(row.enterprise)


def _profile_out(row: CustomsProfile) -> CustomsProfileOut:
    return CustomsProfileOut(**row.enterprise, updated_at=row.updated_at)


def put_customs_profile(session: Session, tenant: Tenant,
                        data: EnterpriseIn) -> CustomsProfileOut:
    """Set the merchant's customs profile: the enterprise its declarations name by default."""
    row = session.get(CustomsProfile, (tenant.id, tenant.id), with_for_update=True)
    if row is None:
        row = CustomsProfile(id=tenant.id, tenant_id=tenant.id)
        session.add(row)
    row.enterprise, row.updated_at = data.model_dump(mode="json"), utcnow()
    session.flush()
    return _profile_out(row)


def get_customs_profile(session: Session, tenant: Tenant) -> CustomsProfileOut:
    return _profile_out(tenant_row(session, tenant.id, CustomsProfile, tenant.id,
                                   "customs profile"))


def _out(row: Declaration) -> DeclarationOut:
    return DeclarationOut(id=row.id, order_id=row.order_id, status=row.status,
                          messages=row.messages["masked"],
                          receipts=[ReceiptOut.model_validate(r) for r in row.receipts],
                          tax_bill=row.tax_bill, created_at=row.created_at,
                          updated_at=row.updated_at)


def get_declaration(session: Session, tenant: Tenant, declaration_id: str) -> DeclarationOut:
    return _out(tenant_row(session, tenant.id, Declaration, declaration_id, "declaration"))


def declaration_messages(session: Session, tenant: Tenant,
                         declaration_id: str) -> DeclarationMessages:
    """The messages as sent (the caller holds ``crossborder:identity``)."""
    row = tenant_row(session, tenant.id, Declaration, declaration_id, "declaration")
    messages = json.loads(keys_from_settings().open(row.messages["key"], row.messages["sealed"]))
    return DeclarationMessages(id=row.id, order_id=row.order_id, messages=messages)


def _status_after(kind: str, return_status: str, now_status: str) -> str:
    if now_status in ("released", "rejected"):
        return now_status  # final: later receipts are recorded, the state stays
    if return_status.startswith("-") or (kind == "CEB622" and return_status in REFUSED):
        return "rejected"
    if kind == "CEB622" and return_status in RELEASED:
        return "released"
    return "accepted"


def ingest_receipt(session: Session, tenant: Tenant, declaration_id: str,
                   data: ReceiptIn) -> DeclarationOut:
    """Record a receipt (CEB312/412/512/622) or the CEB816 tax bill and move the declaration
    (422 ``bad-customs-message``, ``receipt-mismatch`` for one that answers another
    declaration's message)."""
    row = tenant_row(session, tenant.id, Declaration, declaration_id, "declaration", lock=True)
    try:
        receipt = customs.read_receipt(data.message)
    except customs.BadMessage as exc:
        raise Invalid(str(exc), slug="bad-customs-message") from None
    if receipt.kind == "CEB816":
        if receipt.order_no != row.order_id:
            raise Invalid("this tax bill is for another order", slug="receipt-mismatch")
        row.tax_bill = {k: v for k, v in receipt.fields.items() if k != "guid"}
    elif receipt.guid != row.messages["guids"][receipt.answers]:
        raise Invalid(f"this {receipt.kind} answers another {receipt.answers} than this "
                      "declaration's", slug="receipt-mismatch")
    now = utcnow()
    before = row.status
    after = before if receipt.kind == "CEB816" else \
        _status_after(receipt.kind, receipt.return_status, before)
    event = {("ready", "accepted"): "accepted", ("accepted", "accepted"): "accepted",
             ("ready", "released"): "released", ("accepted", "released"): "released",
             ("ready", "rejected"): "rejected", ("accepted", "rejected"): "rejected",
             }.get((before, after), "receipt")
    event_type = f"crossborder.declaration.{event}"
    DECLARATION_LIFECYCLE.check(event_type, before, after)
    entry = ReceiptOut(kind=receipt.kind, answers=receipt.answers,
                       return_status=receipt.return_status,
                       return_info=receipt.return_info[:500],
                       return_time=receipt.return_time[:20], received_at=now)
    row.receipts = [*row.receipts, entry.model_dump(mode="json")]
    row.status, row.updated_at = after, now
    record_event(session, tenant.id, event_type, row.order_id,
                 {"declaration_id": row.id, "order_id": row.order_id, "status": after,
                  "kind": receipt.kind, "return_status": receipt.return_status,
                  "return_info": entry.return_info})
    session.flush()
    return _out(row)


def _waybill_no(d: Declaration) -> str:
    """The declared waybill's number (kept beside the messages since tracking was added;
    read from the masked CEB511 for older declarations)."""
    return d.messages.get("waybill_no") or customs.head_of(d.messages["masked"]["CEB511"])[
        "logisticsNo"]


def record_tracking(session: Session, tenant: Tenant, order_id: str,
                    data: TrackingIn) -> TrackingOut:
    """A carrier's tracking event of a declared cross-border order (posted by a logistics
    app): the event ``tracking.updated`` on the order's timeline, and the order's latest
    status if the event is the latest so far. 404 for an order without a cross-border part,
    409 ``not-declared`` before the declaration (the waybill is declared with it), 422
    ``tracking-mismatch`` for a tracking number that is not the declared waybill's."""
    tenant_row(session, tenant.id, CrossborderOrder, order_id, "crossborder order")
    declared = session.scalar(select(Declaration).where(Declaration.tenant_id == tenant.id,
                                                        Declaration.order_id == order_id))
    if declared is None:
        raise InvalidState("this order's waybill is not declared yet: tracking follows the "
                           "declaration", slug="not-declared")
    waybill = _waybill_no(declared)
    if data.tracking_number != waybill:
        raise Invalid(f"tracking number {data.tracking_number!r} is not the declared waybill "
                      f"{waybill!r}", slug="tracking-mismatch", waybill=waybill)
    now = utcnow()
    table = Tracking.__table__
    dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
    # the row is made once per order (two first events at once: one inserts, both update)
    session.execute(dialect_insert(table).values(
        id=order_id, tenant_id=tenant.id, carrier=data.carrier, tracking_number=waybill,
        status=data.status, at=data.at, location=data.location, description=data.description,
        events=0, updated_at=now).on_conflict_do_nothing(index_elements=["tenant_id", "id"]))
    row = session.scalar(select(Tracking).where(Tracking.tenant_id == tenant.id,
                                                Tracking.id == order_id)
                         .with_for_update().execution_options(populate_existing=True))
    assert row is not None
    row.events, row.updated_at = row.events + 1, now
    if data.at >= row.at:  # an older event arriving late does not hide the latest
        row.carrier, row.status, row.at = data.carrier, data.status, data.at
        row.location, row.description = data.location, data.description
    session.flush()
    payload = {"order_id": order_id, **data.model_dump(mode="json")}
    event_id = record_event(session, tenant.id, "tracking.updated", order_id, payload)
    return TrackingOut(event_id=event_id, **payload)


def get_tracking(session: Session, tenant: Tenant, order_id: str) -> TrackingStatusOut:
    """The order's latest tracking status (404 before its first tracking event)."""
    row = tenant_row(session, tenant.id, Tracking, order_id, "tracking")
    return TrackingStatusOut(order_id=row.id, carrier=row.carrier,
                             tracking_number=row.tracking_number, status=row.status,
                             at=row.at, location=row.location, description=row.description,
                             events=row.events, updated_at=row.updated_at)


def reseal(session: Session, batch: int = 200) -> int:
    """Re-encrypt, under the current key, up to ``batch`` buyers' ID numbers and declarations'
    messages sealed under an older key, across merchants; how many were changed (0: none is
    left, the old keys may be dropped from ``HAINA_CROSSBORDER_KEYS``)."""
    keys = keys_from_settings()
    done = 0
    for row in session.scalars(select(CrossborderOrder).where(
            CrossborderOrder.id_key != keys.current, CrossborderOrder.id_cipher != "")
            .limit(batch).with_for_update()):
        row.id_key, row.id_cipher = keys.seal(keys.open(row.id_key, row.id_cipher))
        done += 1
    last = ""
    while done < batch:  # the key id is inside JSON: read declarations in pages
        rows = session.scalars(select(Declaration).where(Declaration.id > last)
                               .order_by(Declaration.id).limit(batch)).all()
        if not rows:
            break
        for d in rows:
            if d.messages.get("sealed") and d.messages["key"] != keys.current \
                    and done < batch:
                key_id, sealed = keys.seal(keys.open(d.messages["key"], d.messages["sealed"]))
                d.messages = {**d.messages, "key": key_id, "sealed": sealed}
                done += 1
        last = rows[-1].id
    session.flush()
    return done
