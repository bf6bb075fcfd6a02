"""Apps told (issue 18): the mandatory privacy events reach every app holding a members
scope, subscribed or not; apps acknowledge through the API; reminders, the deadline and
``merchant.redact_requested`` after an uninstall run on a fake clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import secrets
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support import app_token

from haina.core.db import transaction, utcnow
from haina.core.ids import new_id
from haina.platform import service as platform
from haina.privacy import service as privacy
from haina.webhooks.delivery import Dispatcher

sys.path.insert(0, str(Path(__file__).parent.parent / "webhooks"))
from receiver import Receiver  # noqa: E402


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def own_token(sessions, app_id: str) -> str:
    """The app's own (client-credentials) token, as the token endpoint issues it."""
    from haina.platform.models import OAuthToken
    from haina.platform.oauth import ACCESS_PREFIX, digest
    token = ACCESS_PREFIX + secrets.token_urlsafe(32)
    with transaction(sessions) as s:
        now = utcnow()
        s.add(OAuthToken(id=new_id("oauth_token"), token_hash=digest(token), kind="access",
                         family_id=new_id("oauth_token"), app_id=app_id, tenant_id=None,
                         grant_id=None, scope="", expires_at=now + dt.timedelta(hours=1),
                         created_at=now))
    return token


def app_of(sessions, token: str) -> str:
    with sessions() as s:
        app_id = platform.authenticate(s, token).app_id
    assert app_id
    return app_id


def as_(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_apps_are_told_acknowledge_and_the_silent_one_is_overdue(client, sessions, receiver):
    hooked = app_token(sessions, "acme", "members:read webhooks:write")
    silent = app_token(sessions, "acme", "members:write")  # no endpoint: it pulls
    unrelated = app_token(sessions, "acme", "orders:read")  # holds no members data
    hooked_id, silent_id = app_of(sessions, hooked), app_of(sessions, silent)
    # the app subscribed to orders only: the privacy event reaches it anyway
    r = client.post("/v1/webhook-endpoints", headers=as_(hooked),
                    json={"url": receiver.url, "event_types": ["order.*"]})
    assert r.status_code == 201, r.text
    member = client.post("/v1/members", json={"name": "Lin Xi"}).json()["id"]
    req = client.post(f"/v1/members/{member}/data-requests", json={"kind": "erase"}).json()
    assert sorted(a["app_id"] for a in req["acknowledgements"]) == sorted([hooked_id, silent_id])
    assert sorted(req["apps_pending"]) == sorted([hooked_id, silent_id])
    created = dt.datetime.fromisoformat(req["created_at"])
    assert dt.datetime.fromisoformat(req["due_at"]) - created == dt.timedelta(days=15)

    assert asyncio.run(Dispatcher(sessions).drain()) >= 1
    bodies = [json.loads(x.body) for x in receiver.received]
    told = [b for b in bodies if b["type"] == "member.redact_requested"]
    assert len(told) == 1
    assert told[0]["data"]["member_id"] == member and told[0]["data"]["data_request_id"] == req["id"]
    assert "Lin Xi" not in json.dumps(told[0])

    # the hooked app acknowledges with its token for the merchant (twice: the same answer)
    for _ in range(2):
        r = client.post(f"/v1/data-requests/{req['id']}/acknowledgements", headers=as_(hooked))
        assert r.status_code == 200, r.text
    assert r.json()["apps_pending"] == [silent_id]
    # an app not addressed sees nothing of the request
    assert client.get(f"/v1/data-requests/{req['id']}", headers=as_(unrelated)).status_code == 403
    assert client.get("/v1/data-requests", headers=as_(hooked)).json()["data"][0]["id"] \
        == req["id"]

    # a fake clock: a reminder after 3 days, overdue after 15
    with transaction(sessions) as s:
        assert privacy.follow_up(s, created + dt.timedelta(days=1)) == 0
        assert privacy.follow_up(s, created + dt.timedelta(days=3, seconds=1)) == 1
        assert privacy.follow_up(s, created + dt.timedelta(days=4)) == 0  # not again so soon
    got = client.get(f"/v1/data-requests/{req['id']}").json()
    [silent_ack] = [a for a in got["acknowledgements"] if a["app_id"] == silent_id]
    assert silent_ack["reminders"] == 1 and silent_ack["status"] == "pending"
    reminders = client.get("/v1/events", params={"type": "member.redact_requested"}).json()["data"]
    assert [e["data"].get("reminder") for e in reminders] == [1, None]
    assert reminders[0]["data"]["app_ids"] == [silent_id]
    with transaction(sessions) as s:
        assert privacy.follow_up(s, created + dt.timedelta(days=15, seconds=1)) == 1
    got = client.get(f"/v1/data-requests/{req['id']}").json()
    assert got["apps_overdue"] == [silent_id] and got["apps_pending"] == []
    overdue = client.get("/v1/events", params={"type": "data_request.overdue"}).json()["data"]
    assert [e["data"]["app_ids"] for e in overdue] == [[silent_id]]
    listed = [[x["id"] for x in client.get("/v1/data-requests", params=q).json()["data"]]
              for q in ({"overdue": "true"}, {"kind": "erase"}, {"kind": "export"},
                        {"kind": "erase", "overdue": "true"})]
    assert listed == [[req["id"]], [req["id"]], [], [req["id"]]]
    assert client.get("/v1/data-requests", params={"kind": "nope"}).status_code == 422

    # the silent app finds it with its own token and acknowledges, late
    own = own_token(sessions, silent_id)
    mine = client.get("/v1/apps/me/data-requests", headers=as_(own)).json()["data"]
    assert [m["id"] for m in mine] == [req["id"]]
    r = client.post("/v1/apps/me/acknowledgements", headers=as_(own),
                    json={"data_request_id": req["id"]})
    assert r.status_code == 200, r.text
    assert r.json()["apps_overdue"] == [] and r.json()["apps_pending"] == []
    assert client.get("/v1/apps/me/data-requests", headers=as_(own)).json()["data"] == []
    assert client.get("/v1/data-requests", params={"overdue": "true"}).json()["data"] == []
    acks = client.get("/v1/events", params={"type": "data_request.acknowledged"}).json()["data"]
    assert sorted((e["data"]["app_id"], e["data"]["late"]) for e in acks) == sorted(
        [(hooked_id, False), (silent_id, True)])


def test_an_uninstalled_app_is_asked_to_erase_the_merchants_data_after_the_grace(
        client: TestClient, sessions):
    token = app_token(sessions, "acme", "members:read")
    app_id = app_of(sessions, token)
    [grant] = client.get("/v1/app-grants").json()["data"]
    r = client.post(f"/v1/app-grants/{grant['id']}/uninstall")
    assert r.status_code == 200, r.text
    gone = dt.datetime.fromisoformat(r.json()["uninstalled_at"])
    with transaction(sessions) as s:
        assert privacy.ask_uninstalled_apps(s, gone + dt.timedelta(hours=47)) == 0
        assert privacy.ask_uninstalled_apps(s, gone + dt.timedelta(hours=48, seconds=1)) == 1
        assert privacy.ask_uninstalled_apps(s, gone + dt.timedelta(hours=49)) == 0  # once
    [req] = client.get("/v1/data-requests").json()["data"]
    assert req["kind"] == "merchant_redact" and req["app_id"] == app_id
    assert req["apps_pending"] == [app_id] and req["member_id"] is None
    [event] = client.get("/v1/events", params={"type": "merchant.redact_requested"}).json()["data"]
    assert event["data"]["app_ids"] == [app_id]
    assert event["data"]["tenant_id"] == client.get("/v1/tenant").json()["id"]
    # its merchant token is revoked: its own token is how it answers
    own = own_token(sessions, app_id)
    assert client.post(f"/v1/data-requests/{req['id']}/acknowledgements",
                       headers=as_(token)).status_code == 401
    r = client.post("/v1/apps/me/acknowledgements", headers=as_(own),
                    json={"data_request_id": req["id"]})
    assert r.status_code == 200 and r.json()["apps_pending"] == []
    # another app cannot acknowledge it
    other = own_token(sessions, app_of(sessions, app_token(sessions, "acme", "members:read")))
    assert client.post("/v1/apps/me/acknowledgements", headers=as_(other),
                       json={"data_request_id": req["id"]}).status_code == 404
