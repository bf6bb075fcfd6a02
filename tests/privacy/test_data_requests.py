"""Personal information rights (issue 18): a member's data exported and erased across every
module, on SQLite and PostgreSQL. After an erasure no table and no GET response of the
merchant holds the person's values, while the ledger balances and the order totals stand;
an export holds the person's orders and identities and nothing of another member's."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

from fastapi.testclient import TestClient
from sqlalchemy import JSON, LargeBinary, MetaData, String, Text, func, select, text

from haina.core.db import transaction
from haina.core.http import api_routes
from haina.crossborder import service as crossborder
from haina.platform import service as platform
from haina.privacy import service as privacy

# the person to erase (A, with A2 merged into it) and the one who must stay whole (B); the
# two share a city, a product and a coupon, so that "nothing of B" means something
A = {"name": "Zhao Yiming", "email": "zhao.yiming@example.cn", "phone": "13911112222",
     "birthday": "1988-03-04"}
A_OPENID = "o6_openid_of_zhao_A1"
A_EXTERNAL = "EXT-ZHAO-7781"
A2 = {"name": "赵一鸣", "phone": "13933334444"}
A_ADDRESS = {"name": "赵一鸣收", "phone": "13955556666", "province": "上海", "city": "上海",
             "line1": "幸福路 88 号甲单元", "postal_code": "200031"}
A_TRACKING = "SF7788990011"
# A's rating of the fitting: the comment is A's personal information (erased, exported)
A_COMMENT = "师傅很好, 下次还找王师傅 — Zhao's Passat"
# A's cross-border order: the buyer as customs knows them (an ID number, sealed at rest)
A_BUYER = {"name": "Zhao Y. Ming", "id_number": "11010519491231002X", "phone": "13966667777"}
XB_FACTS = {"hs_code": "3304990099", "origin_country": "FR", "vat_rate": "0.13",
            "consumption_rate": "0.15", "net_weight_kg": "0.050", "gross_weight_kg": "0.120",
            "mode": "bonded"}
XB_DECLARATION = {
    "enterprise": {"ebp_code": "3301960000", "ebp_name": "Haina", "ebc_code": "3301960001",
                   "ebc_name": "Acme", "agent_code": "3301980000", "agent_name": "Broker",
                   "customs_code": "2991", "port_code": "2991", "dxp_id": "DXPENT0000000001"},
    "payment": {"pay_code": "312226T001", "pay_name": "Alipay", "transaction_id": "PAY0001"},
    "waybill": {"logistics_code": "3122480063", "logistics_name": "SF",
                "logistics_no": "SF0001"}}
B = {"name": "Qian Lan", "email": "qian.lan@example.cn", "phone": "13800001111"}
B_ADDRESS = {"name": "钱兰收", "phone": "13877778888", "province": "上海", "city": "上海",
             "line1": "和平路 12 号"}

A_VALUES = [A["name"], A["email"], A["phone"], A_OPENID, A_EXTERNAL, A2["name"], A2["phone"],
            A_ADDRESS["name"], A_ADDRESS["phone"], A_ADDRESS["line1"], A_TRACKING,
            A_BUYER["name"], A_BUYER["phone"], A_COMMENT]
B_VALUES = [B["name"], B["email"], B["phone"], B_ADDRESS["name"], B_ADDRESS["line1"]]


def ok(r, status=(200, 201)):
    assert r.status_code in ((status,) if isinstance(status, int) else status), r.text
    return r.json()


def shop(client: TestClient) -> dict:
    """Two members with overlapping histories: orders paid by card, shipped, a merge, an
    open cart, points, consents, a coupon each; returns their ids."""
    ok(client.post("/v1/products", json={"sku": "TIRE-1", "title": "Tire", "stock": 50,
                                         "price": {"amount": "100.00", "currency": "CNY"}}))
    ok(client.post("/v1/coupons", json={"code": "SAVE10", "discount": {"type": "percent",
                                                                   "percent": "10"}}))
    a = ok(client.post("/v1/members", headers={"Idempotency-Key": "make-a"}, json={
        **A, "identities": [{"kind": "wechat_openid", "value": A_OPENID, "channel": "mp"},
                            {"kind": "external", "value": A_EXTERNAL}],
        "consents": {"email_marketing": True, "data_analysis": True, "channel": "web",
                     "text_version": "2026-01", "text": "同意接收营销邮件"}}))["id"]
    a2 = ok(client.post("/v1/members", json=A2))["id"]
    b = ok(client.post("/v1/members", json={**B, "consents": {"email_marketing": True}}))["id"]
    orders: dict[str, list[str]] = {a: [], a2: [], b: []}
    for member, address, card in ((a, A_ADDRESS, "4242424242424242"),
                                  (a2, A_ADDRESS, None), (b, B_ADDRESS, "5555555555554444")):
        o = ok(client.post("/v1/orders", json={
            "member_id": member, "lines": [{"sku": "TIRE-1", "quantity": 2}], "coupon": "SAVE10",
            "address": address, "note": f"call {address['name']}",
            "metadata": {"buyer": address["phone"]}}))
        orders[member].append(o["id"])
        method = {"type": "card", "number": card} if card else {"type": "cash"}
        ok(client.post("/v1/payment_intents", json={"order_id": o["id"],
                                                    "payment_method": method}))
        ok(client.post(f"/v1/orders/{o['id']}/shipments", json={
            "carrier": "SF", "tracking_number": A_TRACKING if member != b else "SFB0001"}))
    # a cross-border order of A's, paid and declared to customs
    serum = ok(client.post("/v1/products", json={
        "sku": "SERUM-1", "title": "Serum", "stock": 5,
        "price": {"amount": "300.00", "currency": "CNY"}}))
    brand = ok(client.post("/v1/crossborder/brands", json={
        "name": "Maison A", "origin_country": "FR", "owner": "Maison A SAS",
        "agency_name": "Agency", "authorisation": {
            "grantor": "Maison A SAS", "grantee": "Acme", "reference": "AUT-1",
            "valid_from": "2026-01-01", "valid_until": "2099-01-01"}}))
    with transaction(client.app.state.sessionmaker) as s:
        crossborder.review_brand(s, platform.tenant_for_slug(s, "acme"), brand["id"],
                                 "approve", "checked", "staff")
    ok(client.put(f"/v1/crossborder/products/{serum['id']}",
                  json={**XB_FACTS, "brand_id": brand["id"]}))
    o = ok(client.post("/v1/orders", json={
        "member_id": a, "lines": [{"sku": "SERUM-1", "quantity": 1}], "address": A_ADDRESS,
        "crossborder": {"buyer": A_BUYER}}))
    orders[a].append(o["id"])
    ok(client.post("/v1/payment_intents", json={"order_id": o["id"],
                                                "payment_method": {"type": "cash"}}))
    declaration = ok(client.post("/v1/crossborder/declarations", json={
        "order_id": o["id"], **XB_DECLARATION}))
    ok(client.post(f"/v1/members/{a}/merge", json={"other_id": a2}))
    ok(client.post(f"/v1/members/{a}/points/adjustments",
                   json={"points": 50, "reason": f"goodwill for {A['name']}"}))
    ok(client.put(f"/v1/members/{a}/consents", json={"sms_marketing": True, "channel": "pos"}))
    point = ok(client.post("/v1/service-points", json={
        "name": "Xuhui bay", "location": {"lat": 31.23, "lng": 121.47},
        "timezone": "Asia/Shanghai",
        "opening_hours": [{"weekday": d, "open": "09:00", "close": "18:00"} for d in range(1, 8)],
        "services": [{"code": "tire-fitting", "duration_minutes": 60,
                      "price": {"amount": "80.00", "currency": "CNY"}}]}))
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).date().isoformat()
    booking = ok(client.post("/v1/bookings", json={
        "service_point_id": point["id"], "service": "tire-fitting", "member_id": a,
        "start": f"{tomorrow}T10:00:00+08:00", "note": f"{A['name']} will call {A['phone']}"}))
    ok(client.post(f"/v1/bookings/{booking['id']}/check-in"))
    ok(client.post(f"/v1/bookings/{booking['id']}/complete"))
    ok(client.post(f"/v1/bookings/{booking['id']}/rating",
                   json={"member_id": a, "score": 5, "comment": A_COMMENT}))
    cart = ok(client.post("/v1/carts", json={"member_id": a}))
    ok(client.post(f"/v1/carts/{cart['id']}/lines", json={"sku": "TIRE-1", "quantity": 1}))
    return {"a": a, "a2": a2, "b": b, "orders": orders, "cart": cart["id"],
            "xb_order": o["id"], "declaration": declaration["id"], "point": point["id"]}


def score(engine, tenant_id: str, member_id: str) -> None:
    """A score row as a refresh writes it (analytics' refresh itself is tested elsewhere)."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as c:
        c.execute(text(
            "INSERT INTO analytics_member_scores (tenant_id, member_id, run_id, frequency, "
            "recency, age, monetary_minor, p_alive, expected_purchases_90d, clv_minor, r_score, "
            "f_score, m_score, segment, stage, computed_at) VALUES (:t, :m, 'run_x', 1, 1, 2, "
            "100, 0.5, 0.1, 100, 1, 1, 1, 'new', 'active', :now)"),
            {"t": tenant_id, "m": member_id, "now": now})


def text_in_tables(engine) -> str:
    """Every text, JSON and binary value of every table, reflected (so a table added later
    is scanned too), as one string."""
    meta = MetaData()
    meta.reflect(engine)
    chunks: list[str] = []
    with engine.connect() as c:
        for table in meta.sorted_tables:
            cols = [col for col in table.columns
                    if isinstance(col.type, String | Text | JSON | LargeBinary)
                    or "JSON" in type(col.type).__name__.upper()]
            if not cols:
                continue
            for row in c.execute(select(*cols)):
                for v in row:
                    if isinstance(v, bytes | memoryview):
                        v = bytes(v).decode("latin-1")
                    chunks.append(json.dumps(v, ensure_ascii=False, default=str)
                                  if not isinstance(v, str) else v)
    return "\n".join(chunks)


def get_responses(client: TestClient, ids: dict[str, str]) -> str:
    """The body of every GET route of the API that the merchant can call with these ids
    (routes whose ids are unknown here are called with none of theirs: skipped)."""
    bodies = []
    for route in api_routes(client.app.routes):
        if "GET" not in route.methods or not route.path.startswith("/v1/"):
            continue
        path = route.path
        for param, value in ids.items():
            path = path.replace("{" + param + "}", value)
        if "{" in path:
            continue
        r = client.get(path, params={"limit": 200} if "limit" in str(route.dependant.query_params) else None)
        assert r.status_code < 500, (path, r.text)
        bodies.append(r.content.decode("utf-8", "replace"))
    assert len(bodies) > 35  # 41 when written: lists, the member's and the order's pages …
    return "\n".join(bodies)


def ledger_balanced(engine, tenant_id: str) -> bool:
    with engine.connect() as c:
        debit, credit = c.execute(select(
            func.coalesce(func.sum(text("debit_minor")), 0),
            func.coalesce(func.sum(text("credit_minor")), 0)).select_from(text("journal_lines"))
            .where(text("tenant_id = :t")), {"t": tenant_id}).one()
    return debit == credit and debit > 0


def test_an_erasure_leaves_no_personal_value_in_any_table_or_response(client, engine, sessions):
    w = shop(client)
    tenant_id = client.get("/v1/tenant").json()["id"]
    score(engine, tenant_id, w["a"])
    score(engine, tenant_id, w["b"])
    export = ok(client.post(f"/v1/members/{w['a']}/data-requests", json={"kind": "export"}))
    a_orders = w["orders"][w["a"]] + w["orders"][w["a2"]]
    totals = {o: client.get(f"/v1/orders/{o}").json()["totals"] for o in a_orders}
    stored = text_in_tables(engine)
    assert all(v in stored for v in A_VALUES)  # the scan finds them while they are there

    r = client.post(f"/v1/members/{w['a2']}/data-requests", headers={"Idempotency-Key": "e1"},
                    json={"kind": "erase"})  # a merged id: the whole person goes
    erased = ok(r, 201)
    assert erased["member_ids"] == [w["a"], w["a2"]]
    assert erased["result"]["members"] >= 2 and erased["result"]["orders"] == 3
    assert erased["result"]["crossborder"] == 2  # the order's buyer and its declaration

    stored = text_in_tables(engine)
    assert [v for v in A_VALUES if v in stored] == []
    assert all(v in stored for v in B_VALUES)  # the other member is whole
    ids = {"member_id": w["a"], "order_id": a_orders[0], "cart_id": w["cart"],
           "data_request_id": erased["id"], "point_id": w["point"]}
    answers = get_responses(client, ids) + get_responses(client, {**ids, "member_id": w["a2"],
                                                                  "order_id": a_orders[2]})
    answers += get_responses(client, {**ids, "order_id": w["xb_order"],
                                      "declaration_id": w["declaration"]})
    assert [v for v in A_VALUES if v in answers] == []
    # the ID number's ciphertext is gone (the identity route shows the masked form), the
    # masked form, the tax and the quota stay: customs and tax records
    assert A_BUYER["id_number"] not in answers
    xb = ok(client.get(f"/v1/crossborder/orders/{w['xb_order']}/identity"))
    assert xb["buyer"] == {"name": "[erased]", "id_number": "1101**********002X",
                           "phone": "[erased]"}
    assert xb["tax"]["amount"] == "69.18" and xb["quota_status"] == "claimed"
    sent = ok(client.get(f"/v1/crossborder/declarations/{w['declaration']}/messages"))
    assert "<ceb:buyerIdNumber>[erased]<" in sent["messages"]["CEB311"]
    assert B["name"] in answers
    # the books stand: totals, payments, ledger; points closed; scores gone; export gone
    for o in a_orders:
        got = client.get(f"/v1/orders/{o}").json()
        assert got["totals"] == totals[o] and got["paid"]["amount"] == totals[o]["total"]["amount"]
        assert got["address"]["city"] == "上海" and got["address"]["name"] == "[erased]"
    assert ledger_balanced(engine, tenant_id)
    member = client.get(f"/v1/members/{w['a']}").json()
    assert member["points_balance"] == 0 and member["name"] is None
    assert member["identities"] == [] and not any(c["granted"] for c in member["consents"].values())
    points = client.get(f"/v1/members/{w['a']}/points").json()["data"]
    assert sum(p["points"] for p in points) == 0 and points[0]["kind"] == "expire"
    with engine.connect() as c:
        assert c.execute(text("SELECT member_id FROM analytics_member_scores")).scalars().all() \
            == [w["b"]]
    assert client.get(f"/v1/data-requests/{export['id']}/archive").status_code == 410
    # the withdrawal is in the consent log, the log holds no personal value
    log = client.get(f"/v1/members/{w['a']}/consent-log").json()["data"]
    assert {(e["purpose"], e["granted"], e["source"]) for e in log} >= {
        ("email_marketing", False, "erasure"), ("email_marketing", True, "api")}
    # the replayed creation of A answers the redacted body
    again = client.post("/v1/members", headers={"Idempotency-Key": "make-a"}, json={
        **A, "identities": [{"kind": "wechat_openid", "value": A_OPENID, "channel": "mp"},
                            {"kind": "external", "value": A_EXTERNAL}],
        "consents": {"email_marketing": True, "data_analysis": True, "channel": "web",
                     "text_version": "2026-01", "text": "同意接收营销邮件"}})
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert A["name"] not in again.text


def test_a_second_erasure_answers_with_the_first(client):
    a = ok(client.post("/v1/members", json={"name": "Sun Li"}))["id"]
    b = ok(client.post("/v1/members", json={"name": "Sun Li (POS)"}))["id"]
    ok(client.post(f"/v1/members/{a}/merge", json={"other_id": b}))
    first = ok(client.post(f"/v1/members/{a}/data-requests", json={"kind": "erase"}), 201)
    r = client.post(f"/v1/members/{b}/data-requests", json={"kind": "erase"})
    assert r.status_code == 200 and r.json() == first
    listed = ok(client.get(f"/v1/members/{b}/data-requests"))["data"]
    assert [d["id"] for d in listed] == [first["id"]]


def test_an_erased_member_refuses_every_write(client):
    a = ok(client.post("/v1/members", json={"name": "Lin Tao", "phone": "13712345678"}))["id"]
    other = ok(client.post("/v1/members", json={"name": "Lin Tao (POS)"}))["id"]
    ok(client.post(f"/v1/members/{a}/data-requests", json={"kind": "erase"}), 201)
    writes = [
        client.patch(f"/v1/members/{a}", json={"name": "Lin Tao"}),
        client.post(f"/v1/members/{a}/identities", json={"kind": "email", "value": "l@t.cn"}),
        client.put(f"/v1/members/{a}/consents", json={"email_marketing": True}),
        client.post(f"/v1/members/{a}/points/adjustments", json={"points": 5, "reason": "x"}),
        client.post(f"/v1/members/{a}/merge", json={"other_id": other}),
        client.post(f"/v1/members/{other}/merge", json={"other_id": a}),
    ]
    for r in writes:
        assert r.status_code == 409, r.text
        assert r.json()["type"].endswith("/member-erased") and r.json()["member_id"] == a
    assert client.get(f"/v1/members/{a}").json()["name"] is None
    # the other member is untouched and still writable; a second erasure changes nothing
    assert ok(client.patch(f"/v1/members/{other}", json={"name": "Lin T."}))["name"] == "Lin T."
    assert client.post(f"/v1/members/{a}/data-requests", json={"kind": "erase"}).status_code \
        == 200


def test_an_export_holds_every_order_and_identity_of_the_member_and_nothing_of_others(
        client, engine):
    w = shop(client)
    tenant_id = client.get("/v1/tenant").json()["id"]
    score(engine, tenant_id, w["a"])
    score(engine, tenant_id, w["b"])
    r = client.post(f"/v1/members/{w['a']}/data-requests", headers={"Idempotency-Key": "x1"},
                    json={"kind": "export"})
    req = ok(r, 201)
    assert req["archive"]["available"] and req["archive"]["downloads"] == 0
    z = client.get(req["archive"]["url"])
    assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
    files = zipfile.ZipFile(io.BytesIO(z.content))
    data = json.loads(files.read("data.json"))["data"]
    a_orders = set(w["orders"][w["a"]] + w["orders"][w["a2"]])
    assert {o["id"] for o in data["orders"]} == a_orders
    assert {i["value"] for i in data["member_identities"]} == {
        A["email"], A["phone"], A_OPENID, A_EXTERNAL, A2["phone"]}
    assert {m["id"] for m in data["members"]} == {w["a"], w["a2"]}
    assert {p["order_id"] for p in data["payment_intents"]} == a_orders
    assert data["payment_intents"][0]["payment_method"] == {"type": "card", "brand": "visa",
                                                            "last4": "4242"}
    assert {c["purpose"] for c in data["member_consent_log"]} >= {"email_marketing",
                                                                  "sms_marketing"}
    assert data["member_consent_log"][0]["text"] == "同意接收营销邮件"
    assert len(data["coupon_redemptions"]) == 2 and len(data["carts"]) == 1
    assert len(data["bookings"]) == 1 and "promotion_redemptions" in data
    assert [(r["score"], r["comment"]) for r in data["o2o_ratings"]] == [(5, A_COMMENT)]
    # the analytics scores and the points ledger (the list), the person's only
    assert [r["member_id"] for r in data["analytics_member_scores"]] == [w["a"]]
    assert {e["origin_member_id"] for e in data["points_entries"]} <= {w["a"], w["a2"]}
    # the cross-border buyer with the ID number opened (the person's own copy) and the
    # customs messages as sent
    assert [(x["id"], x["id_number"], x["buyer_name"]) for x in data["crossborder_orders"]] \
        == [(w["xb_order"], A_BUYER["id_number"], A_BUYER["name"])]
    assert [d["order_id"] for d in data["crossborder_declarations"]] == [w["xb_order"]]
    assert A_BUYER["id_number"] in data["crossborder_declarations"][0]["messages"]["CEB311"]
    everything = "".join(files.read(n).decode("utf-8") for n in files.namelist())
    assert [v for v in B_VALUES if v in everything] == []
    assert w["b"] not in everything and not set(w["orders"][w["b"]]) & set(everything.split('"'))
    orders_csv = files.read("orders.csv").decode("utf-8-sig").splitlines()
    assert len(orders_csv) == 1 + len(a_orders) and orders_csv[0].startswith("id,")
    # the download is counted and in the audit trail
    got = ok(client.get(f"/v1/data-requests/{req['id']}"))
    assert got["archive"]["downloads"] == 1 and got["archive"]["last_downloaded_at"]
    audit = ok(client.get("/v1/audit-events", params={"type": "data_request.archive_downloaded"}))
    assert [e["subject_id"] for e in audit["data"]] == [req["id"]]
    # the replay of the request answers the same request (no second archive)
    assert ok(client.post(f"/v1/members/{w['a']}/data-requests",
                          headers={"Idempotency-Key": "x1"}, json={"kind": "export"}))["id"] \
        == req["id"]


def test_an_archive_is_gone_after_its_period_and_the_worker_deletes_it(client, sessions):
    m = ok(client.post("/v1/members", json={"name": "Zhou Bo"}))["id"]
    req = ok(client.post(f"/v1/members/{m}/data-requests", json={"kind": "export"}))
    expires = dt.datetime.fromisoformat(req["archive"]["expires_at"])
    created = dt.datetime.fromisoformat(req["created_at"])
    assert expires - created == dt.timedelta(days=7)
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        later = expires + dt.timedelta(seconds=1)
        try:
            privacy.download_archive(s, tenant, req["id"], now=later)
            raise AssertionError("an expired archive was served")
        except privacy.ArchiveGone:
            pass
    with transaction(sessions) as s:
        assert privacy.apply_retention(s, expires + dt.timedelta(seconds=1)) >= 1
    got = ok(client.get(f"/v1/data-requests/{req['id']}"))
    assert got["archive"]["available"] is False and got["archive"]["size_bytes"] == 0


def test_bad_requests_are_refused(client):
    m = ok(client.post("/v1/members", json={"name": "Wu Fei"}))["id"]
    r = client.post(f"/v1/members/{m}/data-requests", json={"kind": "delete"})
    assert r.status_code == 422
    r = client.post("/v1/members/mem_00000000000000000000000000/data-requests",
                    json={"kind": "export"})
    assert r.status_code == 404
    r = client.post("/v1/data-requests/dreq_00000000000000000000000000/acknowledgements")
    assert r.status_code == 403 and r.json()["type"].endswith("/app-token-required")
