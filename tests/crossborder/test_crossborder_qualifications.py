"""Issue 14, qualified merchants: a foreign brand's qualification file submitted by the
merchant or its operating agency's app, reviewed by platform staff (the CLI) or by a
certified app the staff delegated reviews to, every step recorded (who, when, why); a
cross-border product is listed only under an approved brand, and a revoked brand's products
are unlisted at once. SQLite and PostgreSQL."""

from __future__ import annotations

from crossborder_support import BRAND, FACTS, order, product, refused
from support import app_token, run_cli

from haina.core.db import transaction
from haina.core.errors import Invalid
from haina.crossborder import service
from haina.platform import service as platform


def _app(sessions, token: str) -> str:
    from sqlalchemy import select

    from haina.platform.models import OAuthToken
    from haina.platform.oauth import digest
    with transaction(sessions) as s:
        return s.scalar(select(OAuthToken.app_id).where(OAuthToken.token_hash == digest(token)))


def test_a_product_is_listed_only_under_an_approved_brand_and_unlisted_when_revoked(
        scanned, db_url, monkeypatch, capsys):
    filed = scanned.post("/v1/crossborder/brands", headers={"Idempotency-Key": "b1"},
                         json=BRAND)
    assert filed.status_code == 201, filed.text
    brand = filed.json()
    assert brand["status"] == "submitted" and brand["agency_app_id"] is None
    assert [d["action"] for d in brand["decisions"]] == ["submitted"]
    assert brand["decisions"][0]["actor"].startswith("merchant:")
    refused(scanned.post("/v1/crossborder/brands", json=BRAND), 409, "brand-exists")
    p = product(scanned, facts=None)
    at = f"/v1/crossborder/products/{p['id']}"
    got = refused(scanned.put(at, json={**FACTS, "brand_id": brand["id"]}), 409,
                  "brand-not-qualified")
    assert got["brand_status"] == "submitted"
    refused(scanned.put(at, json=FACTS), 409, "brand-not-qualified")  # no brand named
    assert scanned.put(at, json={**FACTS, "enabled": False}).status_code == 200  # not listed
    # platform staff approve it from the command line; the decision is recorded
    queue = run_cli(db_url, ["crossborder", "brands", "queue"], monkeypatch, capsys)
    assert queue[0] == 0 and brand["id"] in queue[1]
    code, out, _ = run_cli(db_url, ["crossborder", "brands", "review", "acme", brand["id"],
                                    "approve", "--reason", "authorisation verified with the "
                                    "owner", "--by", "li.na@haina"], monkeypatch, capsys)
    assert (code, out.strip()) == (0, f"Maison Lumière ({brand['id']}) is approved")
    code, _, err = run_cli(db_url, ["crossborder", "brands", "review", "acme", brand["id"],
                                    "approve", "--reason", "again", "--by", "x"],
                           monkeypatch, capsys)
    assert code == 1 and "cannot become approved" in err
    listed = scanned.put(at, json={**FACTS, "brand_id": brand["id"]})
    assert listed.status_code == 200 and listed.json()["brand_id"] == brand["id"]
    assert order(scanned).status_code == 201
    # revoked: the product is unlisted at once, orders are refused, the file can be filed again
    with transaction(scanned.app.state.sessionmaker) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        revoked = service.review_brand(s, tenant, brand["id"], "revoke",
                                       "authorisation withdrawn by the owner", "li.na@haina")
    assert revoked.status == "revoked"
    assert scanned.get(at).json()["enabled"] is False
    refused(order(scanned), 422, "not-crossborder-product")
    again = scanned.post(f"/v1/crossborder/brands/{brand['id']}/submissions",
                         json={**BRAND, "name": "ignored: the name stays"})
    assert again.status_code == 200, again.text
    history = scanned.get(f"/v1/crossborder/brands/{brand['id']}").json()
    assert history["status"] == "submitted" and history["name"] == BRAND["name"]
    assert [(d["action"], d["actor"], d["reason"]) for d in history["decisions"]] == [
        ("submitted", brand["decisions"][0]["actor"], None),
        ("approved", "platform:li.na@haina", "authorisation verified with the owner"),
        ("revoked", "platform:li.na@haina", "authorisation withdrawn by the owner"),
        ("submitted", brand["decisions"][0]["actor"], None)]
    events = scanned.get("/v1/events", params={"limit": 200}).json()["data"]
    assert [e["type"] for e in events if e["type"].startswith("brand.")
            and e["subject_id"] == brand["id"]] == [
        "brand.submitted", "brand.approved", "brand.revoked", "brand.submitted"][::-1]
    assert [b["id"] for b in scanned.get("/v1/crossborder/brands",
                                         params={"status": "submitted"}).json()["data"]] \
        == [brand["id"]]


def test_a_delegated_certified_agency_reviews_other_files_but_never_its_own(
        scanned, sessions):
    scopes = "crossborder:read crossborder:write"
    agency = app_token(sessions, "acme", scopes)
    broker = app_token(sessions, "acme", scopes)
    agency_id, broker_id = _app(sessions, agency), _app(sessions, broker)
    as_agency = {"Authorization": f"Bearer {agency}"}
    as_broker = {"Authorization": f"Bearer {broker}"}
    # the agency's app files for the brand it operates: it is recorded as the agency
    r = scanned.post("/v1/crossborder/brands", headers=as_agency,
                     json={**BRAND, "agency_app_id": broker_id})
    refused(r, 422, "agency-mismatch")
    mine = scanned.post("/v1/crossborder/brands", headers=as_agency, json=BRAND).json()
    assert mine["agency_app_id"] == agency_id and mine["submitted_by"] == f"app:{agency_id}"
    theirs = scanned.post("/v1/crossborder/brands", json={
        **BRAND, "name": "Kirei", "origin_country": "JP", "agency_app_id": broker_id}).json()
    decision = {"decision": "approve", "reason": "trademark and authorisation checked"}
    # a merchant never approves its own files; an app only once delegated, certified
    refused(scanned.post(f"/v1/crossborder/brands/{mine['id']}/decisions", json=decision),
            403, "reviewer-required")
    refused(scanned.post(f"/v1/crossborder/brands/{mine['id']}/decisions", headers=as_broker,
                         json=decision), 403, "reviewer-required")
    with transaction(sessions) as s:
        try:
            service.delegate_review(s, broker_id, "li.na@haina", "licensed broker")
            raise AssertionError("an uncertified app was delegated reviews")
        except Invalid as exc:
            assert exc.slug == "not-certified"
    with transaction(sessions) as s:
        for app_id in (agency_id, broker_id):
            platform.certify_app(s, app_id, "customs-broker", "customs registration 3301",
                                 "platform")
            service.delegate_review(s, app_id, "li.na@haina", "licensed broker")
    refused(scanned.post(f"/v1/crossborder/brands/{mine['id']}/decisions", headers=as_agency,
                         json=decision), 403, "own-file")
    refused(scanned.post(f"/v1/crossborder/brands/{theirs['id']}/decisions", headers=as_broker,
                         json=decision), 403, "own-file")
    ok = scanned.post(f"/v1/crossborder/brands/{mine['id']}/decisions", headers=as_broker,
                      json=decision)
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["decided_by"]) == ("approved", f"app:{broker_id}")
    rejected = scanned.post(f"/v1/crossborder/brands/{theirs['id']}/decisions",
                            headers=as_agency, json={"decision": "reject",
                                                     "reason": "authorisation unsigned"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["reason"] == \
        "authorisation unsigned"
    refused(scanned.post(f"/v1/crossborder/brands/{theirs['id']}/decisions", headers=as_agency,
                         json=decision), 409, "invalid-state")
    with transaction(sessions) as s:
        service.withdraw_delegation(s, broker_id)
    refused(scanned.post(f"/v1/crossborder/brands/{mine['id']}/decisions", headers=as_broker,
                         json={"decision": "revoke", "reason": "x"}), 403, "reviewer-required")


def test_bad_files_are_refused(scanned, sessions):
    expired = {**BRAND["authorisation"], "valid_from": "2020-01-01", "valid_until": "2021-01-01"}
    refused(scanned.post("/v1/crossborder/brands", json={**BRAND, "authorisation": expired}),
            422, "authorisation-expired")
    refused(scanned.post("/v1/crossborder/brands", json={**BRAND, "agency_app_id": "app_nope"}),
            422, "agency-not-installed")
    no_place = {**BRAND, "documents": [{"kind": "other", "title": "x"}]}
    assert scanned.post("/v1/crossborder/brands", json=no_place).status_code == 422
    backwards = {**BRAND["authorisation"], "valid_from": "2027-01-01", "valid_until": "2026-01-01"}
    assert scanned.post("/v1/crossborder/brands",
                        json={**BRAND, "authorisation": backwards}).status_code == 422
    assert scanned.get("/v1/crossborder/brands/brand_nope").status_code == 404
    assert scanned.post("/v1/crossborder/brands/brand_nope/submissions",
                        json=BRAND).status_code == 404


def test_demo_beauty_is_a_qualified_foreign_brand_with_declared_orders(sessions):
    from rich.console import Console
    from sqlalchemy import text

    from haina.demo import load_demo
    load_demo(sessions, quick=True, only=("demo-beauty",), members=5, crossborder=True,
              console=Console(quiet=True))
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "demo-beauty")
        brands = {b.name: b for b in service.list_brands(s, tenant).data}
        lumiere = brands["Maison Lumière"]
        assert lumiere.status == "approved" and brands["Kirei Tokyo"].status == "submitted"
        assert [d.action for d in lumiere.decisions] == ["submitted", "approved"]
        assert lumiere.submitted_by == f"app:{lumiere.agency_app_id}"
        assert lumiere.decided_by.startswith("app:") and lumiere.decided_by != \
            lumiere.submitted_by
        t = {"t": tenant.id}
        assert s.execute(text("SELECT count(*) FROM crossborder_products WHERE tenant_id = :t "
                              "AND enabled AND brand_id = :b"), {**t, "b": lumiere.id}
                         ).scalar() == 5
        statuses = sorted(s.execute(text("SELECT status FROM crossborder_declarations "
                                         "WHERE tenant_id = :t"), t).scalars())
        assert statuses == ["ready", "released", "released", "released", "released"]
        assert s.execute(text("SELECT count(*) FROM crossborder_orders WHERE tenant_id = :t"),
                         t).scalar() == 6
        assert set(s.execute(text("SELECT status FROM crossborder_tracking WHERE "
                                   "tenant_id = :t"), t).scalars()) == {"delivered"}
        assert service.get_customs_profile(s, tenant).agent_code == "3302980123"
