"""Merging members: identities, points, spend and consents move; both histories stay."""

from __future__ import annotations

import datetime as dt

import pytest

from haina.core.db import utcnow
from haina.core.errors import Invalid, InvalidState
from haina.core.money import Money
from haina.members import service as members
from haina.members.schemas import ConsentsIn, MemberCreate, TierCreate


def member(session, tenant, **fields):
    out = members.create_member(session, tenant, MemberCreate(**fields))
    session.commit()
    return out.id


def test_merged_member_keeps_both_histories(session, tenant):
    now = utcnow()
    ann = member(session, tenant, name="Ann", phone="13800000000")
    dup = member(session, tenant, email="ann@example.com",
                 identities=[{"kind": "wechat_openid", "value": "oAnn"}])
    members.record_purchase(session, tenant, ann, "ord_A", 10_000, "CNY", now)
    members.record_purchase(session, tenant, dup, "ord_B", 5_000, "CNY", now)
    session.commit()

    out = members.merge_members(session, tenant, ann, dup)
    session.commit()

    assert out.id == ann and out.points_balance == 150
    assert out.email == "ann@example.com"  # a blank field filled from the other
    assert {(i.kind, i.value) for i in out.identities} == {
        ("phone", "13800000000"), ("email", "ann@example.com"), ("wechat_openid", "oAnn")}
    assert members.member_history_ids(session, tenant, ann) == [ann, dup]
    assert members.member_history_ids(session, tenant, dup) == [ann, dup]
    merged = members.get_member(session, tenant, dup)
    assert merged.merged_into == ann and merged.points_balance == 0 and merged.identities == []
    assert members.resolve_member_id(session, tenant, dup) == ann
    assert members.resolve_member_id(session, tenant, ann) == ann
    assert members.find_member_by_identity(session, tenant, "wechat_openid", "oAnn").id == ann
    # the survivor's ledger has both; the merged member's still shows its own entries
    survivor_ledger = members.list_points(session, tenant, ann).data
    assert sorted(e.order_id for e in survivor_ledger) == ["ord_A", "ord_B"]
    assert [e.order_id for e in members.list_points(session, tenant, dup).data] == ["ord_B"]
    assert members.points_ledger_sum(session, tenant, ann) == 150
    assert members.points_ledger_sum(session, tenant, dup) == 0


def test_merge_history_is_transitive(session, tenant):
    a, b, c = (member(session, tenant, name=n) for n in "abc")
    members.merge_members(session, tenant, b, c)
    members.merge_members(session, tenant, a, b)
    session.commit()
    assert members.member_history_ids(session, tenant, a) == [a, *sorted([b, c])]
    assert members.member_history_ids(session, tenant, c)[0] == a
    assert members.resolve_member_id(session, tenant, c) == a
    assert members.get_member(session, tenant, c).merged_into == b


def test_merge_keeps_the_most_recent_consent(session, tenant):
    a = member(session, tenant, name="a", consents={"email_marketing": True, "sms_marketing": True})
    b = member(session, tenant, name="b", consents={"email_marketing": False})
    # b's data_analysis consent is the latest word; a's sms flag has no rival
    members.update_consents(session, tenant, b, ConsentsIn(data_analysis=True))
    session.commit()
    out = members.merge_members(session, tenant, a, b).consents
    assert out.email_marketing.granted is False  # b changed it after a did
    assert out.sms_marketing.granted is True
    assert out.data_analysis.granted is True and out.data_analysis.changed_at is not None


def test_merging_a_member_into_itself_or_merging_a_merged_member_is_refused(session, tenant):
    a, b = member(session, tenant, name="a"), member(session, tenant, name="b")
    with pytest.raises(Invalid) as exc:
        members.merge_members(session, tenant, a, a)
    assert exc.value.slug == "merge-same-member"
    members.merge_members(session, tenant, a, b)
    session.commit()
    with pytest.raises(InvalidState) as exc:
        members.merge_members(session, tenant, a, b)
    assert exc.value.slug == "member-merged" and exc.value.extra["merged_into"] == a


def test_points_and_purchases_for_a_merged_id_go_to_the_survivor(session, tenant):
    now = utcnow()
    a, b = member(session, tenant, name="a"), member(session, tenant, name="b")
    members.record_purchase(session, tenant, b, "ord_1", 10_000, "CNY", now)
    members.merge_members(session, tenant, a, b)
    session.commit()
    # an order placed before the merge still holds b's id
    assert members.redeem_points(session, tenant, b, 40, "ord_2") == 40
    members.record_purchase(session, tenant, b, "ord_3", 2_000, "CNY", now)
    members.record_refund(session, tenant, b, "ord_1", 10_000, now)
    assert members.restore_points(session, tenant, b, "ord_2") == 40
    session.commit()
    assert members.get_member(session, tenant, a).points_balance == 20
    assert members.points_ledger_sum(session, tenant, a) == 20


def test_merge_pays_one_members_debt_from_the_others_points(session, tenant):
    now = utcnow()
    a, b = member(session, tenant, name="a"), member(session, tenant, name="b")
    members.record_purchase(session, tenant, a, "ord_1", 10_000, "CNY", now)
    members.redeem_points(session, tenant, a, 100, "ord_2")
    members.record_refund(session, tenant, a, "ord_1", 3_000, now)  # 30 points already spent
    members.record_purchase(session, tenant, b, "ord_3", 5_000, "CNY", now)
    session.commit()
    assert members.get_member(session, tenant, a).points_balance == -30
    out = members.merge_members(session, tenant, b, a)
    session.commit()
    assert out.points_balance == 20
    # the lots left back exactly the balance, so 20 points can be spent and no more
    with pytest.raises(Invalid):
        members.redeem_points(session, tenant, b, 21, "ord_4")
    assert members.redeem_points(session, tenant, b, 20, "ord_4") == 20


def test_merge_re_evaluates_the_survivors_tier_on_combined_spend(session, tenant):
    now = utcnow()
    gold = members.create_tier(session, tenant, TierCreate(
        name="Gold", rank=2, min_spend=Money(amount="150.00", currency="CNY"), window_days=365))
    a, b = member(session, tenant, name="a"), member(session, tenant, name="b")
    members.record_purchase(session, tenant, a, "ord_1", 10_000, "CNY", now - dt.timedelta(days=3))
    members.record_purchase(session, tenant, b, "ord_2", 6_000, "CNY", now)
    assert members.get_member(session, tenant, a).tier is None
    out = members.merge_members(session, tenant, a, b)
    assert out.tier is not None and out.tier.id == gold.id
