"""The console's staff accounts and audit trail over HTTP: an owner invites someone (the first
password shown once signs them in), changes a role and disables and enables an account (its
session ends at once), never their own; staff and read-only accounts are refused every such
write; the audit trail lists each change with who made it, filtered by actor, type and day.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from console_support import form_token, sign_in
from fastapi.testclient import TestClient

from haina.core.db import transaction
from haina.platform import service as platform


def test_an_owner_manages_staff_and_the_audit_trail_names_who_did_what(browser_as, shop, app,
                                                                       client, sessions):
    owner = browser_as("owner")
    page = owner.get("/console/staff").text
    token = form_token(page)
    r = owner.post("/console/staff", data={"csrf_token": token, "email": "Clerk@Acme.example",
                                           "role": "staff"})
    assert r.status_code == 201 and "<h1>Account created</h1>" in r.text, r.text[-2000:]
    password = re.search(r'<code id="password">([^<]+)</code>', r.text).group(1)
    for bad, code in (({"email": "clerk@acme.example", "role": "staff"}, 409),
                      ({"email": "not an email", "role": "staff"}, 422),
                      ({"email": "x@acme.example", "role": "boss"}, 422)):
        assert owner.post("/console/staff", data={"csrf_token": token, **bad}).status_code \
            == code, bad
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        accounts = {a.email: a for a in platform.list_staff(s, tenant)}
    clerk_id = accounts["clerk@acme.example"].id
    with TestClient(app) as clerk:
        sign_in(clerk, "clerk@acme.example", password)  # the password shown signs them in
        assert "/console/staff/" not in clerk.get("/console/staff").text  # sees, no forms
        r = clerk.post(f"/console/staff/{accounts['owner@acme.example'].id}/role",
                       data={"csrf_token": form_token(clerk.get("/console").text),
                             "role": "read-only"})
        assert r.status_code == 403 and "Ask an owner" in r.text
        r = owner.post(f"/console/staff/{clerk_id}/role", follow_redirects=False,
                       data={"csrf_token": token, "role": "read-only"})
        assert r.status_code == 303
        assert "Role changed: clerk@acme.example: read-only." in owner.get(
            r.headers["location"]).text
        assert "can look but not change anything" in clerk.get("/console/coupons").text
        r = owner.post(f"/console/staff/{clerk_id}/state", follow_redirects=False,
                       data={"csrf_token": token, "disabled": "true"})
        assert "is disabled: they can no longer sign in" in owner.get(
            r.headers["location"]).text
        assert 'type="password"' in clerk.get("/console").text  # the session ended
        refused = clerk.post("/login", data={"email": "clerk@acme.example",
                                             "password": password, "next": "/console",
                                             "csrf_token": form_token(clerk.get(
                                                 "/console").text)}, follow_redirects=False)
        assert refused.status_code != 303
        r = owner.post(f"/console/staff/{clerk_id}/state", follow_redirects=False,
                       data={"csrf_token": token, "disabled": "false"})
        assert "clerk@acme.example can sign in again." in owner.get(r.headers["location"]).text
        sign_in(clerk, "clerk@acme.example", password)
    own = accounts["owner@acme.example"].id
    for path, data in ((f"/console/staff/{own}/role", {"role": "staff"}),
                       (f"/console/staff/{own}/state", {"disabled": "true"})):
        r = owner.post(path, data={"csrf_token": token, **data})
        assert r.status_code == 409 and "ask another owner" in r.text
    viewer = browser_as("read-only")
    vtoken = form_token(viewer.get("/console/staff").text)
    for path, data in (("/console/staff", {"email": "v@acme.example", "role": "owner"}),
                       (f"/console/staff/{clerk_id}/role", {"role": "owner"}),
                       (f"/console/staff/{clerk_id}/state", {"disabled": "true"})):
        r = viewer.post(path, data={"csrf_token": vtoken, **data})
        assert r.status_code == 403 and "read-only" in r.text, path
    from support import make_tenant
    make_tenant(sessions, "globex")
    with transaction(sessions) as s:
        theirs = platform.create_staff(s, "globex", "boss@globex.example", "a long password",
                                       "owner").id
    r = owner.post(f"/console/staff/{theirs}/role", data={"csrf_token": token, "role": "staff"})
    assert r.status_code == 404 and "globex" not in owner.get("/console/staff").text
    with transaction(sessions) as s:
        assert platform.list_staff(s, tenant)[-1].role == "read-only"  # the viewer, unchanged
        clerk_now = [a for a in platform.list_staff(s, tenant) if a.id == clerk_id][0]
        assert clerk_now.role == "read-only" and clerk_now.disabled_at is None

    # the audit trail: the owner's changes, and the API token's
    trail = owner.get("/console/audit").text
    for shown in ("staff.created", "staff.role_changed", "staff.disabled", "staff.enabled",
                  "owner@acme.example", "staff account", "staff token", "order.created",
                  f"/console/orders/{shop['order']['id']}", "previous_role&#34;: &#34;staff"):
        assert shown in trail, shown
    mine = owner.get("/console/audit", params={"actor": own}).text
    assert "staff.role_changed" in mine and "order.created" not in mine
    tokens = owner.get("/console/audit", params={"actor_type": "staff_token"}).text
    assert "order.created" in tokens and "staff.role_changed" not in tokens
    typed = owner.get("/console/audit", params={"type": "staff.*"}).text
    assert "staff.disabled" in typed and "order.created" not in typed
    assert "No change matches." in owner.get("/console/audit", params={
        "since": "2001-01-01", "until": "2001-01-31"}).text
    assert owner.get("/console/audit", params={"cursor": "nonsense"}).status_code == 422
    assert "审计日志" in viewer.get("/console/audit", params={"lang": "zh"}).text
