"""Each request is signed per Standard Webhooks: the standardwebhooks library verifies it, and
refuses a tampered body, another secret, or a timestamp more than 5 minutes old."""

from __future__ import annotations

import datetime as dt

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from haina.webhooks.delivery import Dispatcher, Job, payload
from haina.webhooks.service import new_secret

WHEN = dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC)


class _NoSessions:
    kw = {"bind": type("E", (), {"dialect": type("D", (), {"name": "postgresql"})})()}


def signed(secret: str) -> tuple[dict[str, str], str]:
    body = payload("order.paid", WHEN, {"order_id": "ord_1", "total": {"amount": "99.00"}})
    job = Job("ten_1", "msg_1", "we_1", "evt_01ABC", 0, "http://x", secret, body)
    return Dispatcher(_NoSessions()).headers(job), body  # type: ignore[arg-type]


def test_a_signed_request_verifies():
    secret = new_secret()
    headers, body = signed(secret)
    assert headers["webhook-id"] == "evt_01ABC"
    assert headers["webhook-signature"].startswith("v1,")
    got = Webhook(secret).verify(body, headers)
    assert got == {"type": "order.paid", "timestamp": "2026-05-01T08:30:00Z",
                   "data": {"order_id": "ord_1", "total": {"amount": "99.00"}}}


def test_a_tampered_body_fails():
    secret = new_secret()
    headers, body = signed(secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("99.00", "1.00"), headers)


def test_another_secret_fails():
    headers, body = signed(new_secret())
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_a_timestamp_older_than_5_minutes_fails():
    secret = new_secret()
    wh = Webhook(secret)
    body = payload("order.paid", WHEN, {})
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5, seconds=5)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(int(old.timestamp())),
               "webhook-signature": wh.sign("evt_1", old, body)}
    with pytest.raises(WebhookVerificationError, match="too old"):
        wh.verify(body, headers)
    # the same message signed now passes
    now = dt.datetime.now(dt.UTC)
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": wh.sign("evt_1", now, body)}
    wh.verify(body, headers)


def test_secrets_are_random_whsec_of_24_bytes():
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50 and all(s.startswith("whsec_") for s in secrets)
    assert len(Webhook(secrets.pop())._whsecret) == 24
