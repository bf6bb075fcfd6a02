"""The points ledger: earning, FIFO redemption and expiry, refunds, restores, concurrency."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from haina.core.db import transaction, utcnow
from haina.core.errors import Conflict, Invalid, InvalidState
from haina.core.money import share
from haina.members import service as members
from haina.members.models import PointsEntry
from haina.members.schemas import MemberCreate, PointsAdjustmentIn
from haina.platform import service as platform
from haina.platform.schemas import TenantSettings


def member(session, tenant, **fields):
    out = members.create_member(session, tenant, MemberCreate(**(fields or {"name": "Ann"})))
    session.commit()
    return out.id


def set_points_rules(session, tenant, **rules):
    platform.update_tenant_settings(session, tenant, TenantSettings(**rules))
    session.commit()


def lots(session, member_id):
    return session.execute(select(PointsEntry.order_id, PointsEntry.remaining)
                           .where(PointsEntry.member_id == member_id,
                                  PointsEntry.remaining.is_not(None))
                           .order_by(PointsEntry.expires_at)).all()


def assert_ledger_consistent(session, tenant, member_id):
    """The cached balance is the ledger's sum, and the lots back exactly the positive part."""
    session.expire_all()
    cached = members.get_member(session, tenant, member_id).points_balance
    total = members.points_ledger_sum(session, tenant, member_id)
    remaining = session.scalar(select(func.coalesce(func.sum(PointsEntry.remaining), 0))
                               .where(PointsEntry.member_id == member_id))
    negative = session.scalar(select(func.count()).where(PointsEntry.member_id == member_id,
                                                         PointsEntry.remaining < 0))
    assert cached == total
    assert remaining == max(total, 0)
    assert negative == 0
    return total


def test_a_purchase_earns_points_per_whole_currency_unit(session, tenant):
    set_points_rules(session, tenant, points_per_unit=2)
    m = member(session, tenant)
    members.record_purchase(session, tenant, m, "ord_1", 12_399, "CNY", utcnow())  # 123.99 → 123
    members.record_purchase(session, tenant, m, "ord_2", 500, "JPY", utcnow())  # no minor units
    session.commit()
    assert members.get_member(session, tenant, m).points_balance == 2 * 123 + 2 * 500
    assert assert_ledger_consistent(session, tenant, m) == 1246


def test_record_purchase_is_idempotent_per_order(session, tenant):
    m = member(session, tenant)
    for _ in range(3):
        members.record_purchase(session, tenant, m, "ord_1", 10_000, "CNY", utcnow())
        session.commit()
    assert members.get_member(session, tenant, m).points_balance == 100
    assert len(members.list_points(session, tenant, m).data) == 1


def test_redeeming_gives_the_discount_and_never_more_than_the_balance(session, tenant):
    set_points_rules(session, tenant, points_value_minor=5)
    m = member(session, tenant)
    members.record_purchase(session, tenant, m, "ord_1", 10_000, "CNY", utcnow())
    session.commit()
    assert members.redeem_points(session, tenant, m, 60, "ord_2") == 300
    session.commit()
    with pytest.raises(Invalid) as exc:
        members.redeem_points(session, tenant, m, 41, "ord_3")
    assert exc.value.slug == "insufficient-points" and exc.value.extra["balance"] == 40
    session.rollback()
    assert members.redeem_points(session, tenant, m, 0, "ord_3") == 0
    with pytest.raises(Invalid):
        members.redeem_points(session, tenant, m, -1, "ord_3")
    assert assert_ledger_consistent(session, tenant, m) == 40


def test_redeeming_again_for_the_same_order_does_not_spend_twice(session, tenant):
    m = member(session, tenant)
    members.record_purchase(session, tenant, m, "ord_1", 10_000, "CNY", utcnow())
    assert members.redeem_points(session, tenant, m, 30, "ord_2") == 30
    assert members.redeem_points(session, tenant, m, 30, "ord_2") == 30
    with pytest.raises(Conflict) as exc:
        members.redeem_points(session, tenant, m, 10, "ord_2")
    assert exc.value.slug == "points-already-redeemed"
    session.commit()
    assert members.get_member(session, tenant, m).points_balance == 70


def test_points_expire_fifo(session, tenant):
    m = member(session, tenant)
    t0 = utcnow()
    # lots expire 365 days after their purchase: ord_old first
    members.record_purchase(session, tenant, m, "ord_new", 5_000, "CNY", t0 - dt.timedelta(days=10))
    members.record_purchase(session, tenant, m, "ord_old", 3_000, "CNY", t0 - dt.timedelta(days=100))
    session.commit()
    members.redeem_points(session, tenant, m, 40, "ord_spend")  # all 30 of ord_old, 10 of ord_new
    session.commit()
    assert lots(session, m) == [("ord_old", 0), ("ord_new", 40)]

    members.record_purchase(session, tenant, m, "ord_x", 2_000, "CNY", t0 - dt.timedelta(days=80))
    session.commit()
    # at day 300 after t0, ord_old (already spent) and ord_x have expired, ord_new has not
    assert members.expire_points(session, t0 + dt.timedelta(days=300)) == 1
    session.commit()
    assert lots(session, m) == [("ord_old", 0), ("ord_x", 0), ("ord_new", 40)]
    expiries = members.list_points(session, tenant, m, kind="expire").data
    assert [(e.points, e.kind) for e in expiries] == [(-20, "expire")]
    assert members.expire_points(session, t0 + dt.timedelta(days=300)) == 0  # nothing twice
    assert members.expire_points(session, t0 + dt.timedelta(days=400)) == 1
    session.commit()
    assert assert_ledger_consistent(session, tenant, m) == 0


def test_restoring_points_of_a_cancelled_order_gives_them_back_once(session, tenant):
    m = member(session, tenant)
    members.record_purchase(session, tenant, m, "ord_1", 10_000, "CNY", utcnow())
    members.redeem_points(session, tenant, m, 70, "ord_2")
    session.commit()
    assert members.restore_points(session, tenant, m, "ord_2") == 70
    assert members.restore_points(session, tenant, m, "ord_2") == 0
    assert members.restore_points(session, tenant, m, "ord_never") == 0
    session.commit()
    assert lots(session, m) == [("ord_1", 100)]
    assert assert_ledger_consistent(session, tenant, m) == 100
    # the order may redeem again after its points came back
    assert members.redeem_points(session, tenant, m, 10, "ord_2") == 10


def test_a_refund_claws_back_points_in_proportion(session, tenant):
    m = member(session, tenant)
    members.record_purchase(session, tenant, m, "ord_1", 19_999, "CNY", utcnow())  # 199 points
    members.record_purchase(session, tenant, m, "ord_2", 5_000, "CNY", utcnow())
    session.commit()
    members.record_refund(session, tenant, m, "ord_1", 10_000, utcnow())
    session.commit()
    assert members.get_member(session, tenant, m).points_balance == 249 - share(199, 10_000, 19_999)
    # taken from the refunded order's own lot first
    assert dict(lots(session, m))["ord_2"] == 50
    members.record_refund(session, tenant, m, "ord_1", 9_999, utcnow())
    members.record_refund(session, tenant, m, "ord_1", 5_000, utcnow())  # past the amount paid
    session.commit()
    assert members.get_member(session, tenant, m).points_balance == 50
    assert assert_ledger_consistent(session, tenant, m) == 50
    with pytest.raises(InvalidState) as exc:
        members.record_refund(session, tenant, m, "ord_unknown", 100, utcnow())
    assert exc.value.slug == "purchase-not-recorded"


def test_a_refund_of_spent_points_leaves_a_negative_balance_that_later_points_pay(session, tenant):
    m = member(session, tenant)
    members.record_purchase(session, tenant, m, "ord_1", 10_000, "CNY", utcnow())
    members.redeem_points(session, tenant, m, 80, "ord_2")
    members.record_refund(session, tenant, m, "ord_1", 10_000, utcnow())
    session.commit()
    ledger = members.list_points(session, tenant, m).data
    assert [(e.kind, e.points) for e in ledger[:2]] == [("adjust", -80), ("clawback", -20)]
    assert "already spent" in (ledger[0].reason or "")
    assert assert_ledger_consistent(session, tenant, m) == -80
    with pytest.raises(Invalid):
        members.redeem_points(session, tenant, m, 1, "ord_3")
    members.record_purchase(session, tenant, m, "ord_4", 10_000, "CNY", utcnow())
    session.commit()
    assert lots(session, m)[-1] == ("ord_4", 20)  # 80 of the 100 paid the debt
    assert assert_ledger_consistent(session, tenant, m) == 20


def test_manual_adjustments_need_a_reason_and_cannot_overdraw(client):
    mid = client.post("/v1/members", json={"name": "Ann"}).json()["id"]
    r = client.post(f"/v1/members/{mid}/points/adjustments", json={"points": 100, "reason": "welcome gift"})
    assert r.status_code == 201, r.text
    lot = r.json()
    assert lot["id"].startswith("pts_") and lot["remaining"] == 100 and lot["expires_at"]
    r = client.post(f"/v1/members/{mid}/points/adjustments", json={"points": -101, "reason": "typo"})
    assert r.status_code == 422 and r.json()["type"].endswith("/insufficient-points")
    assert client.post(f"/v1/members/{mid}/points/adjustments", json={"points": 0, "reason": "x"}).status_code == 422
    assert client.post(f"/v1/members/{mid}/points/adjustments", json={"points": 5}).status_code == 422
    r = client.post(f"/v1/members/{mid}/points/adjustments", json={"points": -30, "reason": "correction"})
    assert r.status_code == 201 and r.json()["points"] == -30
    assert client.get(f"/v1/members/{mid}").json()["points_balance"] == 70
    page = client.get(f"/v1/members/{mid}/points", params={"limit": 1}).json()
    assert page["has_more"] and page["data"][0]["points"] == -30
    page = client.get(f"/v1/members/{mid}/points", params={"cursor": page["next_cursor"]}).json()
    assert [e["points"] for e in page["data"]] == [100] and not page["has_more"]


def test_writes_to_a_merged_member_through_the_api_name_the_survivor(client):
    a = client.post("/v1/members", json={"name": "a"}).json()["id"]
    b = client.post("/v1/members", json={"name": "b"}).json()["id"]
    assert client.post(f"/v1/members/{a}/merge", json={"other_id": b}).status_code == 200
    r = client.post(f"/v1/members/{b}/points/adjustments", json={"points": 5, "reason": "x"})
    assert r.status_code == 409 and r.json()["merged_into"] == a
    assert client.get(f"/v1/members/{b}").json()["merged_into"] == a
    assert [m["id"] for m in client.get("/v1/members").json()["data"]] == [a]
    assert len(client.get("/v1/members", params={"include_merged": "true"}).json()["data"]) == 2


def test_two_concurrent_redemptions_of_the_last_points_only_one_succeeds(sessions, engine, tenant):
    with transaction(sessions) as s:
        m = members.create_member(s, tenant, MemberCreate(name="Ann")).id
        members.record_purchase(s, tenant, m, "ord_1", 10_000, "CNY", utcnow())
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def linger(conn, cursor, statement, *args):
        # hold each redeemer between reading the member and writing, so that without the row
        # lock both would read the same balance
        if threading.current_thread().name.startswith("redeem") and "FROM members" in statement:
            time.sleep(0.3)

    def redeem(order_id: str) -> None:
        barrier.wait()
        try:
            with transaction(sessions) as s:
                members.redeem_points(s, tenant, m, 100, order_id)
            outcomes.append("ok")
        except Invalid as exc:
            outcomes.append(exc.slug)

    event.listen(engine, "after_cursor_execute", linger)
    try:
        threads = [threading.Thread(target=redeem, args=(f"ord_{i}",), name=f"redeem-{i}")
                   for i in (2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        event.remove(engine, "after_cursor_execute", linger)
    assert sorted(outcomes) == ["insufficient-points", "ok"]
    with sessions() as s:
        assert assert_ledger_consistent(s, tenant, m) == 0


def test_creating_a_member_with_two_identities_takes_four_statements(session, tenant, engine):
    statements: list[str] = []
    savepoint: list[str] = []

    def count(conn, cursor, statement, *args):
        # the savepoint that confines a taken identity is counted apart from the work
        if statement.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            savepoint.append(statement.split()[0])
        elif not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        members.create_member(session, tenant, MemberCreate(
            name="Ann", phone="13800000000", identities=[{"kind": "wechat_openid", "value": "oA"}]))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 4, statements
    assert savepoint == ["SAVEPOINT", "RELEASE"]


_order_ids = itertools.count()

operation = st.one_of(
    st.tuples(st.just("purchase"), st.integers(0, 50_000)),
    st.tuples(st.just("redeem"), st.integers(1, 400)),
    st.tuples(st.just("restore"), st.integers(0, 20)),
    st.tuples(st.just("refund"), st.integers(0, 20), st.integers(1, 50_000)),
    st.tuples(st.just("adjust"), st.integers(-300, 300).filter(bool)),
    st.tuples(st.just("wait"), st.integers(1, 200)),
)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=12))
# spent points clawed back (the balance goes negative), then points that pay the debt
@example(ops=[("purchase", 10_000), ("redeem", 90), ("refund", 0, 10_000), ("purchase", 5_000),
              ("redeem", 11), ("wait", 400)])
# two half refunds of an odd amount: rounding must not leak a point
@example(ops=[("purchase", 10_100), ("refund", 0, 5_050), ("refund", 0, 5_050)])
def test_any_sequence_of_points_changes_keeps_balance_equal_to_the_ledger(sessions, tenant, ops):
    """Earn / redeem / restore / refund / adjust / expire in any order: the cached balance is
    the ledger's sum; lots never go negative and back exactly the positive balance; a
    redemption succeeds exactly when the balance covers it; the balance is what was earned
    minus what was spent, and below zero only by the shortfall of refund clawbacks."""
    with transaction(sessions) as s:
        m = members.create_member(s, tenant, MemberCreate(name="prop")).id
    clock = utcnow()
    purchases: list[tuple[str, int]] = []
    refunded: dict[str, int] = {}
    redemptions: list[str] = []
    expected = 0
    for op in ops:
        with sessions() as s:
            balance = members.get_member(s, tenant, m).points_balance
            kind = op[0]
            if kind == "purchase":
                oid = f"ord_p{next(_order_ids)}"
                members.record_purchase(s, tenant, m, oid, op[1], "CNY", clock)
                purchases.append((oid, op[1]))
                expected += op[1] // 100
            elif kind == "redeem":
                oid = f"ord_r{next(_order_ids)}"
                try:
                    members.redeem_points(s, tenant, m, op[1], oid)
                    assert op[1] <= balance
                    expected -= op[1]
                    redemptions.append(oid)
                except Invalid as exc:
                    assert exc.slug == "insufficient-points" and op[1] > balance
            elif kind == "restore" and redemptions:
                oid = redemptions[op[1] % len(redemptions)]
                expected += members.restore_points(s, tenant, m, oid)
            elif kind == "refund" and purchases:
                oid, paid = purchases[op[1] % len(purchases)]
                before = s.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                    PointsEntry.member_id == m, PointsEntry.kind.in_(["clawback", "adjust"]),
                    PointsEntry.order_id == oid))
                members.record_refund(s, tenant, m, oid, op[2], clock)
                s.flush()
                after = s.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                    PointsEntry.member_id == m, PointsEntry.kind.in_(["clawback", "adjust"]),
                    PointsEntry.order_id == oid))
                clawed = before - after
                # cumulative proportional clawback: a full refund takes back all it earned
                done = refunded.get(oid, 0)
                refunded[oid] = min(paid, done + op[2])
                earned = paid // 100
                assert clawed == share(earned, refunded[oid], paid) - share(earned, done, paid)
                assert -after == share(earned, refunded[oid], paid)
                expected -= clawed
            elif kind == "adjust":
                try:
                    members.adjust_points(s, tenant, m, PointsAdjustmentIn(points=op[1], reason="p"))
                    expected += op[1]
                except Invalid:
                    assert -op[1] > balance
            elif kind == "wait":
                clock += dt.timedelta(days=op[1])
                due = s.scalar(select(func.coalesce(func.sum(PointsEntry.remaining), 0)).where(
                    PointsEntry.member_id == m, PointsEntry.remaining > 0,
                    PointsEntry.expires_at <= clock))
                members.expire_points(s, clock)
                expected -= due
            s.commit()
            total = assert_ledger_consistent(s, tenant, m)
            assert total == expected
            # refund shortfalls are the adjust entries written for an order
            shortfall = -s.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)).where(
                PointsEntry.member_id == m, PointsEntry.kind == "adjust",
                PointsEntry.order_id.is_not(None)))
            assert total >= -shortfall
            if shortfall == 0:
                assert total >= 0
