"""Issue 14, customs: the four CEB messages generated from a paid cross-border order, each
valid against the package's XSD; the three-document check naming every disagreeing field;
the declaration's lifecycle moved by receipts and the tax bill; the messages masked
everywhere but the crossborder:identity route."""

from __future__ import annotations

from crossborder_support import BUYER, OTHER, product, refused

from haina.crossborder import customs

ENTERPRISE = {"ebp_code": "3301960000", "ebp_name": "Haina", "ebc_code": "3301960001",
              "ebc_name": "Demo Beauty", "agent_code": "3301980000",
              "agent_name": "Hangzhou Broker", "customs_code": "2991", "port_code": "2991",
              "dxp_id": "DXPENT0000000001"}
PAYMENT = {"pay_code": "312226T001", "pay_name": "Alipay", "transaction_id": "PAY0001"}
WAYBILL = {"logistics_code": "3122480063", "logistics_name": "SF", "logistics_no": "SF0001"}
ADDRESS = {"name": "王芳", "phone": "13800138000", "province": "浙江省", "city": "杭州市",
           "line1": "西湖区文三路 1 号"}


def paid_order(client, new_product: bool = True) -> dict:
    if new_product:
        product(client)
    r = client.post("/v1/orders", json={"lines": [{"sku": "SERUM-1", "quantity": 1}],
                                        "address": ADDRESS, "crossborder": {"buyer": BUYER}})
    assert r.status_code == 201, r.text
    o = r.json()
    pi = client.post("/v1/payment_intents", json={"order_id": o["id"],
                                                  "payment_method": {"type": "cash"}})
    assert pi.status_code == 201, pi.text
    return o


def declare(client, o, **changes):
    body = {"order_id": o["id"], "enterprise": ENTERPRISE, "payment": PAYMENT,
            "waybill": WAYBILL}
    for part, fields in changes.items():
        body[part] = {**body[part], **fields}
    return client.post("/v1/crossborder/declarations", json=body)


def test_a_paid_order_is_declared_with_four_valid_messages_masked_outside_the_identity_route(
        scanned):
    product(scanned)
    unpaid = scanned.post("/v1/orders", json={"lines": [{"sku": "SERUM-1", "quantity": 1}],
                                              "address": ADDRESS,
                                              "crossborder": {"buyer": BUYER}}).json()
    refused(declare(scanned, unpaid), 409, "invalid-state")
    o = paid_order(scanned, new_product=False)
    r = declare(scanned, o)
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["status"] == "ready" and set(d["messages"]) == set(customs.KINDS)
    assert "3604**********0075" in d["messages"]["CEB311"]
    sent = scanned.get(f"/v1/crossborder/declarations/{d['id']}/messages").json()["messages"]
    for kind, xml in sent.items():
        assert customs.problems(kind, xml) == [], kind
    head = customs.head_of(sent["CEB311"])
    assert (head["buyerIdNumber"], head["taxTotal"], head["acturalPaid"]) == (
        BUYER["id_number"], "230.59", "1230.59")
    assert customs.head_of(sent["CEB621"])["tradeMode"] == "1210"
    assert 'xmlns:ceb="http://www.chinaport.gov.cn/ceb"' in sent["CEB411"]
    assert "<ceb:BaseTransfer>" in sent["CEB511"]
    refused(declare(scanned, o), 409, "declaration-exists")
    events = scanned.get("/v1/events", params={"type": "crossborder.declaration.ready"})
    ready = [e for e in events.json()["data"] if e["type"] == "crossborder.declaration.ready"]
    assert ready and ready[0]["data"]["messages"] == d["messages"]


MISMATCHES = [
    ({"payment": {"payer_id_number": OTHER["id_number"]}}, ["payment.payerIdNumber"]),
    ({"payment": {"payer_name": "李雷", "amount": "1000.00"}},
     ["payment.amountPaid", "payment.payerName"]),
    ({"waybill": {"order_no": "ord_other", "freight": "10.00", "consignee": "张三",
                  "consignee_phone": "1", "consignee_address": "elsewhere"}},
     ["waybill.orderNo", "waybill.freight", "waybill.consignee",
      "waybill.consigneeTelephone", "waybill.consigneeAddress"]),
]


def test_the_three_document_check_names_every_field_that_disagrees(scanned):
    o = paid_order(scanned)
    for changes, fields in MISMATCHES:
        body = refused(declare(scanned, o, **changes), 422, "documents-disagree")
        assert sorted(d["field"] for d in body["disagreements"]) == sorted(fields)
        assert all("*" in d["order_value"] for d in body["disagreements"]
                   if d["field"] == "payment.payerIdNumber")
    assert declare(scanned, o).status_code == 201  # nothing was kept of the refused ones


def _receipt(kind: str, guid: str, status: str, order_no: str = "") -> str:
    answers, tag = customs.RECEIPTS[kind]
    return (f'<ceb:{kind}Message xmlns:ceb="{customs.NS}" guid="{customs.new_guid()}" '
            f'version="1.0"><ceb:{tag}><ceb:guid>{guid}</ceb:guid>'
            f"<ceb:orderNo>{order_no}</ceb:orderNo>"
            f"<ceb:returnStatus>{status}</ceb:returnStatus><ceb:returnTime>20261201120000"
            f"</ceb:returnTime><ceb:returnInfo>ok</ceb:returnInfo></ceb:{tag}>"
            f"</ceb:{kind}Message>")


def test_receipts_and_the_tax_bill_move_the_declaration(scanned):
    o = paid_order(scanned)
    d = declare(scanned, o).json()
    sent = scanned.get(f"/v1/crossborder/declarations/{d['id']}/messages").json()["messages"]
    guid = {k: customs.head_of(x)["guid"] for k, x in sent.items()}
    url = f"/v1/crossborder/declarations/{d['id']}/receipts"
    refused(scanned.post(url, json={"message": _receipt("CEB312", customs.new_guid(), "120")}),
            422, "receipt-mismatch")
    refused(scanned.post(url, json={"message": "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"}),
            422, "bad-customs-message")
    r = scanned.post(url, json={"message": _receipt("CEB312", guid["CEB311"], "120")})
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    r = scanned.post(url, json={"message": _receipt("CEB622", guid["CEB621"], "800")})
    assert r.json()["status"] == "released"
    bill = (f'<ceb:CEB816Message xmlns:ceb="{customs.NS}" guid="{customs.new_guid()}" '
            f'version="1.0"><ceb:Tax><ceb:TaxHeadRd><ceb:guid>{customs.new_guid()}</ceb:guid>'
            f"<ceb:returnTime>20261201130000</ceb:returnTime><ceb:orderNo>{o['id']}"
            "</ceb:orderNo><ceb:taxNo>T1</ceb:taxNo><ceb:valueAddedTax>107.06"
            "</ceb:valueAddedTax><ceb:consumptionTax>123.53</ceb:consumptionTax>"
            "<ceb:status>1</ceb:status></ceb:TaxHeadRd></ceb:Tax></ceb:CEB816Message>")
    r = scanned.post(url, json={"message": bill})
    out = r.json()
    assert out["status"] == "released" and out["tax_bill"]["valueAddedTax"] == "107.06"
    assert [x["kind"] for x in out["receipts"]] == ["CEB312", "CEB622", "CEB816"]
    r = scanned.post(f"/v1/crossborder/orders/{o['id']}/tracking", json={
        "carrier": "SF", "tracking_number": "SF0001", "status": "delivered",
        "at": "2026-12-03T10:00:00+08:00", "location": "杭州"})
    assert r.status_code == 201, r.text
    timeline = scanned.get(f"/v1/orders/{o['id']}/timeline").json()["data"]
    assert [e["type"] for e in timeline if not e["type"].startswith(("order.", "payment"))] == [
        "crossborder.declaration.ready", "crossborder.declaration.accepted",
        "crossborder.declaration.released", "crossborder.declaration.receipt",
        "tracking.updated"]
    assert timeline[-1]["data"]["status"] == "delivered"
    naive = scanned.post(f"/v1/crossborder/orders/{o['id']}/tracking", json={
        "carrier": "SF", "tracking_number": "SF0001", "status": "delivered",
        "at": "2026-12-03T10:00:00"})
    assert naive.status_code == 422


def test_tracking_keeps_the_latest_status_of_the_declared_waybill(scanned):
    o = paid_order(scanned)
    url = f"/v1/crossborder/orders/{o['id']}/tracking"
    event = {"carrier": "SF", "tracking_number": "SF0001", "status": "in_transit",
             "at": "2026-12-02T10:00:00+08:00", "location": "Hong Kong"}
    refused(scanned.post(url, json=event), 409, "not-declared")
    assert scanned.get(url).status_code == 404  # nothing tracked yet
    # declared with the merchant's customs profile (the request names no enterprise)
    body = {"order_id": o["id"], "payment": PAYMENT, "waybill": WAYBILL}
    refused(scanned.post("/v1/crossborder/declarations", json=body), 422,
            "customs-profile-required")
    assert scanned.get("/v1/crossborder/customs-profile").status_code == 404
    profile = scanned.put("/v1/crossborder/customs-profile", json=ENTERPRISE)
    assert profile.status_code == 200 and profile.json()["ebc_name"] == "Demo Beauty"
    assert scanned.get("/v1/crossborder/customs-profile").json() == profile.json()
    d = scanned.post("/v1/crossborder/declarations", json=body)
    assert d.status_code == 201, d.text
    sent = scanned.get(f"/v1/crossborder/declarations/{d.json()['id']}/messages").json()
    assert customs.head_of(sent["messages"]["CEB621"])["agentCode"] == ENTERPRISE["agent_code"]
    got = refused(scanned.post(url, json={**event, "tracking_number": "SF9999"}), 422,
                  "tracking-mismatch")
    assert got["waybill"] == "SF0001"
    assert scanned.post(url, json=event).status_code == 201
    assert scanned.post(url, json={**event, "status": "customs_cleared",
                                   "at": "2026-12-03T09:00:00+08:00",
                                   "location": "Hangzhou"}).status_code == 201
    # an earlier event arriving late is counted and on the timeline, but not the latest
    late = scanned.post(url, json={**event, "status": "arrived_in_china",
                                   "at": "2026-12-02T20:00:00+08:00"})
    assert late.status_code == 201
    latest = scanned.get(url).json()
    assert (latest["status"], latest["location"], latest["events"], latest["tracking_number"]) \
        == ("customs_cleared", "Hangzhou", 3, "SF0001")
    assert latest["at"].startswith("2026-12-03T01:00:00")
    timeline = scanned.get(f"/v1/orders/{o['id']}/timeline").json()["data"]
    assert [e["data"]["status"] for e in timeline if e["type"] == "tracking.updated"] == [
        "in_transit", "customs_cleared", "arrived_in_china"]


def test_a_rejection_is_final():
    from haina.crossborder.declarations import _status_after
    assert _status_after("CEB622", "100", "accepted") == "rejected"
    assert _status_after("CEB312", "-301010", "ready") == "rejected"
    assert _status_after("CEB622", "800", "rejected") == "rejected"
    assert _status_after("CEB622", "399", "ready") == "accepted"


def test_rotating_keys_reseals_numbers_and_messages_and_old_keys_can_go(
        scanned, sessions, engine, monkeypatch):
    import base64
    import hashlib

    from sqlalchemy import text

    from haina.core.config import get_settings
    from haina.core.db import transaction
    from haina.crossborder import identity, service

    o = paid_order(scanned)
    d = declare(scanned, o).json()
    secret = identity._DEV_SECRET
    dev = base64.b64encode(hashlib.sha256(secret).digest()).decode()
    index = base64.b64encode(hashlib.sha256(secret + b"/index").digest()).decode()
    new = base64.b64encode(b"n" * 32).decode()

    def use(keys: str) -> None:
        monkeypatch.setenv("HAINA_CROSSBORDER_KEYS", keys)
        monkeypatch.setenv("HAINA_CROSSBORDER_INDEX_KEY", index)
        get_settings.cache_clear()

    try:
        use(f"k2:{new},dev:{dev}")
        with transaction(sessions) as s:
            assert service.reseal(s) == 2  # the buyer's record and the declaration
        with transaction(sessions) as s:
            assert service.reseal(s) == 0
        use(f"k2:{new}")  # the old key dropped: everything still opens
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id_key FROM crossborder_orders")).scalar() == "k2"
        assert scanned.get(f"/v1/crossborder/orders/{o['id']}/identity").json()[
            "buyer"]["id_number"] == BUYER["id_number"]
        sent = scanned.get(f"/v1/crossborder/declarations/{d['id']}/messages").json()
        assert customs.head_of(sent["messages"]["CEB411"])["payerIdNumber"] == \
            BUYER["id_number"]
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_broker_and_logistics_apps_declare_post_receipts_and_tracking_through_their_scopes(
        scanned, sessions):
    from support import app_token
    o = paid_order(scanned)
    broker = {"Authorization": f"Bearer {app_token(sessions, 'acme', 'crossborder:write')}"}
    carrier = {"Authorization": f"Bearer {app_token(sessions, 'acme', 'crossborder:write')}"}
    reader = {"Authorization": f"Bearer {app_token(sessions, 'acme', 'orders:read')}"}
    body = {"order_id": o["id"], "enterprise": ENTERPRISE, "payment": PAYMENT,
            "waybill": WAYBILL}
    refused(scanned.post("/v1/crossborder/declarations", headers=reader, json=body), 403,
            "insufficient-scope")
    d = scanned.post("/v1/crossborder/declarations", headers=broker, json=body)
    assert d.status_code == 201, d.text
    # the unmasked messages need crossborder:identity, which the broker was not granted
    at = f"/v1/crossborder/declarations/{d.json()['id']}"
    refused(scanned.get(f"{at}/messages", headers=broker), 403, "insufficient-scope")
    guid = customs.head_of(scanned.get(f"{at}/messages").json()["messages"]["CEB311"])["guid"]
    receipt = {"message": _receipt("CEB312", guid, "120")}
    refused(scanned.post(f"{at}/receipts", headers=reader, json=receipt), 403,
            "insufficient-scope")
    r = scanned.post(f"{at}/receipts", headers=broker, json=receipt)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    r = scanned.post(f"/v1/crossborder/orders/{o['id']}/tracking", headers=carrier, json={
        "carrier": "SF", "tracking_number": "SF0001", "status": "in_transit",
        "at": "2026-12-03T10:00:00+08:00"})
    assert r.status_code == 201, r.text
    timeline = scanned.get(f"/v1/orders/{o['id']}/timeline").json()["data"]
    assert [e["type"] for e in timeline if not e["type"].startswith(("order.", "payment"))] == [
        "crossborder.declaration.ready", "crossborder.declaration.accepted", "tracking.updated"]
