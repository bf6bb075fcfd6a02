"""The consent log and campaign audiences (a withdrawal counts at once), and retention: each
kind of data deleted after its period, per merchant, within the legal bounds (fake clock)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from haina.core.db import transaction, utcnow
from haina.members import service as members
from haina.platform import service as platform
from haina.privacy import service as privacy


def test_every_grant_and_withdrawal_is_logged_and_a_withdrawal_leaves_the_audience_at_once(
        client, sessions):
    a = client.post("/v1/members", json={"name": "Ma Li", "consents": {
        "email_marketing": True, "sms_marketing": True, "channel": "mini_program",
        "text_version": "v3", "text": "我同意接收短信和邮件优惠信息"}}).json()["id"]
    b = client.post("/v1/members", json={"name": "Ma Jun", "consents": {
        "sms_marketing": True}}).json()["id"]
    with transaction(sessions) as s:
        acme = platform.tenant_for_slug(s, "acme")
        assert members.campaign_audience(s, acme, "sms") == sorted([a, b])
        assert members.campaign_audience(s, acme, "email") == [a]
        assert members.campaign_audience(s, acme, "sms", candidates=[b]) == [b]
    r = client.put(f"/v1/members/{a}/consents", json={
        "sms_marketing": False, "channel": "sms", "text_version": "v3"})
    assert r.status_code == 200 and r.json()["consents"]["sms_marketing"]["granted"] is False
    with transaction(sessions) as s:
        assert members.campaign_audience(s, acme, "sms") == [b]  # at once
    # setting a flag to the value it has is no decision: nothing logged
    client.put(f"/v1/members/{a}/consents", json={"sms_marketing": False})
    log = client.get(f"/v1/members/{a}/consent-log").json()
    assert log["object"] == "list"
    assert [(e["purpose"], e["granted"], e["channel"], e["text_version"]) for e in log["data"]] == [
        ("sms_marketing", False, "sms", "v3"),
        ("sms_marketing", True, "mini_program", "v3"),
        ("email_marketing", True, "mini_program", "v3")]
    assert log["data"][-1]["text"] == "我同意接收短信和邮件优惠信息"
    assert client.get("/v1/members/mem_00000000000000000000000000/consent-log").status_code == 404
    r = client.put(f"/v1/members/{a}/consents", json={"text": ""})
    assert r.status_code == 422


def test_retention_periods_are_settable_within_the_legal_bounds(client):
    kinds = {k["kind"]: k for k in client.get("/v1/retention").json()}
    assert kinds["audit_events"] == {"kind": "audit_events", "days": 365, "default_days": 365,
                                     "minimum_days": 180, "maximum_days": 3650,
                                     "action": privacy.RETENTION_ACTIONS["audit_events"]}
    r = client.put("/v1/tenant/settings", json={"retention": {"audit_events": 30}})
    assert r.status_code == 422 and "180" in r.text
    r = client.put("/v1/tenant/settings", json={"retention": {"abandoned_carts": 10,
                                                              "export_archives": 2}})
    assert r.status_code == 200, r.text
    kinds = {k["kind"]: k["days"] for k in client.get("/v1/retention").json()}
    assert kinds["abandoned_carts"] == 10 and kinds["export_archives"] == 2
    assert kinds["audit_events"] == 365
    # one kind at a time: the others are kept
    r = client.patch("/v1/retention", json={"audit_events": 200})
    assert r.status_code == 200, r.text
    kinds = {k["kind"]: k["days"] for k in r.json()}
    assert kinds == {"abandoned_carts": 10, "webhook_attempts": 30, "delivered_messages": 30,
                     "audit_events": 200, "export_archives": 2}
    assert client.patch("/v1/retention", json={"webhook_attempts": 1}).status_code == 422
    assert client.patch("/v1/retention", json={"audit_events": None}).status_code == 422
    assert client.get("/v1/tenant").json()["settings"]["retention"]["audit_events"] == 200


def test_the_worker_deletes_each_kind_after_its_period_only(client, sessions, engine):
    client.put("/v1/tenant/settings", json={"retention": {"abandoned_carts": 10}})
    client.post("/v1/products", json={"sku": "T-1", "title": "Tire", "stock": 5,
                                      "price": {"amount": "10.00", "currency": "CNY"}})
    member = client.post("/v1/members", json={"name": "Gao"}).json()["id"]
    open_cart = client.post("/v1/carts", json={"member_id": member}).json()["id"]
    ordered = client.post("/v1/carts", json={"member_id": member}).json()["id"]
    client.post(f"/v1/carts/{ordered}/lines", json={"sku": "T-1", "quantity": 1})
    assert client.post(f"/v1/carts/{ordered}/checkout", json={}).status_code == 201
    now = utcnow()
    with engine.begin() as c:  # a delivered message and its attempt, as the worker logs them
        tenant_id = c.execute(text("SELECT id FROM tenants WHERE slug = 'acme'")).scalar()
        c.execute(text("INSERT INTO webhook_endpoints (id, tenant_id, url, event_types, secret, "
                       "disabled, created_at, updated_at) VALUES ('we_1', :t, "
                       "'https://x.example/h', '[\"*\"]', 's', false, :n, :n)"),
                  {"t": tenant_id, "n": now})
        for i, status in enumerate(("succeeded", "failed")):
            c.execute(text("INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, "
                           "event_id, event_type, status, attempts, created_at) VALUES "
                           f"('msg_{i}', :t, 'we_1', 'evt_{i}', 'order.created', :s, 1, :n)"),
                      {"t": tenant_id, "s": status, "n": now})
            c.execute(text("INSERT INTO webhook_attempts (id, tenant_id, delivery_id, "
                           "endpoint_id, event_id, attempt, succeeded, latency_ms, created_at) "
                           f"VALUES ('atmpt_{i}', :t, 'msg_{i}', 'we_1', 'evt_{i}', 1, true, 5, "
                           ":n)"), {"t": tenant_id, "n": now})
        c.execute(text("UPDATE events SET pending = NULL"))  # fanned out

    def left() -> dict[str, int]:
        with engine.connect() as c:
            return {t: c.execute(text(f"SELECT count(*) FROM {t} WHERE tenant_id = :t"),
                                 {"t": tenant_id}).scalar()
                    for t in ("carts", "webhook_deliveries", "webhook_attempts", "events")}

    before = left()
    with transaction(sessions) as s:
        assert privacy.apply_retention(s, now + dt.timedelta(days=9)) == 0
    with transaction(sessions) as s:
        assert privacy.apply_retention(s, now + dt.timedelta(days=11)) == 1
    assert left() == {**before, "carts": 1}  # the ordered cart stays
    assert client.get(f"/v1/carts/{open_cart}").status_code == 404
    with transaction(sessions) as s:
        privacy.apply_retention(s, now + dt.timedelta(days=31))
    got = left()
    assert got["webhook_deliveries"] == 1 and got["webhook_attempts"] == 0  # failed one stays
    assert got["events"] == before["events"]
    with transaction(sessions) as s:
        privacy.apply_retention(s, now + dt.timedelta(days=366))
    assert left()["events"] == 0
