"""Campaign enrolment as a worker job, SQLite and PostgreSQL: a launch in batches (each its
own transaction) that is interrupted — a batch fails, the worker dies — ends with every member
enrolled, issued and told of exactly once; re-evaluation adds who joined the segment since
(same seeded draw) and keeps who left; a paused campaign's enrolment waits; the due time the
worker scans by; the lifecycle table."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from sqlalchemy import func, select

from haina.campaigns import enrolment, lift, service
from haina.campaigns.lifecycle import CAMPAIGN_LIFECYCLE
from haina.campaigns.models import Campaign, CampaignJob, CampaignMember
from haina.campaigns.schemas import CampaignCreate, CampaignUpdate
from haina.core.config import get_settings
from haina.core.db import transaction
from haina.core.errors import InvalidState
from haina.core.events import Event
from haina.marketing import service as marketing
from haina.members import service as members
from haina.members.schemas import ConsentsIn, MemberCreate

TWENTY = {"type": "fixed", "amount": {"amount": "20.00", "currency": "CNY"}}


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(get_settings(), "campaign_batch_size", 7)


def work(sessions) -> int:
    """A worker pass's campaign job (its session only lends the connection: each batch is a
    transaction of its own, so nothing else may hold SQLite's write lock meanwhile)."""
    with transaction(sessions) as s:
        return service.run_queued_jobs(s)


def due(sessions, when: dt.datetime) -> int:
    with transaction(sessions) as s:
        return service.run_due_campaigns(s, when)


def later(days: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


def make_members(sessions, tenant, n: int, consenting=lambda i: True) -> list[str]:
    with transaction(sessions) as s:
        return [members.create_member(s, tenant, MemberCreate.model_validate(
            {"name": f"M{i}", "consents": {"sms_marketing": consenting(i), "channel": "web"}})).id
            for i in range(n)]


def create(sessions, tenant, **body):
    data = {"name": "Win back", "coupon": {"discount": TWENTY}, "holdout_percent": 30,
            "ends_at": later(30), "seed": "jobs", **body}
    with transaction(sessions) as s:
        return service.create_campaign(s, tenant, CampaignCreate.model_validate(data))


def read(sessions, tenant, campaign_id):
    with transaction(sessions) as s:
        return service.get_campaign(s, tenant, campaign_id)


def enrolled(sessions, campaign_id) -> list[tuple[str, str]]:
    with transaction(sessions) as s:
        return [(m, arm) for m, arm in s.execute(
            select(CampaignMember.member_id, CampaignMember.arm)
            .where(CampaignMember.campaign_id == campaign_id))]


def events(sessions, type_: str) -> list[dict]:
    with transaction(sessions) as s:
        return [e.data for e in s.scalars(select(Event).where(Event.type == type_)
                                          .order_by(Event.id))]


def assert_each_member_once(sessions, tenant, c, audience):
    """Every consenting member enrolled once, in the arm the seed draws; the counts, the
    coupon's wallet entries and the events agree with the rows."""
    rows = enrolled(sessions, c.id)
    assert Counter(m for m, _ in rows) == Counter(audience)  # nobody twice, nobody missing
    treated = sorted(m for m, arm in rows if arm == "treated")
    holdout = sorted(m for m, arm in rows if arm == "holdout")
    assert holdout == sorted(m for m in audience if lift.in_holdout(c.seed, m, 3000))
    c = read(sessions, tenant, c.id)
    assert (c.treated, c.holdout) == (len(treated), len(holdout))
    targeted = [e["member_id"] for e in events(sessions, "campaign.member_targeted")]
    assert sorted(targeted) == treated
    with transaction(sessions) as s:
        coupon = marketing.get_coupon(s, tenant, c.coupon_id)
        assert coupon.issued == len(treated)
        for m in treated[:3] + holdout[:3]:
            held = marketing.member_wallet(s, tenant, m).data
            assert [w.code for w in held] == ([c.coupon_code] if m in treated else [])
    return c


def test_a_launch_in_batches_survives_a_failed_batch_and_a_dead_worker(
        sessions, tenant, small_batches):
    ids = make_members(sessions, tenant, 40, consenting=lambda i: i % 8 != 0)  # 35 consent
    audience = [m for i, m in enumerate(ids) if i % 8 != 0]
    c = create(sessions, tenant, member_ids=ids)
    # 35 members do not fit one batch of 7: the request launches and queues, nothing more
    assert (c.status, c.treated, c.holdout, c.audience, c.candidates) == ("running", 0, 0, 35, 40)
    assert c.enrolment is not None and c.enrolment.status == "queued" and c.enrolment.kind == "launch"
    job_id = c.enrolment.id
    seen: list[tuple[int, int]] = []

    def fail_third(done, total):
        seen.append((done, total))
        if len(seen) == 3:
            raise RuntimeError("the database went away")

    assert service.run_job(sessions, tenant.id, job_id, on_batch=fail_third) == "queued"
    assert seen == [(7, 35), (14, 35), (21, 35)]  # the third batch was undone whole
    assert len(enrolled(sessions, c.id)) == 14
    c = read(sessions, tenant, c.id)
    assert c.treated + c.holdout == 14 and c.enrolment is not None
    assert (c.enrolment.status, c.enrolment.attempts, c.enrolment.done) == ("queued", 1, 14)
    assert "the database went away" in c.enrolment.message
    # one batch per claim: queued again, a fifth on
    assert service.run_job(sessions, tenant.id, job_id, max_batches=1) == "queued"
    c = read(sessions, tenant, c.id)
    assert c.treated + c.holdout == 21 and c.enrolment.progress == 60

    def die(done, total):
        raise SystemExit("the worker's process is killed mid-batch")

    with pytest.raises(SystemExit):
        service.run_job(sessions, tenant.id, job_id, on_batch=die)
    with transaction(sessions) as s:  # left running: no worker takes it until it is stale
        assert s.get_one(CampaignJob, (tenant.id, job_id)).status == "running"
    assert work(sessions) == 0
    with transaction(sessions) as s:
        assert enrolment.requeue_stale(s, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)) == 1
    assert work(sessions) == 1
    c = assert_each_member_once(sessions, tenant, c, audience)
    assert c.enrolment is not None
    assert (c.enrolment.status, c.enrolment.progress, c.enrolment.done) == ("succeeded", 100, 35)
    assert (c.enrolment.treated, c.enrolment.holdout) == (c.treated, c.holdout)
    done, = events(sessions, "campaign.enrolled")
    assert (done["treated"], done["holdout"], done["kind"]) == (c.treated, c.holdout, "launch")
    assert work(sessions) == 0  # run again: nothing left to do, nothing done twice
    assert len(enrolled(sessions, c.id)) == 35


def test_the_budget_stops_a_batched_walk_for_both_groups_and_closes_the_enrolment(
        sessions, tenant, small_batches):
    ids = make_members(sessions, tenant, 30)
    c = create(sessions, tenant, member_ids=ids, budget={"amount": "200.00", "currency": "CNY"},
               reevaluate_hours=1)
    assert work(sessions) == 1
    c = read(sessions, tenant, c.id)
    assert c.treated == 10 and str(c.committed.amount) == "200.00"  # 10 × 20.00, an 11th passes it
    order = lift.enrolment_order("jobs", ids)
    rows = dict(enrolled(sessions, c.id))
    # the enrolled are a prefix of the seeded order: the walk stopped there for both groups
    assert set(rows) == set(order[:len(rows)]) and c.left_out == 30 - len(rows)
    assert c.enrolment is not None and c.enrolment.status == "succeeded"
    more = make_members(sessions, tenant, 5)
    with transaction(sessions) as s:
        row = s.get_one(Campaign, (tenant.id, c.id))
        row.member_ids = ids + more  # (a list is fixed by the API; a segment grows like this)
    assert due(sessions, later(0.1)) == 1  # its re-evaluation is due
    assert work(sessions) == 1
    c = read(sessions, tenant, c.id)
    assert len(enrolled(sessions, c.id)) == len(rows) and c.left_out == 35 - len(rows)
    assert c.enrolment is not None and c.enrolment.kind == "reevaluate"
    assert (c.enrolment.treated, c.enrolment.holdout) == (0, 0)


def test_reevaluation_adds_who_joined_the_segment_and_keeps_who_left(sessions, tenant):
    from haina.analytics import service as analytics
    from haina.analytics.models import MemberScore
    from haina.analytics.schemas import SegmentCreate
    ids = make_members(sessions, tenant, 24)

    def score(member_ids, p_alive):
        with transaction(sessions) as s:
            for m in member_ids:
                s.merge(MemberScore(
                    tenant_id=tenant.id, member_id=m, run_id="run_x", frequency=3, recency=10.0,
                    age=100.0, monetary_minor=30000, p_alive=p_alive,
                    expected_purchases_90d=0.2, clv_minor=90000, r_score=1, f_score=3,
                    m_score=5, segment="at_risk", stage="at_risk",
                    computed_at=dt.datetime.now(dt.UTC)))

    score(ids[:12], 0.1)
    with transaction(sessions) as s:
        seg = analytics.create_segment(s, tenant, SegmentCreate.model_validate(
            {"name": "at risk", "rule": {"p_alive_lt": 0.3}}))
    c = create(sessions, tenant, segment_id=seg.id, reevaluate_hours=6)
    assert c.enrolment is not None and c.enrolment.status == "succeeded"  # one batch: at once
    assert sorted(m for m, _ in enrolled(sessions, c.id)) == sorted(ids[:12])
    with transaction(sessions) as s:
        due_at = s.get_one(Campaign, (tenant.id, c.id)).due_at
        assert c.reevaluated_at is not None
        assert due_at == c.reevaluated_at + dt.timedelta(hours=6)
    # a new analytics run: four members leave the segment, eight join it
    score(ids[:4], 0.9)
    score(ids[12:20], 0.1)
    assert due(sessions, later(0.1)) == 0  # not due for six hours
    assert due(sessions, later(0.3)) == 1
    assert due(sessions, later(0.3)) == 0  # queued once
    assert work(sessions) == 1
    c = assert_each_member_once(sessions, tenant, c, ids[:20])  # who left is kept
    assert c.enrolment is not None and c.enrolment.kind == "reevaluate"
    assert c.enrolment.treated + c.enrolment.holdout == 8 and c.audience == 16
    assert [e["kind"] for e in events(sessions, "campaign.enrolled")] == ["launch", "reevaluate"]
    # the same draw as if they had been there at the launch: the seed decides, not the timing
    assert {m: a for m, a in enrolled(sessions, c.id)} == {
        m: "holdout" if lift.in_holdout("jobs", m, 3000) else "treated" for m in ids[:20]}


def test_a_paused_campaigns_enrolment_waits_and_an_ended_ones_is_canceled(
        sessions, tenant, small_batches):
    ids = make_members(sessions, tenant, 20)
    c = create(sessions, tenant, member_ids=ids, reevaluate_hours=0)
    job_id = c.enrolment.id if c.enrolment else ""
    assert service.run_job(sessions, tenant.id, job_id, max_batches=1) == "queued"
    with transaction(sessions) as s:
        service.update_campaign(s, tenant, c.id, CampaignUpdate(status="paused"))
    assert work(sessions) == 0  # the worker leaves it
    assert service.run_job(sessions, tenant.id, job_id) == "queued"  # asked anyway: it waits
    c = read(sessions, tenant, c.id)
    assert c.enrolment is not None and c.enrolment.message == "waiting: the campaign is paused"
    assert c.treated + c.holdout == 7
    with transaction(sessions) as s:
        service.update_campaign(s, tenant, c.id, CampaignUpdate(status="running"))
    assert work(sessions) == 1
    assert_each_member_once(sessions, tenant, c, ids)
    # another, ended before its enrolment finished
    other = create(sessions, tenant, member_ids=ids, ends_at=later(1), seed="other")
    assert due(sessions, later(2)) == 1  # it ends (the first is due at its end only)
    assert work(sessions) == 0
    other = read(sessions, tenant, other.id)
    assert other.status == "ended" and other.enrolment is not None
    assert other.enrolment.status == "canceled"
    with transaction(sessions) as s:
        assert s.get_one(Campaign, (tenant.id, other.id)).due_at is None
        with pytest.raises(InvalidState):
            service.reevaluate_campaign(s, tenant, other.id)


def test_campaign_status_changes_follow_the_lifecycle_table(sessions, tenant):
    ids = make_members(sessions, tenant, 3)
    c = create(sessions, tenant, member_ids=ids, starts_at=later(1), reevaluate_hours=0)
    with transaction(sessions) as s:
        assert s.get_one(Campaign, (tenant.id, c.id)).due_at == c.starts_at
        service.update_campaign(s, tenant, c.id, CampaignUpdate(status="paused"))
        service.update_campaign(s, tenant, c.id, CampaignUpdate(status="running"))
        assert service.run_due_campaigns(s, later(1.5)) == 1
        row = s.get_one(Campaign, (tenant.id, c.id))
        assert (row.status, row.due_at) == ("running", row.ends_at)  # no re-evaluation: its end
    with pytest.raises(InvalidState):  # the table refuses what it does not list
        CAMPAIGN_LIFECYCLE.check("campaign.launched", "running", "running")
    stream = [(t, d.get("status")) for t, d in _campaign_events(sessions, c.id)]
    assert [t for t, _ in stream if t != "campaign.member_targeted"] == [
        "campaign.created", "campaign.updated", "campaign.updated", "campaign.launched",
        "campaign.enrolled"]
    assert CAMPAIGN_LIFECYCLE.walk(stream) == []
    assert [s for _, s in stream[:4]] == ["scheduled", "paused", "scheduled", "running"]


def _campaign_events(sessions, campaign_id):
    with transaction(sessions) as s:
        return [(e.type, e.data) for e in s.scalars(
            select(Event).where(Event.subject_id == campaign_id).order_by(Event.id))]


def test_consent_withdrawn_before_a_batch_keeps_the_member_out(sessions, tenant, small_batches):
    ids = make_members(sessions, tenant, 10)
    c = create(sessions, tenant, member_ids=ids, holdout_percent=0)
    order = lift.enrolment_order("jobs", ids)
    with transaction(sessions) as s:
        members.update_consents(s, tenant, order[-1], ConsentsIn(sms_marketing=False))
    assert work(sessions) == 1
    with transaction(sessions) as s:
        assert s.scalar(select(func.count()).select_from(CampaignMember).where(
            CampaignMember.campaign_id == c.id)) == 9
    assert order[-1] not in dict(enrolled(sessions, c.id))
