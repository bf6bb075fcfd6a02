"""Rate limits per (app, merchant) and per staff token, shared by every API process through
the database; and the audit trail (issue 10)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from oauth_flow import install, make_app, make_staff
from support import make_tenant

from haina.api import create_app
from haina.core.config import Settings
from haina.core.db import transaction
from haina.core.ratelimit import DatabaseBuckets, MemoryBuckets, Plan
from haina.platform import service

PLANS = {"standard": (20.0, 40), "tiny": (0.01, 3), "staff": (1000.0, 2000)}


def _app(engine, backend="database"):
    return create_app(Settings(database_url=str(engine.url), token_cache_seconds=0,
                               rate_limit_backend=backend, rate_limit_plans=PLANS),
                      engine=engine)


@pytest.fixture
def tiny_app_token(engine, sessions):
    """An app on the tiny plan (a burst of 3, one more every 100 s: no refill within a test, however slow the machine), installed by acme."""
    make_tenant(sessions, "acme")
    make_staff(sessions, "acme", "owner@acme.example")
    client_id, secret = make_app(sessions)
    with transaction(sessions) as s:
        service.set_app_plan(s, client_id, "tiny", list(PLANS))
    with TestClient(_app(engine), base_url="http://localhost") as browser:
        token = install(browser, sessions, client_id, secret, "owner@acme.example")
    return token["access_token"], client_id


def test_a_bucket_is_shared_by_every_api_process(engine, sessions, tiny_app_token):
    token, _ = tiny_app_token
    bearer = {"Authorization": f"Bearer {token}"}
    # two API processes' worth of apps: separate bucket stores, one database
    with TestClient(_app(engine)) as one, TestClient(_app(engine)) as two:
        answers = [(one if i % 2 else two).get("/v1/orders", headers=bearer) for i in range(5)]
    codes = [r.status_code for r in answers]
    assert codes == [200, 200, 200, 429, 429]
    assert [r.headers["ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0", "0"]
    assert all(r.headers["ratelimit-limit"] == "3" for r in answers)
    refused = answers[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/rate-limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert int(refused.headers["ratelimit-reset"]) >= 2


def test_each_merchant_has_its_own_bucket_for_an_app(engine, sessions, tiny_app_token):
    token, client_id = tiny_app_token
    with TestClient(_app(engine)) as c:
        for _ in range(3):
            assert c.get("/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 429
    # the same app at another merchant: another bucket, full
    make_tenant(sessions, "other")
    make_staff(sessions, "other", "owner@other.example")
    with TestClient(_app(engine), base_url="http://localhost") as browser:
        secret = _new_secret(sessions, client_id)
        other = install(browser, sessions, client_id, secret, "owner@other.example")
        r = browser.get("/v1/orders", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "2"


def _new_secret(sessions, client_id: str) -> str:
    """A fresh client secret for the app (tests only know it at registration)."""
    from haina.platform.apps import SECRET_PREFIX, _digest
    from haina.platform.models import App
    secret = SECRET_PREFIX + "test-" + client_id
    with transaction(sessions) as s:
        s.get(App, client_id).secret_hash = _digest(secret)
    return secret


def test_staff_tokens_have_their_plan_and_headers(engine, sessions):
    _, token = make_tenant(sessions, "acme")
    with TestClient(_app(engine)) as c:
        r = c.get("/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.headers["ratelimit-limit"] == "2000"
    assert r.headers["ratelimit-remaining"] == "1999"


@pytest.mark.parametrize("store", ["memory", "database"])
def test_the_bucket_refills_at_its_rate_and_never_above_its_burst(engine, store):
    buckets = MemoryBuckets() if store == "memory" else \
        DatabaseBuckets(engine.url.render_as_string(hide_password=False))
    plan = Plan(rate=2.0, burst=4)
    t0 = 1_000_000.0
    taken = [buckets.take("ten_x", "app_y", plan, now=t0).allowed for _ in range(5)]
    assert taken == [True, True, True, True, False]
    assert buckets.take("ten_x", "app_y", plan, now=t0 + 0.25).allowed is False  # 0.5 token
    half = buckets.take("ten_x", "app_y", plan, now=t0 + 0.5)  # 1 token back, taken
    assert half.allowed and half.remaining == 0
    full = buckets.take("ten_x", "app_y", plan, now=t0 + 100)  # capped at the burst
    assert full.allowed and full.remaining == 3 and full.reset == 1
    refused = [buckets.take("ten_x", "app_y", plan, now=t0 + 100) for _ in range(4)][-1]
    assert not refused.allowed and refused.retry_after == 1
    assert buckets.take("ten_other", "app_y", plan, now=t0 + 100).allowed  # its own bucket
    if store == "database":
        buckets.dispose()


def test_every_write_names_its_actor_in_the_audit_trail(engine, sessions):
    make_tenant(sessions, "acme")
    make_staff(sessions, "acme", "owner@acme.example")
    client_id, secret = make_app(sessions, scopes="members:write")
    with transaction(sessions) as s:
        staff_token = service.create_token(s, "acme", "*")
    staff = {"Authorization": f"Bearer {staff_token.token}"}
    with TestClient(_app(engine), base_url="http://localhost") as c:
        app_token = install(c, sessions, client_id, secret, "owner@acme.example",
                            scope="members:write")["access_token"]
        by_staff = c.post("/v1/members", json={"name": "Li Lei"}, headers=staff)
        assert by_staff.status_code == 201, by_staff.text
        by_app = c.post("/v1/members", json={"name": "Han Meimei"},
                        headers={"Authorization": f"Bearer {app_token}"})
        assert by_app.status_code == 201, by_app.text
        events = c.get("/v1/audit-events", headers=staff).json()["data"]
        who = {e["subject_id"]: e["actor"] for e in events if e["type"] == "member.created"}
        assert who == {by_staff.json()["id"]: {"type": "staff_token", "id": staff_token.id},
                       by_app.json()["id"]: {"type": "app", "id": client_id}}
        installed = next(e for e in events if e["type"] == "app.installed")
        assert installed["actor"]["type"] == "staff"  # the owner who consented
        only_app = c.get("/v1/audit-events", params={"actor_type": "app"}, headers=staff).json()
        assert [e["subject_id"] for e in only_app["data"]] == [by_app.json()["id"]]
        assert all(e["actor"] for e in events)
        # the platform's own work (the command line made the merchant) is no one's write
        made = c.get("/v1/events", params={"type": "tenant.created"}, headers=staff).json()
        assert made["data"][0]["actor"] is None
        assert "tenant.created" not in {e["type"] for e in events}


def test_an_upload_is_limited_and_audited_like_any_request(engine, sessions):
    """The media upload is an async endpoint (it reads the body first): admitted all the same."""
    _, token = make_tenant(sessions, "acme")
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000154a24f5d00000000"
                        "49454e44ae426082")
    staff = {"Authorization": f"Bearer {token}"}
    with TestClient(_app(engine)) as c:
        p = c.post("/v1/products", headers=staff, json={
            "sku": "P-1", "title": "Tire", "price": {"amount": "1.00", "currency": "CNY"}}).json()
        r = c.post(f"/v1/products/{p['id']}/media", headers=staff,
                   files={"file": ("a.png", png, "image/png")})
        assert r.status_code == 201, r.text
        assert r.headers["ratelimit-limit"] == "2000"
        trail = c.get("/v1/audit-events", params={"type": "product.media_added"},
                      headers=staff).json()["data"]
        assert len(trail) == 1 and trail[0]["actor"]["type"] == "staff_token"


def _db_buckets(engine, **lease) -> DatabaseBuckets:
    return DatabaseBuckets(engine.url.render_as_string(hide_password=False), **lease)


def test_a_busy_credential_leases_tokens_instead_of_a_statement_per_request(engine):
    """Two processes' stores, one bucket of 1,000: each store's first lease takes 32 tokens,
    the next ones (each spent within half its second) twice as many, cut to 1/16 of what the
    bucket holds then: 200 requests cost 6 statements, not 200."""
    one, two = _db_buckets(engine), _db_buckets(engine)
    plan = Plan(rate=0.001, burst=1000)
    t0 = 2_000_000.0
    decisions = [(one if i % 2 else two).take("ten_x", "app_y", plan, now=t0 + i / 1000)
                 for i in range(200)]
    assert all(d.allowed for d in decisions)
    assert (one.statements, two.statements) == (3, 3)
    assert all(32 < lease.full <= 1000 // 16 for store in (one, two)
               for lease in store._leases.values())
    # what the bucket holds plus what the two leases hold is exactly what was not spent
    with engine.connect() as conn:
        shared = conn.exec_driver_sql("SELECT tokens FROM rate_buckets").scalar_one()
    held = sum(lease.tokens for store in (one, two) for lease in store._leases.values())
    assert shared + held == pytest.approx(1000 - 200, abs=0.5)
    for store in (one, two):
        store.dispose()


def test_a_lease_ends_after_its_time_and_its_leftover_is_dropped(engine):
    store = _db_buckets(engine, lease_seconds=1.0)
    plan = Plan(rate=0.001, burst=1000)
    t0 = 3_000_000.0
    assert store.take("ten_x", "app_y", plan, now=t0).allowed  # leases 32, spends 1
    assert store.take("ten_x", "app_y", plan, now=t0 + 0.5).allowed
    assert store.statements == 1
    late = store.take("ten_x", "app_y", plan, now=t0 + 1.5)  # the lease has ended
    assert late.allowed and store.statements == 2
    # 32 + 32 taken from the bucket (the first lease's 30 left over are gone, not returned)
    assert late.remaining == 1000 - 64 + 31
    store.dispose()


def test_leases_never_overdraw_a_bucket_under_concurrency(engine):
    """Four stores (four API processes), two threads each, 400 requests at a bucket of 100
    that does not refill: never more than 100 allowed, and no more lost to unspent leases
    than the four stores can hold (6 tokens each: 1/16 of 100)."""
    import threading

    stores = [_db_buckets(engine) for _ in range(4)]
    plan = Plan(rate=1e-6, burst=100)
    allowed = []
    lock = threading.Lock()

    def hammer(store: DatabaseBuckets) -> None:
        mine = sum(store.take("ten_x", "app_y", plan).allowed for _ in range(50))
        with lock:
            allowed.append(mine)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in stores for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 100 - 4 * 6 <= sum(allowed) <= 100
    held = sum(lease.tokens for s in stores for lease in s._leases.values())
    assert sum(allowed) + held == 100
    for store in stores:
        store.dispose()


def test_a_token_is_taken_without_io_only_from_a_live_lease(engine):
    """``take_nowait`` (what the event loop may call) spends a token of this process's live
    lease and runs no statement; with no lease, a spent one or an ended one it says None
    (only ``take`` can decide then) and takes nothing."""
    store = _db_buckets(engine, lease_seconds=1.0)
    plan = Plan(rate=0.001, burst=1000)
    t0 = 4_000_000.0
    assert store.take_nowait("ten_x", "app_y", plan, now=t0) is None  # no lease yet
    assert store.statements == 0
    first = store.take("ten_x", "app_y", plan, now=t0)  # leases 32, spends 1
    assert first.allowed and store.statements == 1
    spent = [store.take_nowait("ten_x", "app_y", plan, now=t0 + 0.1) for _ in range(31)]
    assert all(d is not None and d.allowed for d in spent) and store.statements == 1
    assert [d.remaining for d in spent[-2:]] == [first.remaining - 30, first.remaining - 31]
    assert store.take_nowait("ten_x", "app_y", plan, now=t0 + 0.2) is None  # lease spent
    assert store.take("ten_x", "app_y", plan, now=t0 + 0.3).allowed  # a new lease
    assert store.statements == 2
    assert store.take_nowait("ten_x", "app_y", plan, now=t0 + 1.4) is None  # it ended
    assert store.take_nowait("ten_x", "other", plan, now=t0 + 0.3) is None  # per bucket
    store.dispose()
    memory = MemoryBuckets()  # the memory store always decides at once
    tiny = Plan(rate=0.001, burst=1)
    allowed = memory.take_nowait("ten_x", "app_y", tiny, now=t0)
    assert allowed is not None and allowed.allowed
    refused = memory.take_nowait("ten_x", "app_y", tiny, now=t0)
    assert refused is not None and not refused.allowed


def test_a_lease_running_low_is_renewed_ahead_once(engine):
    """Spending from the lease on the event loop asks, once, for the next lease to be taken
    ahead in another thread when a quarter of it is left; that job adds the new lease's
    tokens (more: this one was spent fast) to this one (one UPSERT), so the loop keeps
    finding tokens. A small bucket's
    leases of one token are never renewed ahead (they are taken exactly, one at a time)."""
    store = _db_buckets(engine, lease_seconds=60.0)
    plan = Plan(rate=0.001, burst=1000)
    jobs: list = []
    assert store.take("ten_x", "app_y", plan).allowed  # leases 32, 31 left
    spent = [store.take_nowait("ten_x", "app_y", plan, renew=jobs.append) for _ in range(24)]
    assert all(d is not None and d.allowed for d in spent)
    assert len(jobs) == 1 and store.statements == 1  # asked once, at 7 left; nothing run yet
    jobs[0]()
    assert store.statements == 2
    [lease] = store._leases.values()
    # spent within half its time: the next lease is twice as big, cut to 1/16 of the 968 left
    assert lease.tokens == 7 + 60 and not lease.renewing
    with engine.connect() as conn:
        shared = conn.exec_driver_sql("SELECT tokens FROM rate_buckets").scalar_one()
    assert shared + lease.tokens == pytest.approx(1000 - 25, abs=0.5)
    small = Plan(rate=0.001, burst=10)  # 1/16 of 10: leases of one token
    assert store.take("ten_x", "small", small).allowed
    assert store.take_nowait("ten_x", "small", small, renew=jobs.append) is None
    assert len(jobs) == 1
    store.dispose()


def test_a_busy_credentials_leases_grow_to_the_cap_and_a_slow_ones_shrink_back(engine):
    """A lease spent within half its time makes the next twice as big (32, 64, … up to the
    cap of 1,024, within 1/16 of the bucket): 5,000 requests in a second at a big bucket
    cost 9 statements, not 157; one that lapses more than half unspent halves the next
    (down to 32 again). No token is lost or made: the bucket and the lease add up."""
    store = _db_buckets(engine, lease_seconds=1.0)
    plan = Plan(rate=0.001, burst=1_000_000)
    t0 = 5_000_000.0
    assert all(store.take("ten_x", "busy", plan, now=t0 + i / 10_000).allowed
               for i in range(5_000))
    assert store.statements == 9  # 32 + 64 + … + 512 + 1,024 × 4 ≥ 5,000
    [lease] = store._leases.values()
    assert lease.full == 1024
    with engine.connect() as conn:
        shared = conn.exec_driver_sql("SELECT tokens FROM rate_buckets").scalar_one()
    assert shared + lease.tokens == pytest.approx(1_000_000 - 5_000, abs=0.5)
    sizes = []
    for second in range(1, 8):  # then one request a second: each lease lapses nearly whole
        store.take("ten_x", "busy", plan, now=t0 + 1 + second)
        sizes.append(store._leases[("ten_x", "busy")].full)
    assert sizes == [1024, 512, 256, 128, 64, 32, 32]
    store.dispose()
