"""Reading the platform's orders for analytics, and the refresh job's life, on SQLite and
PostgreSQL: what counts as a purchase, merged members, the worker, one job at a time."""

from __future__ import annotations

import datetime as dt
import sys
import time
import typing
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from haina.analytics import refresh as refresh_pipeline
from haina.analytics import service, sources
from haina.analytics.clv import rfm
from haina.analytics.models import AnalyticsJob, AnalyticsRun, MemberScore
from haina.analytics.schemas import RefreshIn, Segment, Stage
from haina.core.db import transaction, utcnow
from haina.core.errors import Conflict, NotFound
from haina.members import service as members

from .platform_data import UTC, buying_history, new_members, order_rows, write_orders

END = dt.date(2025, 6, 30)


def test_a_purchase_is_a_paid_member_order_net_of_refunds_under_the_surviving_member(
        sessions, tenant, tmp_path):
    ann, bob, cat = new_members(sessions, tenant, 3)
    at = dt.datetime(2025, 3, 1, 23, 30, tzinfo=UTC)
    t = tenant.id
    write_orders(sessions, tenant, [
        order_rows(t, ann, at, 10_000),
        order_rows(t, bob, at + dt.timedelta(days=3), 8_000, refunded_minor=3_000),  # partial
        order_rows(t, cat, at, 5_000, refunded_minor=5_000),   # refunded in full: no purchase
        order_rows(t, cat, None, 0),                            # never paid (cancelled)
        order_rows(t, None, at, 7_000),                         # a guest: no customer
        order_rows(t, ann, at, 9_900, currency="USD"),         # another currency
    ])
    with transaction(sessions) as s:
        members.merge_members(s, tenant, ann, bob)  # bob's history is now ann's
    path = tmp_path / "purchases.parquet"
    stats = sources.export_paid_orders(sessions, tenant, path, timezone="Asia/Shanghai")
    got = pd.read_parquet(path).sort_values("ordered_at").reset_index(drop=True)
    assert stats.rows == 2 and stats.other_currency == 1
    assert got["customer_id"].tolist() == [ann, ann]
    assert got["amount_minor"].tolist() == [10_000, 5_000]
    assert got["amount"].tolist() == [100.0, 50.0]
    # 23:30 UTC is 07:30 the next morning in Shanghai: the calendar day of the zone asked for
    assert got["ordered_at"].iloc[0] == pd.Timestamp("2025-03-02 07:30")
    assert stats.note("CNY") == ["left out 1 paid order(s) in currencies other than CNY"]


def test_merge_chains_lead_to_the_last_survivor(sessions, tenant):
    a, b, c = new_members(sessions, tenant, 3)
    with transaction(sessions) as s:
        members.merge_members(s, tenant, b, c)
        members.merge_members(s, tenant, a, b)
    with transaction(sessions) as s:
        assert members.merge_survivors(s, tenant) == {b: a, c: a}


def test_pages_of_the_order_log_are_read_whole(sessions, tenant, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "PAGE_ROWS", 7)
    ids = new_members(sessions, tenant, 2)  # 12 and 11 orders: pages split a member's history
    rows = [order_rows(tenant.id, ids[i % 2], dt.datetime(2025, 1, 1 + i, tzinfo=UTC), 100 + i)
            for i in range(23)]
    write_orders(sessions, tenant, rows)
    seen = []
    stats = sources.export_paid_orders(sessions, tenant, tmp_path / "p.parquet",
                                       progress=lambda done, total: seen.append((done, total)))
    assert stats.rows == 23 and seen == [(7, 23), (14, 23), (21, 23), (23, 23)]
    assert sorted(pd.read_parquet(tmp_path / "p.parquet")["amount_minor"]) == \
        [100 + i for i in range(23)]


def refresh(sessions, tenant, **params) -> tuple[str | None, object]:
    with transaction(sessions) as s:
        job = service.start_refresh(s, tenant, RefreshIn(observation_end=END, **params))
    status = service.run_job(sessions, job.id)
    with transaction(sessions) as s:
        return status, service.get_job(s, tenant, job.id)


def test_a_merged_members_id_answers_with_the_survivors_scores(sessions, tenant):
    ids = new_members(sessions, tenant, 40)
    history = buying_history(tenant.id, ids, end=END)
    write_orders(sessions, tenant, list(zip(*history, strict=True)))
    survivor, merged = ids[0], ids[1]
    with transaction(sessions) as s:
        members.merge_members(s, tenant, survivor, merged)
    status, job = refresh(sessions, tenant)
    assert status == "succeeded", job.message
    with transaction(sessions) as s:
        scores = service.member_scores(s, tenant, merged)
        assert scores.member_id == survivor
        assert service.member_scores(s, tenant, survivor) == scores
        with pytest.raises(NotFound):
            service.member_scores(s, tenant, "mem_elsewhere")
    days = {o["paid_at"].date() for o in history[0] if o["member_id"] in (survivor, merged)}
    assert scores.frequency == len(days) - 1


def test_scores_are_404_before_the_first_refresh(client):
    r = client.get("/v1/analytics/members/mem_anyone")
    assert r.status_code == 404
    assert r.json()["type"] == "https://haina.dev/problems/analytics-scores-not-found"
    body = client.get("/v1/analytics/segments").json()
    assert body["run_id"] is None and body["members"] == 0
    assert client.get("/v1/analytics/cohorts").json()["cohorts"] == []
    assert client.get("/v1/analytics/plots/cohort_heatmap.png").status_code == 404


def test_a_refresh_with_no_orders_fails_with_a_message_the_merchant_understands(sessions,
                                                                                  tenant):
    status, job = refresh(sessions, tenant)
    assert status == "failed" and job.status == "failed"
    assert "no purchases to analyse" in job.message
    assert job.finished_at is not None


def wait_for(client, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/analytics/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_one_refresh_at_a_time_and_the_worker_runs_a_queued_one(client, sessions):
    from haina.platform import service as platform
    from haina.worker import run_once

    with transaction(sessions) as s:
        acme = platform.tenant_for_slug(s, "acme")
        queued = service.start_refresh(s, acme, RefreshIn(model="pnbd"))  # no thread runs it
    refused = client.post("/v1/analytics/refresh")
    assert refused.status_code == 409
    assert refused.json()["type"] == "https://haina.dev/problems/analytics-refresh-running"
    assert refused.json()["job_id"] == queued.id
    assert run_once(sessions)["analytics_refreshes_run"] == 1
    job = wait_for(client, queued.id)
    assert job["status"] == "failed" and "no purchases" in job["message"]  # acme has no orders
    assert job["progress"] < 100 and job["finished_at"]
    again = client.post("/v1/analytics/refresh", headers={"Idempotency-Key": "refresh-1"})
    assert again.status_code == 202  # the slot is free again
    replay = client.post("/v1/analytics/refresh", headers={"Idempotency-Key": "refresh-1"})
    assert replay.status_code == 202 and replay.json()["id"] == again.json()["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert client.get(f"/v1/analytics/jobs/{again.json()['id']}").json()["status"] == "queued"
    assert run_once(sessions)["analytics_refreshes_run"] == 1
    assert run_once(sessions)["analytics_refreshes_run"] == 0  # one at a time, none left
    assert wait_for(client, again.json()["id"])["status"] == "failed"
    jobs = client.get("/v1/analytics/jobs").json()["data"]
    assert [j["id"] for j in jobs] == [again.json()["id"], queued.id]


def test_a_job_whose_process_died_is_failed_and_frees_the_slot(sessions, tenant):
    with transaction(sessions) as s:
        job = service.start_refresh(s, tenant, RefreshIn())
        with pytest.raises(Conflict):
            service.start_refresh(s, tenant, RefreshIn())
        long_ago = utcnow() - service.STALE_AFTER - dt.timedelta(minutes=1)
        s.execute(update(AnalyticsJob).where(AnalyticsJob.id == job.id)
                  .values(status="running", updated_at=long_ago))
    with transaction(sessions) as s:
        again = service.start_refresh(s, tenant, RefreshIn())
        old = service.get_job(s, tenant, job.id)
    assert old.status == "failed" and "abandoned" in old.message
    assert again.status == "queued"
    assert service.run_job(sessions, job.id) is None  # a failed job is never run


def test_a_job_declared_abandoned_while_it_ran_writes_nothing(sessions, tenant, monkeypatch):
    ids = new_members(sessions, tenant, 40)
    write_orders(sessions, tenant, list(zip(*buying_history(tenant.id, ids, end=END),
                                            strict=True)))
    store = refresh_pipeline._store

    def abandoned_meanwhile(sessions, tenant, job, *args):
        with transaction(sessions) as s:  # what fail_stale_jobs does to a silent job
            s.execute(update(AnalyticsJob).where(AnalyticsJob.id == job.id)
                      .values(status="failed", message="abandoned"))
        return store(sessions, tenant, job, *args)

    monkeypatch.setattr(refresh_pipeline, "_store", abandoned_meanwhile)
    status, job = refresh(sessions, tenant)
    assert status == "failed" and job.status == "failed" and job.message == "abandoned"
    assert job.run_id is None
    with transaction(sessions) as s:
        for table in (MemberScore, AnalyticsRun):
            assert s.scalar(select(func.count()).select_from(table)
                            .where(table.tenant_id == tenant.id)) == 0


def test_an_observation_end_after_today_is_a_422_naming_the_limit(client):
    zone = "Pacific/Kiritimati"  # UTC+14: its today is the furthest ahead of all
    before = dt.datetime.now(ZoneInfo(zone)).date()
    late = client.post("/v1/analytics/refresh", json={
        "observation_end": str(before + dt.timedelta(days=1)), "timezone": zone})
    after = dt.datetime.now(ZoneInfo(zone)).date()
    assert late.status_code == 422, late.text
    assert late.headers["content-type"] == "application/problem+json"
    problem = late.json()
    assert problem["type"] == "https://haina.dev/problems/observation-end-in-future"
    assert problem["latest"] in (str(before), str(after))
    assert f"the latest observation end is today, {problem['latest']} in {zone}" in \
        problem["detail"]
    far = client.post("/v1/analytics/refresh", json={"observation_end": "2999-12-31"})
    assert far.status_code == 422 and "2999-12-31" in far.json()["detail"]
    assert client.get("/v1/analytics/jobs").json()["data"] == []  # nothing was queued
    today = client.post("/v1/analytics/refresh", json={
        "observation_end": str(dt.datetime.now(ZoneInfo(zone)).date()), "timezone": zone})
    assert today.status_code == 202, today.text


def test_refreshing_from_an_empty_import_is_a_422(client):
    r = client.post("/v1/analytics/refresh", json={"source": "import"})
    assert r.status_code == 422
    assert r.json()["type"] == "https://haina.dev/problems/analytics-nothing-imported"
    bad = client.post("/v1/analytics/refresh", json={"timezone": "Mars/Olympus"})
    assert bad.status_code == 422 and "unknown time zone" in bad.json()["detail"]


def test_asking_for_spark_where_it_cannot_run_is_a_422_saying_why(client, monkeypatch):
    from haina.analytics import spark

    monkeypatch.setattr(spark, "unavailable_reason", lambda: "no Java runtime found")
    r = client.post("/v1/analytics/refresh", json={"engine": "spark"})
    assert r.status_code == 422
    assert r.json()["type"] == "https://haina.dev/problems/analytics-engine-unavailable"
    assert "no Java runtime found" in r.json()["detail"]


def test_the_segment_and_stage_names_of_the_api_are_those_of_rfm():
    assert typing.get_args(Segment) == rfm.SEGMENTS
    assert set(typing.get_args(Stage)) == set(rfm.STAGES)


def test_the_app_starts_without_the_analytics_extra_and_has_no_analytics_routes(
        engine, monkeypatch):
    from haina.api import create_app
    from haina.core.config import Settings

    with_extra = create_app(Settings(database_url=str(engine.url)), engine=engine)
    assert "/v1/analytics/refresh" in with_extra.openapi()["paths"]
    monkeypatch.setitem(sys.modules, "haina.analytics.api", None)  # as if numpy were missing
    app = create_app(Settings(database_url=str(engine.url)), engine=engine)
    paths = set(app.openapi()["paths"])
    assert "/v1/orders" in paths
    assert not any(p.startswith("/v1/analytics") for p in paths)


def test_consented_only_reads_the_purchases_of_members_who_granted_data_analysis(
        sessions, tenant, tmp_path):
    from haina.members.schemas import ConsentsIn

    yes, no, merged_away = new_members(sessions, tenant, 3)
    at = dt.datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    t = tenant.id
    write_orders(sessions, tenant, [order_rows(t, yes, at, 1_000), order_rows(t, no, at, 2_000),
                                    order_rows(t, merged_away, at, 3_000)])
    with transaction(sessions) as s:
        members.update_consents(s, tenant, yes, ConsentsIn(data_analysis=True))
        members.merge_members(s, tenant, yes, merged_away)  # its history counts for `yes`
    path = tmp_path / "p.parquet"
    stats = sources.export_paid_orders(sessions, tenant, path, consented_only=True)
    got = pd.read_parquet(path)
    assert sorted(got["amount_minor"]) == [1_000, 3_000] and set(got["customer_id"]) == {yes}
    assert stats.without_consent == 1
    assert stats.note("CNY") == ["left out 1 purchase(s) of members without the data_analysis "
                                 "consent"]
    everyone = sources.export_paid_orders(sessions, tenant, tmp_path / "all.parquet")
    assert everyone.rows == 3 and everyone.without_consent == 0


def test_consented_only_with_no_consenting_member_fails_saying_so(sessions, tenant):
    (who,) = new_members(sessions, tenant, 1)
    write_orders(sessions, tenant, [order_rows(tenant.id, who, dt.datetime(2025, 3, 1,
                                                                           tzinfo=UTC), 1_000)])
    with transaction(sessions) as s:
        job = service.start_refresh(s, tenant, RefreshIn(consented_only=True,
                                                         observation_end=END))
    service.run_job(sessions, job.id)
    with transaction(sessions) as s:
        out = service.get_job(s, tenant, job.id)
    assert out.status == "failed" and "data_analysis consent" in out.message
    assert out.params.consented_only is True


def test_consented_only_is_refused_for_an_imported_log():
    with pytest.raises(ValueError, match="imported log"):
        RefreshIn(source="import", consented_only=True)


def test_a_member_who_withdrew_data_analysis_is_not_scored_at_the_next_refresh(sessions, tenant):
    from haina.core.errors import NotFound as Missing
    from haina.members.schemas import ConsentsIn

    ids = new_members(sessions, tenant, 40)
    write_orders(sessions, tenant, list(zip(*buying_history(tenant.id, ids, end=END),
                                            strict=True)))
    assert refresh(sessions, tenant)[0] == "succeeded"
    with transaction(sessions) as s:
        assert service.member_scores(s, tenant, ids[0]).member_id == ids[0]
        members.update_consents(s, tenant, ids[0], ConsentsIn(data_analysis=False,
                                                              channel="app"))
        members.update_consents(s, tenant, ids[1], ConsentsIn(data_analysis=True))
    status, job = refresh(sessions, tenant)  # not consented_only: everyone else is scored
    assert status == "succeeded", job.message
    with transaction(sessions) as s:
        with pytest.raises(Missing):
            service.member_scores(s, tenant, ids[0])
        assert service.member_scores(s, tenant, ids[1]).member_id == ids[1]
        assert s.scalar(select(func.count()).select_from(MemberScore).where(
            MemberScore.tenant_id == tenant.id)) >= 30
