"""Tiers: the highest tier whose minimum spend the member's net spend in its window reaches."""

from __future__ import annotations

import datetime as dt

from haina.core.db import utcnow
from haina.core.events import list_events
from haina.core.money import Money
from haina.members import service as members
from haina.members.schemas import MemberCreate, TierCreate, TierUpdate


def tier(session, tenant, name, rank, amount, window_days=365):
    out = members.create_tier(session, tenant, TierCreate(
        name=name, rank=rank, min_spend=Money(amount=amount, currency="CNY"),
        window_days=window_days))
    session.commit()
    return out.id


def member(session, tenant):
    out = members.create_member(session, tenant, MemberCreate(name="Ann"))
    session.commit()
    return out.id


def tier_of(session, tenant, member_id):
    t = members.get_member(session, tenant, member_id).tier
    return t.name if t else None


def test_tier_follows_spend_up_with_purchases_and_down_with_refunds(session, tenant):
    tier(session, tenant, "Silver", 1, "100.00")
    tier(session, tenant, "Gold", 2, "500.00")
    m = member(session, tenant)
    now = utcnow()
    members.record_purchase(session, tenant, m, "ord_1", 30_000, "CNY", now)
    assert tier_of(session, tenant, m) == "Silver"
    members.record_purchase(session, tenant, m, "ord_2", 25_000, "CNY", now)
    assert tier_of(session, tenant, m) == "Gold"
    members.record_refund(session, tenant, m, "ord_2", 10_000, now)  # net 450.00
    assert tier_of(session, tenant, m) == "Silver"
    members.record_refund(session, tenant, m, "ord_1", 30_000, now)  # net 150.00
    assert tier_of(session, tenant, m) == "Silver"
    members.record_refund(session, tenant, m, "ord_2", 15_000, now)
    session.commit()
    assert tier_of(session, tenant, m) is None
    changes = [(e.data["from"] is not None, e.data["reason"]) for e in
               list_events(session, tenant, type="member.tier_changed", subject_id=m).data]
    assert [r for _, r in changes] == ["refund", "refund", "purchase", "purchase"]


def test_reevaluate_tiers_drops_members_whose_spend_left_the_window(session, tenant):
    tier(session, tenant, "Silver", 1, "100.00", window_days=90)
    tier(session, tenant, "Gold", 2, "300.00", window_days=30)
    m = member(session, tenant)
    now = utcnow()
    members.record_purchase(session, tenant, m, "ord_1", 20_000, "CNY", now - dt.timedelta(days=20))
    members.record_purchase(session, tenant, m, "ord_2", 15_000, "CNY", now - dt.timedelta(days=1))
    session.commit()
    assert tier_of(session, tenant, m) == "Gold"
    assert members.reevaluate_tiers(session, now) == 0
    # eleven days on, ord_1 is out of Gold's 30-day window but inside Silver's 90
    assert members.reevaluate_tiers(session, now + dt.timedelta(days=11)) == 1
    session.commit()
    assert tier_of(session, tenant, m) == "Silver"
    assert members.reevaluate_tiers(session, now + dt.timedelta(days=100)) == 1
    session.commit()
    assert tier_of(session, tenant, m) is None


def test_a_refund_nets_out_its_purchase_inside_the_same_window(session, tenant):
    tier(session, tenant, "Silver", 1, "100.00", window_days=30)
    m = member(session, tenant)
    now = utcnow()
    members.record_purchase(session, tenant, m, "ord_old", 50_000, "CNY", now - dt.timedelta(days=60))
    members.record_purchase(session, tenant, m, "ord_new", 10_000, "CNY", now)
    # refunding the old purchase today must not eat into this month's spend
    members.record_refund(session, tenant, m, "ord_old", 50_000, now)
    session.commit()
    assert tier_of(session, tenant, m) == "Silver"


def test_an_entry_tier_with_zero_minimum_holds_every_new_member(session, tenant):
    m_before = member(session, tenant)
    tier(session, tenant, "Member", 0, "0.00")
    tier(session, tenant, "VIP", 5, "1000.00")
    m_after = member(session, tenant)
    assert tier_of(session, tenant, m_before) == tier_of(session, tenant, m_after) == "Member"
    members.record_purchase(session, tenant, m_after, "ord_1", 100_000, "CNY", utcnow())
    assert tier_of(session, tenant, m_after) == "VIP"


def test_changing_a_tier_threshold_re_places_members(session, tenant):
    gold = tier(session, tenant, "Gold", 2, "500.00")
    m = member(session, tenant)
    members.record_purchase(session, tenant, m, "ord_1", 30_000, "CNY", utcnow())
    assert tier_of(session, tenant, m) is None
    members.update_tier(session, tenant, gold, TierUpdate(
        min_spend=Money(amount="200.00", currency="CNY")))
    session.commit()
    assert tier_of(session, tenant, m) == "Gold"


def test_tiers_through_the_api(client):
    body = {"name": "Gold", "rank": 2, "min_spend": {"amount": "500.00", "currency": "CNY"},
            "window_days": 180}
    r = client.post("/v1/tiers", json=body)
    assert r.status_code == 201, r.text
    gold = r.json()
    assert gold["id"].startswith("tier_") and gold["min_spend"] == {"amount": "500.00", "currency": "CNY"}
    clash = client.post("/v1/tiers", json={**body, "name": "Gold 2"})
    assert clash.status_code == 409 and clash.json()["type"].endswith("/tier-exists")
    r = client.post("/v1/tiers", json={**body, "name": "USD", "rank": 3,
                                       "min_spend": {"amount": "5.00", "currency": "USD"}})
    assert r.status_code == 422 and "CNY" in r.json()["detail"]
    r = client.post("/v1/tiers", json={**body, "rank": 4, "min_spend": {"amount": 5.5}})
    assert r.status_code == 422
    r = client.patch(f"/v1/tiers/{gold['id']}", json={"name": "Or", "window_days": 365})
    assert r.status_code == 200 and r.json()["name"] == "Or" and r.json()["window_days"] == 365
    assert [t["id"] for t in client.get("/v1/tiers").json()["data"]] == [gold["id"]]
    assert client.patch("/v1/tiers/tier_nope", json={"name": "x"}).status_code == 404
    mid = client.post("/v1/members", json={"name": "Ann"}).json()["id"]
    assert client.get("/v1/members", params={"tier_id": gold["id"]}).json()["data"] == []
    assert client.get(f"/v1/members/{mid}").json()["tier"] is None
