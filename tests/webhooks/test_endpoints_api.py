"""The endpoints API on SQLite and PostgreSQL: secrets shown once, validation as problem+json,
cursor pages, merchant isolation (404) and scopes (403)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from support import make_tenant

from haina.core.db import transaction
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.platform import service as platform

URL = "https://hooks.example.com/haina"


def problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == f"https://haina.dev/problems/{slug}", body
    return body


def test_create_shows_the_secret_once(client):
    r = client.post("/v1/webhook-endpoints", json={"url": URL, "event_types": ["order.created"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["id"].startswith("we_") and body["secret"].startswith("whsec_")
    assert body["event_types"] == ["order.created"] and body["app_id"] is None
    got = client.get(f"/v1/webhook-endpoints/{body['id']}").json()
    assert "secret" not in got and got["url"] == URL
    listed = client.get("/v1/webhook-endpoints").json()
    assert [e["id"] for e in listed["data"]] == [body["id"]] and "secret" not in listed["data"][0]
    rotated = client.post(f"/v1/webhook-endpoints/{body['id']}/rotate-secret").json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]


def test_patterns_update_disable_and_delete(client):
    ep = client.post("/v1/webhook-endpoints",
                     json={"url": URL, "event_types": ["order.*", "member.created", "order.*"]}).json()
    assert ep["event_types"] == ["order.*", "member.created"]
    r = client.patch(f"/v1/webhook-endpoints/{ep['id']}",
                     json={"url": URL + "/v2", "event_types": ["*"], "description": "ERP"})
    assert r.status_code == 200 and r.json()["event_types"] == ["*"]
    assert r.json()["url"] == URL + "/v2" and r.json()["description"] == "ERP"
    r = client.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"disabled": True})
    assert r.json()["disabled"] is True and r.json()["disabled_reason"]
    r = client.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"disabled": False})
    assert r.json()["disabled"] is False and r.json()["disabled_reason"] is None
    problem(client.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"url": None}), 422,
            "validation-error")
    assert client.delete(f"/v1/webhook-endpoints/{ep['id']}").status_code == 204
    problem(client.get(f"/v1/webhook-endpoints/{ep['id']}"), 404, "webhook-endpoint-not-found")


@pytest.mark.parametrize("types, slug", [
    (["order.create"], "unknown-event-type"),
    (["orders.*"], "unknown-event-type"),
    (["order.*.x"], "unknown-event-type"),
    ([], "validation-error"),
    ("order.created", "validation-error"),
])
def test_unknown_event_types_are_refused(client, types, slug):
    body = problem(client.post("/v1/webhook-endpoints", json={"url": URL, "event_types": types}),
                   422, slug)
    if slug == "unknown-event-type":
        assert "order.created" in body["known_event_types"]


@pytest.mark.parametrize("url", ["ftp://example.com/x", "example.com/hook", "http://", "",
                                 "http://exa mple.com/"])
def test_bad_urls_are_refused(client, url):
    r = client.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["*"]})
    problem(r, 422, "invalid-webhook-url")


def test_the_event_types_list(client):
    types = client.get("/v1/webhook-event-types").json()
    assert "order.paid" in types and "endpoint.attempts_exhausted" in types


def test_pages_by_cursor(client):
    ids = [client.post("/v1/webhook-endpoints", json={"url": f"{URL}/{i}", "event_types": ["*"]})
           .json()["id"] for i in range(5)]
    seen, cursor = [], None
    while True:
        page = client.get("/v1/webhook-endpoints", params={"limit": 2, "cursor": cursor}).json()
        seen += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    problem(client.get("/v1/webhook-endpoints", params={"cursor": "ord_x"}), 422, "invalid-cursor")
    problem(client.get("/v1/webhook-deliveries", params={"status": "lost"}), 422,
            "validation-error")


def test_another_merchant_sees_nothing(app, client, sessions, tenant):
    ep = client.post("/v1/webhook-endpoints", json={"url": URL, "event_types": ["*"]}).json()
    # a delivery and an attempt of acme's, made as the worker would
    from haina.webhooks.delivery import Dispatcher
    with transaction(sessions) as s:
        eid = record_event(s, tenant.id, "member.created", new_id("member"), {})
    [job] = [j for j in Dispatcher(sessions).fan_out(100) if j.event_id == eid]
    delivery = job.delivery_id
    _, token_b = make_tenant(sessions, "bravo")
    with TestClient(app) as b:
        b.headers["Authorization"] = f"Bearer {token_b}"
        for method, path, body in [
            ("GET", f"/v1/webhook-endpoints/{ep['id']}", None),
            ("PATCH", f"/v1/webhook-endpoints/{ep['id']}", {"disabled": True}),
            ("DELETE", f"/v1/webhook-endpoints/{ep['id']}", None),
            ("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate-secret", None),
            ("GET", f"/v1/webhook-endpoints/{ep['id']}/attempts", None),
            ("POST", f"/v1/webhook-endpoints/{ep['id']}/replay", {"since": "2000-01-01T00:00:00Z"}),
            ("GET", f"/v1/webhook-deliveries/{delivery}", None),
            ("GET", f"/v1/webhook-deliveries/{delivery}/attempts", None),
            ("POST", f"/v1/webhook-deliveries/{delivery}/replay", None),
        ]:
            r = b.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
        assert b.get("/v1/webhook-endpoints").json()["data"] == []
        assert b.get("/v1/webhook-deliveries").json()["data"] == []
        assert b.get("/v1/webhook-deliveries", params={"endpoint_id": ep["id"]}).status_code == 404
    # acme's own still answer
    assert client.get(f"/v1/webhook-deliveries/{delivery}").json()["status"] == "pending"
    assert client.get(f"/v1/webhook-endpoints/{ep['id']}").json()["disabled"] is False


def test_scopes(app, client, sessions):
    ep = client.post("/v1/webhook-endpoints", json={"url": URL, "event_types": ["*"]}).json()
    with transaction(sessions) as s:
        none = platform.create_token(s, "acme", "orders:read").token
        read = platform.create_token(s, "acme", "webhooks:read").token
        write = platform.create_token(s, "acme", "webhooks:write").token
        star = platform.create_token(s, "acme", "webhooks:*").token
    with TestClient(app) as c:
        def call(token, method, path, body=None):
            return c.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
        body = {"url": URL, "event_types": ["*"]}
        for method, path, payload in [("GET", "/v1/webhook-endpoints", None),
                                      ("GET", "/v1/webhook-deliveries", None),
                                      ("GET", f"/v1/webhook-endpoints/{ep['id']}/attempts", None),
                                      ("POST", "/v1/webhook-endpoints", body)]:
            r = call(none, method, path, payload)
            assert r.status_code == 403 and r.json()["required_scope"].startswith("webhooks:")
        assert call(read, "GET", "/v1/webhook-endpoints").status_code == 200
        r = call(read, "POST", "/v1/webhook-endpoints", body)
        assert r.status_code == 403 and r.json()["required_scope"] == "webhooks:write"
        assert call(read, "DELETE", f"/v1/webhook-endpoints/{ep['id']}").status_code == 403
        assert call(write, "POST", "/v1/webhook-endpoints", body).status_code == 201
        assert call(write, "GET", "/v1/webhook-endpoints").status_code == 200  # write implies read
        assert call(star, "POST", "/v1/webhook-endpoints", body).status_code == 201
        assert c.get("/v1/webhook-endpoints").status_code == 401
