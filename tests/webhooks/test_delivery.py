"""Delivery from the outbox to a real receiver on loopback, on SQLite and PostgreSQL: signed
requests, the retry schedule on a fake clock, dead letters, disabling, replay, and the outbox
trap (events committing out of id order are not skipped)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError
from support import make_tenant

from haina.core.db import transaction
from haina.core.events import record_event
from haina.core.ids import new_id
from haina.webhooks import service
from haina.webhooks.delivery import SCHEDULE, Dispatcher
from haina.webhooks.schemas import EndpointIn, ReplayIn


class FakeClock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def endpoint(sessions, tenant, url, types=("order.*",)):
    with transaction(sessions) as s:
        return service.create_endpoint(s, tenant, EndpointIn(url=url, event_types=list(types)))


def event(sessions, tenant, type_="order.created", data=None, subject=None):
    """An event as a service writes it (each about a new order unless told)."""
    with transaction(sessions) as s:
        return record_event(s, tenant.id, type_, subject or new_id("order"),
                            {"status": "pending_payment", **(data or {})})


def drain(d: Dispatcher) -> int:
    return asyncio.run(d.drain())


def delivery_of(sessions, tenant, event_id):
    with transaction(sessions) as s:
        return service.list_deliveries(s, tenant, event_id=event_id).data[0]


def test_an_event_reaches_the_endpoint_signed(sessions, tenant, receiver, client):
    ep = endpoint(sessions, tenant, receiver.url)
    other = endpoint(sessions, tenant, receiver.url, types=["member.created"])
    eid = event(sessions, tenant, data={"note": "轮胎"})
    event(sessions, tenant, type_="product.created", subject="prod_x")  # nobody subscribes
    assert drain(Dispatcher(sessions)) == 1
    [got] = receiver.received
    assert got.headers["webhook-id"] == eid
    assert got.headers["content-type"] == "application/json"
    body = Webhook(ep.secret).verify(got.body, got.headers)  # raises if the signature is bad
    assert body["type"] == "order.created" and body["data"]["note"] == "轮胎"
    assert body["timestamp"].endswith("Z")
    # the id is the event's id as GET /v1/events lists it
    listed = client.get("/v1/events", params={"type": "order.created"}).json()["data"]
    assert [e["id"] for e in listed] == [eid]
    with pytest.raises(WebhookVerificationError):
        Webhook(other.secret).verify(got.body, got.headers)
    d = delivery_of(sessions, tenant, eid)
    assert d.status == "succeeded" and d.attempts == 1 and d.last_status_code == 200
    with transaction(sessions) as s:
        [a] = service.list_attempts(s, tenant, endpoint_id=ep.id).data
        assert a.succeeded and a.status_code == 200 and a.response_excerpt == "ok"
        assert service.count_undelivered(s) == {"events_pending": 0, "deliveries_pending": 0}
    assert drain(Dispatcher(sessions)) == 0  # nothing twice


def test_a_failing_receiver_gets_the_message_on_the_schedule(sessions, tenant, receiver):
    failures = 4
    receiver.answer = lambda n: 503 if n <= failures else 204
    endpoint(sessions, tenant, receiver.url)
    eid = event(sessions, tenant)
    clock = FakeClock()
    start = clock.now
    d = Dispatcher(sessions, clock=clock)
    times = []
    for _ in range(failures + 1):
        before = len(receiver.received)
        assert drain(d) == 1, "exactly one attempt when due"
        assert len(receiver.received) == before + 1
        times.append((clock.now - start).total_seconds())
        state = delivery_of(sessions, tenant, eid)
        if state.status == "succeeded":
            break
        # not due a moment before its time
        wait = (state.next_attempt_at - clock.now).total_seconds()
        clock.advance(wait - 0.5)
        assert drain(d) == 0
        clock.advance(0.5)
    assert state.status == "succeeded" and state.attempts == failures + 1
    # each wait is the schedule's, within the ±10 % jitter
    expected = [sum(SCHEDULE[:i + 1]) for i in range(failures + 1)]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    for gap, base in zip(gaps, SCHEDULE[1:], strict=False):
        assert base * 0.9 <= gap <= base * 1.1, (gaps, expected)
    with transaction(sessions) as s:
        attempts = service.list_attempts(s, tenant, delivery_id=state.id).data
    assert [a.status_code for a in reversed(attempts)] == [503] * failures + [204]
    assert [a.attempt for a in reversed(attempts)] == list(range(1, failures + 2))


def test_after_the_last_retry_the_message_is_dead_and_the_owner_told(sessions, tenant, receiver,
                                                                       client):
    receiver.answer = lambda n: 500
    ep = endpoint(sessions, tenant, receiver.url)
    eid = event(sessions, tenant)
    clock = FakeClock()
    d = Dispatcher(sessions, clock=clock)
    for _ in SCHEDULE:
        assert drain(d) == 1
        clock.advance(36000 * 1.2)
    assert drain(d) == 0
    state = delivery_of(sessions, tenant, eid)
    assert state.status == "failed" and state.attempts == len(SCHEDULE)
    assert state.last_error == "answered 500"
    r = client.get("/v1/webhook-deliveries", params={"status": "failed"}).json()
    assert [x["id"] for x in r["data"]] == [state.id]
    [told] = client.get("/v1/events", params={"type": "endpoint.attempts_exhausted"}).json()["data"]
    assert told["subject_id"] == ep.id and told["data"]["event_id"] == eid
    # the endpoint is not sent news of itself (it would feed a loop)
    assert drain(d) == 0
    # replay: the receiver is back
    receiver.answer = lambda n: 200
    r = client.post(f"/v1/webhook-deliveries/{state.id}/replay")
    assert r.status_code == 200 and r.json()["status"] == "pending" and r.json()["attempts"] == 0
    assert drain(d) == 1
    assert delivery_of(sessions, tenant, eid).status == "succeeded"


def test_an_endpoint_failing_for_5_days_is_disabled(sessions, tenant, receiver, client):
    from receiver import Receiver
    receiver.answer = lambda n: 500
    ep = endpoint(sessions, tenant, receiver.url)
    healthy = Receiver().start()
    owner = endpoint(sessions, tenant, healthy.url, types=["endpoint.*"])
    clock = FakeClock()
    d = Dispatcher(sessions, clock=clock)
    event(sessions, tenant)
    drain(d)
    for _day in range(6):
        clock.advance(86400)
        event(sessions, tenant)
        drain(d)
    got = client.get(f"/v1/webhook-endpoints/{ep.id}").json()
    assert got["disabled"] is True and "5 days" in got["disabled_reason"]
    told = client.get("/v1/events", params={"type": "endpoint.disabled"}).json()["data"]
    assert [t["subject_id"] for t in told] == [ep.id]
    # nothing more goes to it; its pending messages failed
    with transaction(sessions) as s:
        pending = service.list_deliveries(s, tenant, endpoint_id=ep.id, status="pending").data
    assert pending == []
    event(sessions, tenant)
    drain(d)
    with transaction(sessions) as s:
        assert service.count_undelivered(s)["deliveries_pending"] == 0
    # the owner's endpoint heard of it
    assert healthy.ids()[told[0]["id"]] == 1
    healthy.stop()
    assert client.get(f"/v1/webhook-endpoints/{owner.id}").json()["disabled"] is False


def test_events_committed_out_of_id_order_are_not_skipped(sessions, tenant, receiver, engine):
    """The outbox trap: an event whose id is older commits after a newer one was dispatched."""
    endpoint(sessions, tenant, receiver.url)
    if engine.dialect.name == "sqlite":
        pytest.skip("one writer at a time: SQLite cannot hold a transaction open beside another")
    late = sessions()
    late.begin()
    late_id = record_event(late, tenant.id, "order.created", new_id("order"),
                           {"status": "pending_payment"})  # older id
    early_id = event(sessions, tenant)  # newer id, committed first
    assert late_id < early_id
    d = Dispatcher(sessions)
    assert drain(d) == 1
    late.commit()
    late.close()
    assert drain(d) == 1
    assert set(receiver.ids()) == {late_id, early_id}


def test_a_lease_that_ends_sends_the_message_again(sessions, tenant, receiver):
    """A worker that claimed a message and died: the message is due again after the lease."""
    endpoint(sessions, tenant, receiver.url)
    eid = event(sessions, tenant)
    clock = FakeClock()
    d = Dispatcher(sessions, clock=clock, lease=30)
    assert len(d.fan_out(100)) == 1  # claimed, never sent: the worker "died"
    assert drain(d) == 0  # still leased
    clock.advance(31)
    assert drain(d) == 1
    assert receiver.ids() == {eid: 1}


def test_replay_since_a_time(sessions, tenant, receiver, client):
    ep = endpoint(sessions, tenant, receiver.url)
    first = event(sessions, tenant)
    d = Dispatcher(sessions)
    drain(d)
    # disabled: the next event gets no message
    client.patch(f"/v1/webhook-endpoints/{ep.id}", json={"disabled": True})
    missed = event(sessions, tenant)
    drain(d)
    assert receiver.ids() == {first: 1}
    r = client.post(f"/v1/webhook-endpoints/{ep.id}/replay",
                    json={"since": "2000-01-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["type"].endswith("/endpoint-disabled")
    client.patch(f"/v1/webhook-endpoints/{ep.id}", json={"disabled": False})
    r = client.post(f"/v1/webhook-endpoints/{ep.id}/replay",
                    json={"since": "2000-01-01T00:00:00Z", "only_failed": True})
    assert r.json()["queued"] == 0
    r = client.post(f"/v1/webhook-endpoints/{ep.id}/replay",
                    json={"since": "2000-01-01T00:00:00Z"})
    assert r.status_code == 200 and r.json()["queued"] == 2
    drain(d)
    assert receiver.ids() == {first: 2, missed: 1}
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    assert client.post(f"/v1/webhook-endpoints/{ep.id}/replay",
                       json={"since": future}).json()["queued"] == 0
    assert ReplayIn(since="2026-01-01T00:00:00+08:00").since.utcoffset()  # type: ignore[arg-type]


def test_disable_app_endpoints_on_uninstall(sessions, tenant, receiver):
    from haina.core.context import Tenant
    app_tenant = Tenant(id=tenant.id, slug=tenant.slug, app_id="app_01TEST")
    mine = endpoint(sessions, tenant, receiver.url)
    theirs = endpoint(sessions, app_tenant, receiver.url)
    assert theirs.app_id == "app_01TEST" and mine.app_id is None
    with transaction(sessions) as s:
        # the app's credential sees its own endpoints only; the merchant sees both
        assert [e.id for e in service.list_endpoints(s, app_tenant).data] == [theirs.id]
        assert len(service.list_endpoints(s, tenant).data) == 2
        assert service.disable_app_endpoints(s, tenant.id, "app_01TEST") == 1
    event(sessions, tenant)
    drain(Dispatcher(sessions))
    assert len(receiver.received) == 1  # only the merchant's own endpoint
    with transaction(sessions) as s:
        assert service.get_endpoint(s, tenant, theirs.id).disabled
        assert service.disable_app_endpoints(s, tenant.id, "app_01TEST", delete=True) == 1
        assert len(service.list_endpoints(s, tenant).data) == 1


def test_unreachable_and_slow_receivers_are_logged_attempts(sessions, tenant, receiver):
    ep = endpoint(sessions, tenant, "http://127.0.0.1:9/nothing-listens-here")
    eid = event(sessions, tenant)
    drain(Dispatcher(sessions))
    with transaction(sessions) as s:
        [a] = service.list_attempts(s, tenant, endpoint_id=ep.id).data
    assert not a.succeeded and a.status_code is None and a.error
    state = delivery_of(sessions, tenant, eid)
    assert state.status == "pending" and state.attempts == 1 and state.next_attempt_at


def test_two_merchants_events_go_to_their_own_endpoints(sessions, tenant, receiver):
    other, _ = make_tenant(sessions, "other")
    endpoint(sessions, tenant, receiver.url + "?a")
    endpoint(sessions, other, receiver.url + "?b")
    a = event(sessions, tenant)
    b = event(sessions, other)
    drain(Dispatcher(sessions))
    by_id = {r.headers["webhook-id"]: json.loads(r.body) for r in receiver.received}
    assert set(by_id) == {a, b} and len(receiver.received) == 2


def test_two_dispatchers_share_the_work_without_sending_twice(sessions, tenant, receiver, engine):
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has one writer: there is nothing to share")
    from concurrent.futures import ThreadPoolExecutor
    endpoint(sessions, tenant, receiver.url)
    with transaction(sessions) as s:
        ids = {record_event(s, tenant.id, "order.created", new_id("order"),
                            {"status": "pending_payment"}) for _ in range(300)}
    a, b = Dispatcher(sessions, batch=25), Dispatcher(sessions, batch=25)
    with ThreadPoolExecutor(2) as pool:
        made = [f.result() for f in [pool.submit(drain, a), pool.submit(drain, b)]]
    assert sum(made) == 300, made  # each message taken by one dispatcher, once
    received = receiver.ids()
    assert set(received) <= ids and max(received.values()) == 1  # never sent twice
    missing = ids - set(received)
    if missing:  # a request the loaded machine's receiver dropped: a failed attempt, queued
        with transaction(sessions) as s:  # again, never a success it did not get
            again = {d.event_id: d for d in service.list_deliveries(
                s, tenant, event_id=None, status="pending", limit=200).data}
        assert missing <= set(again), missing - set(again)
        assert all(again[m].attempts == 1 and again[m].last_error for m in missing)
    assert len(missing) <= 3, f"{len(missing)} of 300 requests failed"


def test_a_rotated_secret_signs_beside_the_new_one_for_its_grace(sessions, tenant, receiver,
                                                                   client):
    """The receiver can move to the new secret without refusing a request: during the grace
    every request carries both signatures; after it, only the new one's."""
    ep = endpoint(sessions, tenant, receiver.url)
    old = client.get(f"/v1/webhook-endpoints/{ep.id}")  # never the secret
    assert "secret" not in old.json()
    r = client.post(f"/v1/webhook-endpoints/{ep.id}/rotate-secret", json={"grace_hours": 2})
    assert r.status_code == 200, r.text
    new, until = r.json()["secret"], dt.datetime.fromisoformat(r.json()["previous_secret_expires_at"])
    assert dt.timedelta(hours=1.9) < until - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=2)
    clock = FakeClock()
    event(sessions, tenant)
    assert drain(Dispatcher(sessions, clock=clock)) == 1
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    for secret in (new, ep.secret):
        Webhook(secret).verify(got.body, got.headers)  # either secret verifies it
    clock.advance(2 * 3600 + 1)
    event(sessions, tenant)
    assert drain(Dispatcher(sessions, clock=clock)) == 1
    got = receiver.received[-1]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(ep.secret).verify(got.body, got.headers)


def test_a_rotation_without_grace_stops_the_old_secret_at_once(sessions, tenant, receiver,
                                                               client):
    ep = endpoint(sessions, tenant, receiver.url)
    assert client.post(f"/v1/webhook-endpoints/{ep.id}/rotate-secret",
                       json={"grace_hours": 169}).status_code == 422
    r = client.post(f"/v1/webhook-endpoints/{ep.id}/rotate-secret", json={"grace_hours": 0})
    assert r.status_code == 200 and r.json()["previous_secret_expires_at"] is None
    event(sessions, tenant)
    assert drain(Dispatcher(sessions)) == 1
    got = receiver.received[-1]
    Webhook(r.json()["secret"]).verify(got.body, got.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(ep.secret).verify(got.body, got.headers)


def test_a_receivers_cookie_is_never_sent_back(sessions, tenant, receiver):
    """Each message is a request of its own: what a receiver sets in a cookie does not travel
    with the next messages (over the same connection here: one connection per origin)."""
    receiver.set_cookie = "session=abc; Path=/"
    endpoint(sessions, tenant, receiver.url)
    for _ in range(3):
        event(sessions, tenant)
    assert drain(Dispatcher(sessions, per_origin=1)) == 3
    assert len(receiver.received) == 3
    for got in receiver.received:
        assert "cookie" not in got.headers
        assert got.headers["user-agent"].startswith("Haina-Webhooks/")
