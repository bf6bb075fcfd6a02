"""No merchant sees or touches another's members, and the workers serve every merchant."""

from __future__ import annotations

import datetime as dt

import pytest

from haina.core.context import Tenant
from haina.core.db import transaction, utcnow
from haina.core.errors import NotFound
from haina.core.events import list_events
from haina.members import service as members
from haina.members.schemas import MemberCreate
from haina.platform import service as platform

ANN = {"name": "Ann Lee", "email": "Ann@Example.com", "phone": "+86 138-0000-0000",
       "identities": [{"kind": "wechat_openid", "value": "oAnn123", "channel": "mini-program"}]}


@pytest.fixture
def other_tenant(sessions) -> tuple[Tenant, str]:
    """A second merchant, ``globex``, and a full-access token for it."""
    with transaction(sessions) as s:
        t = platform.create_tenant(s, "globex", "Globex")
        token = platform.create_token(s, "globex", "*").token
    return Tenant(id=t.id, slug=t.slug, currency=t.currency), token


def member(session, tenant, **fields):
    out = members.create_member(session, tenant, MemberCreate(**(fields or {"name": "Ann"})))
    session.commit()
    return out.id


def new_member(client, **body):
    r = client.post("/v1/members", json=body or ANN)
    assert r.status_code == 201, r.text
    return r.json()


def test_two_tenants_cannot_see_each_others_members(client, other_tenant):
    ann = new_member(client)
    _, other_token = other_tenant
    other = {"Authorization": f"Bearer {other_token}"}
    mid = ann["id"]
    assert client.get(f"/v1/members/{mid}", headers=other).status_code == 404
    assert client.get(f"/v1/members/{mid}", headers=other).json()["type"].endswith("/member-not-found")
    assert client.get("/v1/members", headers=other).json()["data"] == []
    assert client.get("/v1/members", params={"identity": "wechat_openid:oAnn123"},
                      headers=other).json()["data"] == []
    assert client.patch(f"/v1/members/{mid}", json={"name": "x"}, headers=other).status_code == 404
    assert client.get(f"/v1/members/{mid}/points", headers=other).status_code == 404
    assert client.post(f"/v1/members/{mid}/points/adjustments", json={"points": 5, "reason": "x"},
                       headers=other).status_code == 404
    assert client.put(f"/v1/members/{mid}/consents", json={"sms_marketing": True},
                      headers=other).status_code == 404
    # the same identity is free in another tenant, and merging across tenants finds nothing
    theirs = client.post("/v1/members", json=ANN, headers=other)
    assert theirs.status_code == 201
    assert client.post(f"/v1/members/{theirs.json()['id']}/merge", json={"other_id": mid},
                       headers=other).status_code == 404
    assert client.post(f"/v1/members/{mid}/merge", json={"other_id": theirs.json()["id"]}).status_code == 404
    assert client.get(f"/v1/members/{mid}").json()["name"] == "Ann Lee"


def test_merging_or_resolving_across_tenants_finds_nothing(session, tenant, other_tenant):
    other, _ = other_tenant
    a, c = member(session, tenant, name="a"), member(session, other, name="c")
    with pytest.raises(NotFound):
        members.merge_members(session, tenant, a, c)
    session.rollback()
    for call in (members.resolve_member_id, members.member_history_ids, members.get_member):
        with pytest.raises(NotFound):
            call(session, other, a)
    with pytest.raises(NotFound):
        members.redeem_points(session, other, a, 1, "ord_1")
    session.rollback()
    with pytest.raises(NotFound):
        members.record_purchase(session, other, a, "ord_1", 100, "CNY", utcnow())


def test_expire_points_runs_across_tenants(session, tenant, other_tenant):
    other, _ = other_tenant
    a, b = member(session, tenant), member(session, other)
    long_ago = utcnow() - dt.timedelta(days=400)
    members.record_purchase(session, tenant, a, "ord_1", 1_000, "CNY", long_ago)
    members.record_purchase(session, other, b, "ord_1", 2_000, "CNY", long_ago)
    session.commit()
    assert members.expire_points(session, utcnow()) == 2
    session.commit()
    assert members.get_member(session, tenant, a).points_balance == 0
    assert members.get_member(session, other, b).points_balance == 0
    events = [e.type for e in list_events(session, other, subject_id=b).data]
    assert events[0] == "member.points_expired"
