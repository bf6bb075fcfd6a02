"""The Python SDK (haina.client) against a real HTTP server on loopback, on SQLite and
PostgreSQL: typed calls, the pagination iterator, backoff on 429 with one idempotency key per
call, automatic refresh of an app's tokens, and webhook verification."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
from oauth_flow import install, make_app, make_staff
from standardwebhooks.webhooks import Webhook
from support import make_tenant, served_app

from haina.client import (
    Haina,
    HainaError,
    OAuthApp,
    TokenSet,
    WebhookVerificationError,
    pkce_pair,
    verify_webhook,
)
from haina.members.schemas import MemberOut


@pytest.fixture
def served(engine):
    """Haina on a real port, staff tokens on a small plan (a burst of 2, 4 a second)."""
    with served_app(engine, rate_limit_backend="database",
                    rate_limit_plans={"staff": (4.0, 2), "standard": (20.0, 40)}) as url:
        yield url


def test_typed_calls_and_the_pagination_iterator(served, sessions):
    _, token = make_tenant(sessions, "acme")
    with Haina(served, token, max_wait=2) as haina:
        made = [haina.members.create(name=f"Member {i}") for i in range(7)]
        assert all(isinstance(m, MemberOut) for m in made)
        page = haina.members.list(limit=3)
        assert len(page.data) == 3 and page.has_more
        assert [m.id for m in haina.members.iterate(limit=3)] == [m.id for m in reversed(made)]
        haina.products.create(title="Tire", sku="T-1", stock=3,
                              price={"amount": "100.00", "currency": "CNY"})
        code = haina.coupons.create(code="save10", discount={"type": "percent", "percent": "10"})
        placed = haina.orders.create(lines=[{"sku": "T-1", "quantity": 1}], coupon="SAVE10")
        carts = [haina.carts.create(lines=[{"sku": "T-1", "quantity": n}]) for n in (1, 2)]
        listed = haina.carts.list(status="open", limit=1)
        assert [c.id for c in listed.data] == [carts[1].id] and listed.data[0].units == 2
        assert [c.id for c in haina.carts.iterate(limit=1)] == [carts[1].id, carts[0].id]
        assert placed.totals.discount.amount == 10 and placed.coupon == code.code
        assert haina.coupons.get(code.id).redeemed == 1
        promo = haina.promotions.create(name="满100减20", kind="threshold",
                                        tiers=[{"min_subtotal": "100.00", "off": "20.00"}])
        quoted = haina.carts.price([{"sku": "T-1", "quantity": 1}], coupon="SAVE10")
        assert quoted.discount.amount == 30 and [a.id for a in quoted.applied][0] == promo.id
        with pytest.raises(HainaError) as problem:
            haina.members.get("mem_00000000000000000000000000")
        assert problem.value.status == 404 and problem.value.slug == "member-not-found"


def test_a_429_is_waited_out_and_a_retried_post_creates_once(served, sessions):
    _, token = make_tenant(sessions, "acme")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with Haina(served, token, sleep=sleep, max_wait=3) as haina:
        for i in range(5):  # a burst of 2, then the bucket refills at 4 a second
            haina.members.create(name="Burst", email=f"b{i}@example.cn")
        assert waits and all(w >= 1 for w in waits)  # Retry-After (whole seconds) was kept
        emails = sorted(m.email for m in haina.members.iterate(q="Burst"))
    assert emails == [f"b{i}@example.cn" for i in range(5)]  # none twice


def test_an_apps_tokens_refresh_themselves_and_rotate(served, sessions, app):
    from fastapi.testclient import TestClient
    make_tenant(sessions, "acme")
    make_staff(sessions, "acme", "owner@acme.example")
    client_id, secret = make_app(sessions)
    with TestClient(app, base_url="http://localhost") as browser:
        answer = install(browser, sessions, client_id, secret, "owner@acme.example")
    oauth = OAuthApp(served.replace("127.0.0.1", "localhost"), client_id, secret)
    stale = TokenSet(access_token=answer["access_token"], expires_at=time.time() - 1,
                     scope=answer["scope"], refresh_token=answer["refresh_token"])
    kept: list[TokenSet] = []
    with Haina(served, tokens=stale, oauth=oauth, on_tokens=kept.append) as haina:
        assert haina.orders.list().data == []
    assert len(kept) == 1 and kept[0].refresh_token != answer["refresh_token"]
    info = oauth.introspect(kept[0].access_token)
    assert info["active"] and info["client_id"] == client_id


def test_pkce_and_the_authorization_url():
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128 and "=" not in challenge
    url = OAuthApp("https://haina.example", "app_x", "s").authorization_url(
        "https://app.example/cb", ["orders:read"], "st", challenge)
    assert url.startswith("https://haina.example/oauth/authorize?")
    assert "code_challenge_method=S256" in url and f"code_challenge={challenge}" in url


def test_verify_webhook_refuses_a_tampered_body_and_an_old_timestamp():
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = '{"type":"order.paid","timestamp":"2026-12-01T00:00:00Z","data":{"order_id":"ord_1"}}'
    now = dt.datetime.now(dt.UTC)

    def headers(at: dt.datetime, payload: str = body) -> dict[str, str]:
        return {"webhook-id": "evt_1", "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": Webhook(secret).sign("evt_1", at, payload)}

    assert verify_webhook(headers(now), body.encode(), secret)["data"]["order_id"] == "ord_1"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers(now), body.replace("ord_1", "ord_2"), secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers(now - dt.timedelta(minutes=6)), body, secret)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers(now), body, "whsec_" + base64.b64encode(b"x" * 32).decode())
