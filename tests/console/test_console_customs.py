"""The console's cross-border pages over HTTP: declarations with their state and receipts,
the three-document check rule by rule (a disagreeing field named), the order's customs
status, and the buyer's ID number never shown unmasked. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select

from haina.core.db import transaction
from haina.crossborder import customs
from haina.crossborder.identity import ID_NUMBER_PATTERN

BUYER = {"name": "王芳", "id_number": "360403198001010075", "phone": "13800138000"}
ADDRESS = {"name": "王芳", "phone": "13800138000", "province": "浙江省", "city": "杭州市",
           "line1": "西湖区文三路 1 号"}
DECLARATION = {
    "enterprise": {"ebp_code": "3301960000", "ebp_name": "Haina", "ebc_code": "3301960001",
                   "ebc_name": "Acme", "agent_code": "3301980000", "agent_name": "Broker",
                   "customs_code": "2991", "port_code": "2991", "dxp_id": "DXPENT0000000001"},
    "payment": {"pay_code": "312226T001", "pay_name": "Alipay", "transaction_id": "PAY0001"},
    "waybill": {"logistics_code": "3122480063", "logistics_name": "SF",
                "logistics_no": "SF0001"}}


BRAND = {"name": "Maison C", "origin_country": "FR", "owner": "Maison C SAS",
         "agency_name": "Agency", "authorisation": {
             "grantor": "Maison C SAS", "grantee": "Acme", "reference": "AUT-1",
             "valid_from": "2026-01-01", "valid_until": "2099-01-01"}}


def qualified_brand(sessions, client, headers=None) -> str:
    """A brand filed through the API and approved by platform staff (the CLI's service)."""
    from haina.crossborder import service as crossborder
    from haina.platform import service as platform
    r = client.post("/v1/crossborder/brands", json=BRAND, headers=headers)
    assert r.status_code == 201, r.text
    slug = client.get("/v1/tenant", headers=headers).json()["slug"]
    with transaction(sessions) as s:
        crossborder.review_brand(s, platform.tenant_for_slug(s, slug), r.json()["id"],
                                 "approve", "checked", "staff")
    return r.json()["id"]


def _declared(client) -> dict:
    p = client.post("/v1/products", json={"sku": "SERUM-1", "title": "Serum", "stock": 5,
                                          "price": {"amount": "1000.00", "currency": "CNY"}})
    assert p.status_code == 201, p.text
    r = client.put(f"/v1/crossborder/products/{p.json()['id']}", json={
        "hs_code": "3304990099", "origin_country": "FR", "vat_rate": "0.13",
        "consumption_rate": "0.15", "net_weight_kg": "0.050", "gross_weight_kg": "0.120",
        "mode": "bonded", "brand_id": qualified_brand(client.app.state.sessionmaker, client)})
    assert r.status_code == 200, r.text
    o = client.post("/v1/orders", json={"lines": [{"sku": "SERUM-1", "quantity": 1}],
                                        "address": ADDRESS, "crossborder": {"buyer": BUYER}})
    assert o.status_code == 201, o.text
    pi = client.post("/v1/payment_intents", json={"order_id": o.json()["id"],
                                                  "payment_method": {"type": "cash"}})
    assert pi.status_code == 201, pi.text
    d = client.post("/v1/crossborder/declarations",
                    json={"order_id": o.json()["id"], **DECLARATION})
    assert d.status_code == 201, d.text
    return d.json()


def _receipt(kind: str, guid: str, status: str) -> str:
    answers, tag = customs.RECEIPTS[kind]
    return (f'<ceb:{kind}Message xmlns:ceb="{customs.NS}" guid="{customs.new_guid()}" '
            f'version="1.0"><ceb:{tag}><ceb:guid>{guid}</ceb:guid><ceb:orderNo></ceb:orderNo>'
            f"<ceb:returnStatus>{status}</ceb:returnStatus><ceb:returnTime>20261201120000"
            f"</ceb:returnTime><ceb:returnInfo>入库成功</ceb:returnInfo></ceb:{tag}>"
            f"</ceb:{kind}Message>")


def test_declarations_their_check_receipts_and_the_orders_customs_status(
        browser_as, shop, client, sessions):
    d = _declared(client)
    guid = customs.head_of(d["messages"]["CEB311"])["guid"]
    r = client.post(f"/v1/crossborder/declarations/{d['id']}/receipts",
                    json={"message": _receipt("CEB312", guid, "120")})
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    viewer = browser_as("read-only")  # reading needs no more than read-only
    shown = []
    listing = viewer.get("/console/crossborder").text
    shown.append(listing)
    assert d["id"] in listing and "3604**********0075" in listing and "accepted" in listing
    assert d["id"] not in viewer.get("/console/crossborder", params={"status": "released"}).text
    page = viewer.get(f"/console/crossborder/declarations/{d['id']}").text
    shown.append(page)
    assert "The order, the payment and the waybill agree." in page
    assert page.count('<span class="ok">yes</span>') == len(customs.THREE_DOCUMENT_RULES)
    assert "CEB312" in page and "入库成功" in page and "payerIdNumber" in page
    order = viewer.get(f"/console/orders/{d['order_id']}").text
    shown.append(order)
    assert f"/console/crossborder/declarations/{d['id']}" in order and "counted" in order
    assert "No service booked." in order
    assert not any(ID_NUMBER_PATTERN.search(html) for html in shown)

    # a waybill that no longer agrees (edited in the database) is named on the page
    from haina.crossborder.models import Declaration
    with transaction(sessions) as s:
        row = s.scalar(select(Declaration).where(Declaration.id == d["id"]))
        masked = dict(row.messages["masked"])
        masked["CEB511"] = masked["CEB511"].replace("13800138000", "13900000000")
        row.messages = {**row.messages, "masked": masked}
    page = viewer.get(f"/console/crossborder/declarations/{d['id']}").text
    assert "disagrees with the order: waybill.consigneeTelephone." in page
    assert page.count('<strong class="bad">no</strong>') == 1


def test_another_merchants_declaration_is_not_found(browser_as, shop, client, sessions, app):
    from fastapi.testclient import TestClient
    from support import make_tenant
    _, token = make_tenant(sessions, "globex")
    with TestClient(app) as other:
        other.headers["Authorization"] = f"Bearer {token}"
        theirs = _declared(other)
    owner = browser_as("owner")
    r = owner.get(f"/console/crossborder/declarations/{theirs['id']}")
    assert r.status_code == 404 and "3604" not in r.text
    assert theirs["id"] not in owner.get("/console/crossborder").text
