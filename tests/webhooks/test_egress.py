"""Webhooks go to public addresses only: endpoints on private, loopback or link-local hosts are
refused when saved and when the worker connects (SSRF), unless the deployment allows them
(tests/conftest.py allows them for the rest of the suite, whose receivers are on loopback)."""

from __future__ import annotations

import asyncio

import pytest
from test_delivery import drain, endpoint, event

from haina.core.db import transaction
from haina.webhooks import egress, service
from haina.webhooks.delivery import Dispatcher


@pytest.mark.parametrize("address", [
    "10.0.0.5", "172.16.3.4", "192.168.1.1", "127.0.0.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "::"])
def test_addresses_inside_a_network_are_not_public(address):
    assert not egress.is_public(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888",
                                     "::ffff:8.8.8.8"])
def test_routable_addresses_are_public(address):
    assert egress.is_public(address)


@pytest.mark.parametrize(("host", "refused"), [
    ("localhost", True), ("LOCALHOST.", True), ("api.localhost", True), ("127.0.0.1", True),
    ("[::1]", True), ("10.1.2.3", True), ("169.254.169.254", True), ("example.com", False),
    ("8.8.8.8", False), ("localhost.example.com", False)])
def test_hosts_refused_when_an_endpoint_is_saved(host, refused):
    assert (egress.refusal_for_host(host) is not None) is refused


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/", "https://10.0.0.5/admin"])
def test_the_api_refuses_an_endpoint_on_a_private_host(client, guarded, url):
    r = client.post("/v1/webhook-endpoints", json={"url": url, "event_types": ["order.*"]})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"].endswith("invalid-webhook-url")
    assert "public hosts only" in problem["detail"]
    assert "HAINA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES" in problem["detail"]


def test_a_public_endpoint_is_saved_and_cannot_be_moved_inside(client, guarded):
    r = client.post("/v1/webhook-endpoints",
                    json={"url": "https://hooks.example.com/haina", "event_types": ["order.*"]})
    assert r.status_code == 201, r.text
    moved = client.patch(f"/v1/webhook-endpoints/{r.json()['id']}",
                         json={"url": "http://192.168.0.10/hook"})
    assert moved.status_code == 422 and moved.json()["type"].endswith("invalid-webhook-url")
    kept = client.get(f"/v1/webhook-endpoints/{r.json()['id']}").json()
    assert kept["url"] == "https://hooks.example.com/haina"  # the refusal changed nothing


def test_a_url_with_a_port_out_of_range_is_refused(client):
    r = client.post("/v1/webhook-endpoints",
                    json={"url": "http://example.com:99999/hook", "event_types": ["order.*"]})
    assert r.status_code == 422 and r.json()["type"].endswith("invalid-webhook-url")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_worker_does_not_connect_to_a_private_address(sessions, tenant, receiver, host):
    """An endpoint saved while private addresses were allowed (or a name whose address changed
    since): the guarded worker records a refused attempt and the receiver hears nothing."""
    ep = endpoint(sessions, tenant, receiver.url.replace("127.0.0.1", host))
    event(sessions, tenant)
    assert drain(Dispatcher(sessions, allow_private=False)) == 1
    assert receiver.received == []
    with transaction(sessions) as s:
        [attempt] = service.list_attempts(s, tenant, endpoint_id=ep.id).data
    assert not attempt.succeeded and attempt.status_code is None
    assert "not a public address: refused" in attempt.error
    # allowed again (development), the same message is delivered on its next try
    assert drain(Dispatcher(sessions, allow_private=True, clock=lambda: _later())) == 1
    assert len(receiver.received) == 1


def _later():
    import datetime as dt
    return dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)


def test_the_guard_returns_the_address_it_checked():
    """The worker connects to the address returned, never resolving the name again."""
    assert asyncio.run(egress.public_address("8.8.8.8", 443)) == "8.8.8.8"
    for host in ("localhost", "127.0.0.1", "::1", "10.0.0.5"):
        with pytest.raises(egress.EgressRefused, match="not a public address: refused"):
            asyncio.run(egress.public_address(host, 80))


def test_the_guarded_connection_goes_through_the_check(monkeypatch):
    """The worker's connections ask the guard first (a check, not a resolver, decides)."""
    from haina.webhooks import http
    asked: list[tuple[str, int]] = []

    async def refuse(host: str, port: int) -> str:
        asked.append((host, port))
        raise egress.EgressRefused("refused here")

    monkeypatch.setattr(egress, "public_address", refuse)
    direct = http.Direct("https://hooks.example.com/in", allow_private=False)
    with pytest.raises(egress.EgressRefused, match="refused here"):
        asyncio.run(direct.post("https://hooks.example.com/in", [], b"{}", 100))
    assert asked == [("hooks.example.com", 443)]
