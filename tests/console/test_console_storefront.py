"""The console's storefront page over HTTP: an owner makes a publishable key (shown whole only
on the answering page) with its web origins, revokes it; the sandbox inbox shows the codes a
sandbox key sent, to staff, not to read-only accounts; staff cannot make or revoke keys, a
post without the CSRF token changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from console_support import form_token
from sqlalchemy import text

from haina.core.db import transaction


def test_an_owner_makes_and_revokes_a_key_and_staff_read_the_sandbox_inbox(browser_as, shop,
                                                                           sessions, app):
    from fastapi.testclient import TestClient
    owner = browser_as("owner")
    page = owner.get("/console/storefront").text
    assert "No publishable keys yet." in page
    token = form_token(page)
    r = owner.post("/console/storefront/keys", data={
        "csrf_token": token, "name": "Test shop", "channel": "web", "sandbox": "on",
        "allowed_origins": "https://Shop.example.com/\nhttp://localhost:5173"})
    assert r.status_code == 200 and "Key created" in r.text, r.text[:2000]
    key = re.search(r'<code id="key">(pk_[^<]+)</code>', r.text).group(1)
    assert r.headers["cache-control"] == "no-store"
    page = owner.get("/console/storefront").text
    assert "Test shop" in page and "https://shop.example.com" in page
    assert key not in page and f"{key[:6]}…{key[-4:]}" in page  # whole only once
    assert "No codes sent yet." in page
    with TestClient(app) as buyer:  # a test app signs a buyer in through the sandbox key
        sent = buyer.post("/store/v1/sign-in/codes", json={"phone": "138 0013 8000"},
                          headers={"X-Publishable-Key": key})
        assert sent.status_code == 202, sent.text
    staff = browser_as("staff")
    page = staff.get("/console/storefront").text
    code = re.search(r"<td>13800138000</td><td><code>(\d{6})</code>", page)
    assert code and "not used" in page
    assert "/console/storefront/keys\"" not in page and "/revoke\"" not in page
    with transaction(sessions) as s:
        key_id = s.execute(text("SELECT id FROM storefront_keys")).scalar_one()
    for path in ("/console/storefront/keys", f"/console/storefront/keys/{key_id}/revoke"):
        r = staff.post(path, data={"csrf_token": form_token(page), "name": "x",
                                   "channel": "app"})
        assert r.status_code == 403, path
    viewer = browser_as("read-only")
    page = viewer.get("/console/storefront").text
    assert code.group(1) not in page and "shown to staff and owners" in page
    bad = owner.post("/console/storefront/keys", data={
        "csrf_token": token, "name": "Bad", "channel": "web", "allowed_origins": "shop.example"})
    assert bad.status_code == 422 and "is not an origin" in bad.text
    assert owner.post(f"/console/storefront/keys/{key_id}/revoke").status_code == 403  # no CSRF
    r = owner.post(f"/console/storefront/keys/{key_id}/revoke", data={"csrf_token": token},
                   follow_redirects=False)
    assert r.status_code == 303
    page = owner.get(r.headers["location"]).text
    assert "Test shop is revoked" in page and "/revoke\"" not in page
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*), count(revoked_at) FROM storefront_keys")).one() \
            == (1, 1)
    with TestClient(app) as buyer:
        assert buyer.get("/store/v1/products", headers={"X-Publishable-Key": key}) \
            .status_code == 401
    zh = owner.get("/console/storefront", params={"lang": "zh"}).text
    assert "可发布密钥" in zh or "密钥" in zh
