"""The console's staff accounts and audit trail over HTTP: an owner invites someone (the first
password shown once signs them in), changes a role and disables and enables an account (its
session ends at once), never their own; staff and read-only accounts are refused every such
write; the audit trail lists each change with who made it, filtered by actor, type and day.
On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from console_support import PASSWORD, form_token, sign_in
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


def test_passwords_an_owner_resets_one_and_everyone_changes_their_own(browser_as, app,
                                                                     sessions):
    owner = browser_as("owner")
    token = form_token(owner.get("/console/staff").text)
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        clerk_id = platform.create_staff(s, "acme", "clerk@acme.example", PASSWORD, "staff").id
        own = [a for a in platform.list_staff(s, tenant) if a.role == "owner"][0].id
    with TestClient(app) as clerk, TestClient(app) as clerk_phone:
        sign_in(clerk, "clerk@acme.example")
        sign_in(clerk_phone, "clerk@acme.example")
        page = clerk.get("/console/staff").text
        assert 'action="/console/password"' in page and "/password\"" not in page.replace(
            'action="/console/password"', "")  # their own form; no reset buttons
        ctoken = form_token(page)
        # a staff account may not reset another's password
        r = clerk.post(f"/console/staff/{own}/password", data={"csrf_token": ctoken})
        assert r.status_code == 403 and "Ask an owner" in r.text

        def change(client, current, new, again=None, csrf=None):
            return client.post("/console/password", follow_redirects=False, data={
                "csrf_token": csrf or ctoken, "current_password": current,
                "new_password": new, "new_password_again": new if again is None else again})

        assert change(clerk, PASSWORD, "another long one", csrf="forged").status_code == 403
        r = change(clerk, PASSWORD, "another long one", "another long two")
        assert r.status_code == 422 and "The two new passwords differ" in r.text
        r = change(clerk, PASSWORD, "short")
        assert r.status_code == 422 and "10 to 1024 characters" in r.text
        r = change(clerk, "not the password", "another long one")
        assert r.status_code == 422 and "The current password is wrong" in r.text
        with transaction(sessions) as s:  # the wrong guess was counted toward the lock
            from haina.platform.models import StaffAccount
            assert s.get(StaffAccount, clerk_id).failed_logins == 1
        r = change(clerk, PASSWORD, "another long one")
        assert r.status_code == 303, r.text
        assert "Your password is changed (clerk@acme.example)" in clerk.get(
            r.headers["location"]).text  # this session stays signed in
        assert 'type="password"' in clerk_phone.get("/console").text  # the other one ended
        sign_in(clerk_phone, "clerk@acme.example", "another long one")
        # the owner resets it: a new password shown once, every session of the clerk ends
        r = owner.post(f"/console/staff/{clerk_id}/password", data={"csrf_token": token})
        assert r.status_code == 200 and "<h1>Password reset</h1>" in r.text, r.text[-2000:]
        made = re.search(r'<code id="password">([^<]+)</code>', r.text).group(1)
        assert len(made) >= 16 and made not in owner.get("/console/staff").text
        for browser in (clerk, clerk_phone):
            assert 'type="password"' in browser.get("/console").text
        refused = clerk.post("/login", data={"email": "clerk@acme.example",
                                             "password": "another long one", "next": "/console",
                                             "csrf_token": form_token(clerk.get(
                                                 "/console").text)}, follow_redirects=False)
        assert refused.status_code != 303
        sign_in(clerk, "clerk@acme.example", made)
    # never the owner's own (they change it with the form), nor another merchant's account
    r = owner.post(f"/console/staff/{own}/password", data={"csrf_token": token})
    assert r.status_code == 409 and "ask another owner" in r.text
    from support import make_tenant
    make_tenant(sessions, "globex")
    with transaction(sessions) as s:
        theirs = platform.create_staff(s, "globex", "boss@globex.example", PASSWORD, "owner").id
    assert owner.post(f"/console/staff/{theirs}/password",
                      data={"csrf_token": token}).status_code == 404
    # a read-only account changes its own password too
    viewer = browser_as("read-only")
    r = viewer.post("/console/password", follow_redirects=False, data={
        "csrf_token": form_token(viewer.get("/console/staff").text),
        "current_password": PASSWORD, "new_password": "viewer's new one",
        "new_password_again": "viewer's new one"})
    assert r.status_code == 303
    zh = viewer.get("/console/staff", params={"lang": "zh"}).text
    assert "修改我的密码" in zh
    # the audit trail: each change with who made it, never a password
    trail = owner.get("/console/audit", params={"type": "staff.password_*"}).text
    for shown in ("staff.password_changed", "staff.password_reset", "clerk@acme.example",
                  "read-only@acme.example", "owner@acme.example"):
        assert shown in trail, shown
    assert made not in trail and "another long one" not in trail
