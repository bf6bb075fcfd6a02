"""The analytics API over the quick demo data, on SQLite and PostgreSQL: a refresh job, queued by
the API and run by the worker, scores every member with a paid order; segments, saved segments, cohorts and charts read that run; a
merchant sees only its own members."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from haina.analytics.models import MemberScore
from haina.api import create_app
from haina.core.config import Settings
from haina.core.db import make_engine, make_sessionmaker, transaction
from haina.core.money import to_minor
from haina.platform import service as platform
from haina.worker import run_once

PAID = ("tenant_id = :t AND member_id IS NOT NULL AND paid_at IS NOT NULL "
        "AND paid_minor - refunded_minor > 0 AND currency = 'CNY'")


def wait_for(client: TestClient, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/analytics/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


@dataclass
class Demo:
    client: TestClient
    sessions: object
    tires: object
    beauty: object
    tires_token: str
    beauty_token: str
    job: dict
    progress_seen: list[int]


@pytest.fixture(scope="module")
def demo(module_demo_url):
    """The quick demo merchants, refreshed once through the API (shared, read-only)."""
    module_db_url = module_demo_url  # a copy of the quick demo's database (tests/conftest.py)
    engine = make_engine(module_db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        tires = platform.tenant_for_slug(s, "demo-tires")
        beauty = platform.tenant_for_slug(s, "demo-beauty")
        tires_token = platform.create_token(s, "demo-tires", "*").token
        beauty_token = platform.create_token(s, "demo-beauty", "*").token
    app = create_app(Settings(database_url=module_db_url, token_cache_seconds=0), engine=engine)
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {beauty_token}"
        beauty_job = client.post("/v1/analytics/refresh", json={"freq": "W"}).json()
        assert run_once(sessions)["analytics_refreshes_run"] == 1  # the worker runs it
        assert wait_for(client, beauty_job["id"])["status"] == "succeeded"
        client.headers["Authorization"] = f"Bearer {tires_token}"
        queued = client.post("/v1/analytics/refresh", json={"holdout_days": 120})
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "queued" and queued.json()["progress"] == 0
        time.sleep(0.2)  # the API only queues: nothing in this process picks the job up
        still = client.get(f"/v1/analytics/jobs/{queued.json()['id']}").json()
        assert still["status"] == "queued" and still["started_at"] is None
        assert run_once(sessions)["analytics_refreshes_run"] == 1
        progress_seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = client.get(f"/v1/analytics/jobs/{queued.json()['id']}").json()
            progress_seen.append(job["progress"])
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.02)
        yield Demo(client, sessions, tires, beauty, tires_token, beauty_token, job, progress_seen)
    engine.dispose()


def all_scores(demo: Demo, tenant) -> list[MemberScore]:
    with transaction(demo.sessions) as s:
        return list(s.scalars(select(MemberScore).where(MemberScore.tenant_id == tenant.id)))


def test_the_refresh_job_succeeds_with_progress_100_and_a_run(demo):
    job = demo.job
    assert job["status"] == "succeeded", job["message"]
    assert job["progress"] == 100 and job["run_id"].startswith("run_")
    assert job["started_at"] and job["finished_at"] >= job["started_at"]
    assert demo.progress_seen == sorted(demo.progress_seen)  # progress only moves forward
    assert len(set(demo.progress_seen)) > 2  # seen on its way, as the worker reported it
    run = demo.client.get(f"/v1/analytics/runs/{job['run_id']}").json()
    assert run["purchases"]["model"] == "bgnbd" and set(run["purchases"]["params"]) == {
        "r", "alpha", "a", "b"}
    assert run["purchases"]["log_likelihood"] < 0 and run["spend"]["model"] == "gg"
    assert run["holdout"]["customers"] > 20 and run["holdout"]["buckets"]
    assert run["clv_months"] == 12 and run["discount_rate"] == 0.01
    assert demo.client.get("/v1/analytics/runs").json()["data"][0]["id"] == job["run_id"]
    # the demo's spend is drawn per member around her own mean: Gamma-Gamma fits, and is served
    assert run["spend"]["degenerate"] == [] and run["spend"]["fallback"] is None, run["spend"]
    assert run["clv_basis"] == "gamma_gamma"
    assert all(v is not None and v > 0 for v in run["spend"]["standard_errors"].values())
    assert run["spend"]["params"]["q"] > 1


def test_every_member_with_a_paid_order_has_scores_and_no_one_else(demo):
    """Every buyer but those who said no to data analysis (their scores are dropped)."""
    with transaction(demo.sessions) as s:
        buyers = set(s.execute(text(f"SELECT DISTINCT member_id FROM orders WHERE {PAID}"),
                               {"t": demo.tires.id}).scalars())
        refused = set(s.execute(text(
            "SELECT id FROM members WHERE tenant_id = :t AND data_analysis = :no "
            "AND data_analysis_at IS NOT NULL"), {"t": demo.tires.id, "no": False}).scalars())
    scores = all_scores(demo, demo.tires)
    assert refused & buyers, "the demo has buyers who refused data analysis"
    assert {row.member_id for row in scores} == buyers - refused and len(buyers) > 100
    for row in scores:
        assert 0 <= row.p_alive <= 1 and row.expected_purchases_90d >= 0 and row.clv_minor >= 0
        assert 0 <= row.recency <= row.age and row.frequency >= 0


def test_a_members_scores_count_its_purchase_days(demo):
    member = max(all_scores(demo, demo.tires), key=lambda r: r.frequency).member_id
    with transaction(demo.sessions) as s:
        paid = s.execute(text(f"SELECT paid_at, paid_minor - refunded_minor FROM orders "
                              f"WHERE {PAID} AND member_id = :m"),
                         {"t": demo.tires.id, "m": member}).all()
    days = sorted({(at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at)).date()
                   for at, _ in paid})
    got = demo.client.get(f"/v1/analytics/members/{member}")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["member_id"] == member and body["unit"] == "day"
    assert body["clv_basis"] == "gamma_gamma"
    assert body["frequency"] == len(days) - 1
    assert body["recency"] == (days[-1] - days[0]).days
    assert body["clv"]["currency"] == "CNY" and Decimal(body["clv"]["amount"]) >= 0
    assert body["segment"] in ("champions", "loyal", "at_risk", "cant_lose", "potential",
                               "hibernating", "lost", "new")
    assert body["rfm"]["code"] == f"{body['rfm']['r']}{body['rfm']['f']}{body['rfm']['m']}"


def test_another_merchants_member_is_404(demo):
    beauty_member = all_scores(demo, demo.beauty)[0].member_id
    tires_member = all_scores(demo, demo.tires)[0].member_id
    r = demo.client.get(f"/v1/analytics/members/{beauty_member}")  # with the tires token
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == "https://haina.dev/problems/analytics-scores-not-found"
    other = demo.client.get(f"/v1/analytics/members/{tires_member}",
                            headers={"Authorization": f"Bearer {demo.beauty_token}"})
    assert other.status_code == 404
    assert demo.client.get("/v1/analytics/members/mem_nobody").status_code == 404
    # ... and each merchant's counts are its own
    counts = demo.client.get("/v1/analytics/segments").json()
    assert counts["members"] == len(all_scores(demo, demo.tires))


def test_segment_and_stage_counts_add_up_to_the_scored_members(demo):
    body = demo.client.get("/v1/analytics/segments").json()
    scores = all_scores(demo, demo.tires)
    assert body["run_id"] == demo.job["run_id"] and body["members"] == len(scores)
    assert {c["name"]: c["members"] for c in body["rfm_segments"]} == {
        **{c["name"]: 0 for c in body["rfm_segments"]}, **Counter(r.segment for r in scores)}
    assert {c["name"]: c["members"] for c in body["lifecycle_stages"]} == {
        **{c["name"]: 0 for c in body["lifecycle_stages"]}, **Counter(r.stage for r in scores)}


@pytest.mark.parametrize("rule", [
    {"p_alive_lt": 0.3, "clv_gt": "500.00"},
    {"segment_in": ["champions", "loyal"], "stage_in": ["active"]},
    {"expected_purchases_90d_gte": 0.5, "p_alive_gte": 0.5, "clv_lte": "20000"},
])
def test_a_saved_segment_lists_exactly_the_members_matching_its_rule(demo, rule):
    created = demo.client.post("/v1/analytics/segments",
                               json={"name": f"rule {sorted(rule.items())}", "rule": rule})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["id"].startswith("seg_") and segment["rule"] == rule

    def matches(row: MemberScore) -> bool:
        clv = Decimal(row.clv_minor) / 100
        checks = {
            "p_alive_lt": lambda v: row.p_alive < v, "p_alive_gte": lambda v: row.p_alive >= v,
            "clv_gt": lambda v: clv > Decimal(v), "clv_lte": lambda v: clv <= Decimal(v),
            "expected_purchases_90d_gte": lambda v: row.expected_purchases_90d >= v,
            "segment_in": lambda v: row.segment in v, "stage_in": lambda v: row.stage in v,
        }
        return all(checks[k](v) for k, v in rule.items())

    expected = {r.member_id for r in all_scores(demo, demo.tires) if matches(r)}
    assert expected, "the rule should select someone in the demo data"
    listed, cursor = [], None
    while True:
        page = demo.client.get(f"/v1/analytics/segments/{segment['id']}/members",
                               params={"limit": 7, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        body = page.json()
        listed += [m["member_id"] for m in body["data"]]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert len(listed) == len(set(listed)) and set(listed) == expected
    assert segment["members"] == len(expected)
    saved = demo.client.get("/v1/analytics/segments").json()["saved"]
    assert {"id": segment["id"], "members": len(expected)}.items() <= \
        next(s for s in saved if s["id"] == segment["id"]).items()
    # to_minor: the amount is compared in minor units exactly
    if "clv_gt" in rule:
        assert to_minor(rule["clv_gt"], "CNY") == 50000


@pytest.mark.parametrize(("body", "where"), [
    ({"name": "x", "rule": {}}, "at least one condition"),
    ({"name": "x", "rule": {"p_alive_lt": 1.5}}, "rule.p_alive_lt"),
    ({"name": "x", "rule": {"clv_gt": 500.5}}, "rule.clv_gt"),
    ({"name": "x", "rule": {"clv_gt": "1.001"}}, "more decimals than CNY"),
    ({"name": "x", "rule": {"segment_in": ["vip"]}}, "rule.segment_in.0"),
    ({"name": "x", "rule": {"stage_in": []}}, "rule.stage_in"),
    ({"name": "x", "rule": {"p_alive_gte": 0.6, "p_alive_lt": 0.4}}, "select no one"),
    ({"name": "x", "rule": {"p_alive_below": 0.3}}, "rule.p_alive_below"),
    ({"name": "  ", "rule": {"p_alive_lt": 0.3}}, "name"),
    ({"rule": {"p_alive_lt": 0.3}}, "name"),
])
def test_a_bad_segment_rule_is_a_422_problem_naming_the_field(demo, body, where):
    r = demo.client.post("/v1/analytics/segments", json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"] == "https://haina.dev/problems/validation-error"
    assert where in problem["detail"]


def test_a_segment_name_is_taken_once_and_deleting_frees_it(demo):
    body = {"name": "lapsed big spenders", "rule": {"stage_in": ["lapsed"], "clv_gt": "100"}}
    first = demo.client.post("/v1/analytics/segments", json=body)
    assert first.status_code == 201
    again = demo.client.post("/v1/analytics/segments", json=body)
    assert again.status_code == 409
    assert again.json()["type"] == "https://haina.dev/problems/analytics-segment-name-taken"
    seg_id = first.json()["id"]
    other = demo.client.get(f"/v1/analytics/segments/{seg_id}",
                            headers={"Authorization": f"Bearer {demo.beauty_token}"})
    assert other.status_code == 404
    assert demo.client.delete(f"/v1/analytics/segments/{seg_id}").status_code == 204
    assert demo.client.get(f"/v1/analytics/segments/{seg_id}/members").status_code == 404
    assert demo.client.post("/v1/analytics/segments", json=body).status_code == 201


def test_cohorts_add_up_to_a_direct_count_of_the_orders(demo):
    body = demo.client.get("/v1/analytics/cohorts").json()
    with transaction(demo.sessions) as s:
        members, revenue = s.execute(text(
            f"SELECT count(DISTINCT member_id), sum(paid_minor - refunded_minor) FROM orders "
            f"WHERE {PAID}"), {"t": demo.tires.id}).one()
        rows = s.execute(text(f"SELECT member_id, paid_at FROM orders WHERE {PAID}"),
                         {"t": demo.tires.id}).all()
    months: dict[str, set[str]] = {}
    first: dict[str, str] = {}
    for member, at in rows:
        at = at if isinstance(at, dt.datetime) else dt.datetime.fromisoformat(at)
        label = f"{at:%Y-%m}"
        months.setdefault(member, set()).add(label)
        first[member] = min(first.get(member, label), label)
    cohorts = body["cohorts"]
    assert sum(c["size"] for c in cohorts) == members
    assert Counter(first.values()) == {c["cohort"]: c["size"] for c in cohorts}
    cells = [m for c in cohorts for m in c["months"]]
    assert sum(m["active"] for m in cells) == sum(len(v) for v in months.values())
    total = sum(Decimal(m["revenue"]["amount"]) for m in cells)
    assert total == Decimal(revenue) / 100
    for c in cohorts:
        assert c["months"][0]["retention"] == 1.0 and c["months"][0]["active"] == c["size"]
        assert [m["months_since_first"] for m in c["months"]] == list(range(len(c["months"])))
        assert all(m["active"] == round(m["retention"] * c["size"]) for m in c["months"])


@pytest.mark.parametrize("name", ["cohort_heatmap", "p_alive_vs_recency", "clv_distribution",
                                  "holdout_fit"])
def test_charts_of_the_latest_run_are_png_and_svg(demo, name):
    png = demo.client.get(f"/v1/analytics/plots/{name}.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n") and len(png.content) > 5_000
    svg = demo.client.get(f"/v1/analytics/plots/{name}.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in svg.content[:2000]


def test_weekly_units_are_reported_as_weeks(demo):
    beauty = demo.client.get("/v1/analytics/segments",
                             headers={"Authorization": f"Bearer {demo.beauty_token}"}).json()
    run = demo.client.get(f"/v1/analytics/runs/{beauty['run_id']}",
                          headers={"Authorization": f"Bearer {demo.beauty_token}"}).json()
    assert run["unit"] == "week"
    member = all_scores(demo, demo.beauty)[0].member_id
    scores = demo.client.get(f"/v1/analytics/members/{member}",
                             headers={"Authorization": f"Bearer {demo.beauty_token}"}).json()
    assert scores["unit"] == "week" and scores["T"] <= 105  # two years of weeks
