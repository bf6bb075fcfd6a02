"""The console's qualification files of cross-border brands over HTTP: the list with each
file's status and latest decision (filtered by status), a file's page with its authorisation,
documents and every submission and decision (who, when, why); another merchant's file is not
found; the pages offer no decision (reviews are platform staff's). On SQLite and PostgreSQL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from haina.core.db import transaction
from haina.crossborder import service as crossborder
from haina.platform import service as platform

BRAND = {"name": "Maison Lumière", "origin_country": "FR", "owner": "Lumière SAS",
         "agency_name": "Hangzhou Cross-border Services",
         "authorisation": {"grantor": "Lumière SAS", "grantee": "Acme", "reference": "AUT-2026-1",
                           "valid_from": "2026-01-01", "valid_until": "2099-12-31",
                           "url": "https://docs.agency.example/aut-2026-1.pdf"},
         "documents": [{"kind": "trademark_registration", "title": "TM 12345",
                        "reference": "TM12345"}]}


def test_qualification_files_with_their_decisions(browser_as, client, sessions, app):
    filed = client.post("/v1/crossborder/brands", json=BRAND)
    assert filed.status_code == 201, filed.text
    other = client.post("/v1/crossborder/brands", json={**BRAND, "name": "Nordlys"})
    brand, second = filed.json()["id"], other.json()["id"]
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        crossborder.review_brand(s, tenant, brand, "approve", "documents verified",
                                 "li.na@haina")
        crossborder.review_brand(s, tenant, second, "reject", "authorisation unsigned",
                                 "li.na@haina")
    viewer = browser_as("read-only")
    assert "/console/crossborder/brands" in viewer.get("/console/crossborder").text
    page = viewer.get("/console/crossborder/brands").text
    assert "Maison Lumière" in page and "Nordlys" in page and "authorisation unsigned" in page
    assert "status-approved" in page and "status-rejected" in page
    rejected = viewer.get("/console/crossborder/brands", params={"status": "rejected"}).text
    assert "Nordlys" in rejected and "Maison Lumière" not in rejected
    page = viewer.get(f"/console/crossborder/brands/{brand}").text
    for shown in ("AUT-2026-1", "2099-12-31", "https://docs.agency.example/aut-2026-1.pdf",
                  "trademark registration", "TM12345", "documents verified",
                  "platform:li.na@haina", "submitted", "approved"):
        assert shown in page, shown
    assert "<form method=\"post\"" not in page.split("</header>")[1]  # nothing to decide here
    zh = viewer.get(f"/console/crossborder/brands/{second}", params={"lang": "zh"}).text
    assert "已驳回" in zh and "资质" in zh
    from support import make_tenant
    _, token = make_tenant(sessions, "globex")
    with TestClient(app) as them:
        them.headers["Authorization"] = f"Bearer {token}"
        theirs = them.post("/v1/crossborder/brands", json=BRAND).json()["id"]
    r = viewer.get(f"/console/crossborder/brands/{theirs}")
    assert r.status_code == 404 and "Maison" not in r.text
