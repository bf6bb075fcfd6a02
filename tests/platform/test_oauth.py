"""OAuth 2 for service providers' apps (issue 10): staff sign-in, the consent screen, the
authorization code with PKCE (S256 only), refresh rotation with reuse detection, revocation,
introspection, metadata, client credentials, uninstall — on SQLite and PostgreSQL, through the
real pages and endpoints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from oauth_flow import (
    authorize_url,
    consent,
    exchange,
    form_fields,
    install,
    login,
    make_app,
    make_staff,
    pkce,
    redirect_params,
)
from support import make_tenant


@pytest.fixture
def browser(app):
    # Authlib serves OAuth over https only, or http on a loopback host (RFC 8252)
    with TestClient(app, base_url="http://localhost") as c:
        yield c


@pytest.fixture
def shop(sessions):
    tenant, token = make_tenant(sessions, "acme")
    make_staff(sessions, "acme", "owner@acme.example")
    return tenant, token


def test_the_whole_dance_gives_a_token_for_the_granted_merchant_and_scopes(browser, sessions, shop):
    client_id, secret = make_app(sessions)
    verifier, challenge = pkce()
    url = authorize_url(client_id, challenge)
    # no session: to the sign-in page, which comes back here afterwards
    r = browser.get(url, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith("/login?next=")
    page = browser.get(r.headers["location"])
    assert page.status_code == 200 and page.headers["x-frame-options"] == "DENY"
    fields = form_fields(page.text, "/login")
    assert {"email", "password", "csrf_token", "next"} <= set(fields)
    assert fields["next"] == url
    r = login(browser, "Owner@Acme.example", next_url=url)
    assert r.status_code == 303 and r.headers["location"] == url
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("samesite", "SameSite")
    consent_page = browser.get(url)
    assert "Win-back" in consent_page.text and "see your orders and shipments" in consent_page.text
    assert 'name="decision" value="allow"' in consent_page.text
    params = redirect_params(consent(browser, url))
    assert params["state"] == "st-1" and params["code"]
    answer = exchange(browser, client_id, secret, params["code"], verifier)
    assert answer.status_code == 200, answer.text
    token = answer.json()
    assert set(token) >= {"access_token", "refresh_token", "expires_in", "scope"}
    assert token["scope"] == "orders:read members:read" and token["expires_in"] == 3600
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert browser.get("/v1/orders", headers=bearer).status_code == 200
    assert browser.get("/v1/members", headers=bearer).status_code == 200
    denied = browser.get("/v1/products", headers=bearer)
    assert denied.status_code == 403 and denied.json()["required_scope"] == "catalog:read"
    assert browser.post("/v1/members", json={"name": "x"}, headers=bearer).status_code == 403
    # the grant is listed for the merchant
    grants = browser.get("/v1/app-grants", headers={"Authorization": f"Bearer {shop[1]}"}).json()
    assert [g["app_id"] for g in grants["data"]] == [client_id]
    assert grants["data"][0]["scopes"] == ["members:read", "orders:read"]


def test_the_consent_page_speaks_chinese(browser, sessions, shop):
    client_id, _ = make_app(sessions)
    _, challenge = pkce()
    url = authorize_url(client_id, challenge) + "&lang=zh"
    login(browser, "owner@acme.example", next_url=url)
    page = browser.get(url)
    assert "查看订单和发货" in page.text and "同意并安装" in page.text


@pytest.mark.parametrize("case", ["missing", "plain"])
def test_pkce_is_required_and_plain_refused(browser, sessions, shop, case):
    client_id, _ = make_app(sessions)
    verifier, _ = pkce()
    url = (authorize_url(client_id, None, method=None) if case == "missing"
           else authorize_url(client_id, verifier, method="plain"))
    login(browser, "owner@acme.example", next_url=url)
    r = browser.get(url, follow_redirects=False)
    params = redirect_params(r)  # the error goes back to the (registered) redirect URI
    assert params["error"] == "invalid_request" and params["state"] == "st-1"
    assert ("S256" in params["error_description"])


@pytest.mark.parametrize("verifier", [None, "wrong"])
def test_a_missing_or_wrong_verifier_is_refused(browser, sessions, shop, verifier):
    client_id, secret = make_app(sessions)
    right, challenge = pkce()
    url = authorize_url(client_id, challenge)
    login(browser, "owner@acme.example", next_url=url)
    code = redirect_params(consent(browser, url))["code"]
    sent = None if verifier is None else pkce()[0]
    r = exchange(browser, client_id, secret, code, sent)
    assert r.status_code == 400
    assert r.json()["error"] == ("invalid_request" if verifier is None else "invalid_grant")


def test_a_code_works_once_and_its_reuse_revokes_what_it_gave(browser, sessions, shop):
    client_id, secret = make_app(sessions)
    verifier, challenge = pkce()
    url = authorize_url(client_id, challenge)
    login(browser, "owner@acme.example", next_url=url)
    code = redirect_params(consent(browser, url))["code"]
    first = exchange(browser, client_id, secret, code, verifier)
    assert first.status_code == 200
    again = exchange(browser, client_id, secret, code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert browser.get("/v1/orders", headers=bearer).status_code == 401


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(browser, sessions, shop):
    client_id, secret = make_app(sessions)
    first = install(browser, sessions, client_id, secret, "owner@acme.example")
    r = browser.post("/oauth/token", data={"grant_type": "refresh_token",
                                           "refresh_token": first["refresh_token"]},
                     auth=(client_id, secret))
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert browser.get("/v1/orders", headers={
        "Authorization": f"Bearer {second['access_token']}"}).status_code == 200
    # the old refresh token again: theft is assumed, the whole family ends
    r = browser.post("/oauth/token", data={"grant_type": "refresh_token",
                                           "refresh_token": first["refresh_token"]},
                     auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    for t in (first["access_token"], second["access_token"]):
        assert browser.get("/v1/orders", headers={"Authorization": f"Bearer {t}"}).status_code == 401
    r = browser.post("/oauth/token", data={"grant_type": "refresh_token",
                                           "refresh_token": second["refresh_token"]},
                     auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_uninstall_revokes_every_token_and_stops_the_apps_webhooks(browser, sessions, shop):
    scopes = "orders:read members:read webhooks:write"
    client_id, secret = make_app(sessions, scopes=scopes)
    token = install(browser, sessions, client_id, secret, "owner@acme.example", scope=scopes)
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    assert browser.get("/v1/orders", headers=bearer).status_code == 200
    hook = browser.post("/v1/webhook-endpoints", headers=bearer, json={
        "url": "https://app.example/hooks", "event_types": ["order.*"]})
    assert hook.status_code == 201, hook.text
    staff = {"Authorization": f"Bearer {shop[1]}"}
    mine = browser.post("/v1/webhook-endpoints", headers=staff, json={
        "url": "https://shop.example/hooks", "event_types": ["order.*"]}).json()
    grant = browser.get("/v1/app-grants", headers=staff).json()["data"][0]
    r = browser.post(f"/v1/app-grants/{grant['id']}/uninstall", headers=staff)
    assert r.status_code == 200 and r.json()["status"] == "uninstalled"
    assert browser.get("/v1/orders", headers=bearer).status_code == 401
    r = browser.post("/oauth/token", data={"grant_type": "refresh_token",
                                           "refresh_token": token["refresh_token"]},
                     auth=(client_id, secret))
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    again = browser.post(f"/v1/app-grants/{grant['id']}/uninstall", headers=staff)
    assert again.status_code == 409
    # the app's endpoint at this merchant is disabled; the merchant's own is untouched
    app_hook = browser.get(f"/v1/webhook-endpoints/{hook.json()['id']}", headers=staff).json()
    assert app_hook["disabled"] is True
    own = browser.get(f"/v1/webhook-endpoints/{mine['id']}", headers=staff).json()
    assert own["disabled"] is False
    events = browser.get("/v1/events", params={"type": "app.*"}, headers=staff).json()["data"]
    assert [e["type"] for e in events] == ["app.uninstalled", "app.installed"]


def test_an_unregistered_redirect_uri_is_refused_on_the_page_not_redirected_to(
        browser, sessions, shop):
    client_id, _ = make_app(sessions)
    _, challenge = pkce()
    url = authorize_url(client_id, challenge, redirect_uri="https://evil.example/cb")
    login(browser, "owner@acme.example", next_url=url)
    r = browser.get(url, follow_redirects=False)
    assert r.status_code == 400 and "evil.example" not in r.headers.get("location", "")
    assert "invalid_request" in r.text


def test_a_scope_the_app_did_not_register_is_refused(browser, sessions, shop):
    client_id, _ = make_app(sessions, scopes="orders:read")
    _, challenge = pkce()
    url = authorize_url(client_id, challenge, scope="orders:read payments:write")
    login(browser, "owner@acme.example", next_url=url)
    assert redirect_params(browser.get(url, follow_redirects=False))["error"] == "invalid_scope"


def test_forms_without_their_csrf_token_are_refused(browser, sessions, shop):
    client_id, _ = make_app(sessions)
    page = browser.get("/login")
    fields = form_fields(page.text, "/login")
    fields.update(email="owner@acme.example", password="correct horse battery", csrf_token="")
    assert browser.post("/login", data=fields, follow_redirects=False).status_code == 403
    _, challenge = pkce()
    url = authorize_url(client_id, challenge)
    assert login(browser, "owner@acme.example", next_url=url).status_code == 303
    fields = form_fields(browser.get(url).text, "/oauth/authorize")
    fields.update(decision="allow", csrf_token="forged")
    r = browser.post("/oauth/authorize", data=fields, follow_redirects=False)
    assert r.status_code == 403 and "location" not in r.headers


def test_the_denied_consent_returns_access_denied(browser, sessions, shop):
    client_id, _ = make_app(sessions)
    _, challenge = pkce()
    url = authorize_url(client_id, challenge)
    login(browser, "owner@acme.example", next_url=url)
    params = redirect_params(consent(browser, url, decision="deny"))
    assert params["error"] == "access_denied" and "code" not in params


def test_only_an_owner_may_install(browser, sessions, shop):
    make_staff(sessions, "acme", "clerk@acme.example", role="staff")
    client_id, _ = make_app(sessions)
    _, challenge = pkce()
    url = authorize_url(client_id, challenge)
    login(browser, "clerk@acme.example", next_url=url)
    page = browser.get(url)
    assert page.status_code == 200 and 'value="allow"' not in page.text


def test_repeated_failed_sign_ins_lock_the_account(browser, sessions, shop):
    for _ in range(5):
        assert login(browser, "owner@acme.example", "wrong password!").status_code == 401
    locked = login(browser, "owner@acme.example")  # even the right password, for now
    assert locked.status_code == 429
    unknown = login(browser, "nobody@acme.example")
    assert unknown.status_code == 401


def test_sign_in_never_redirects_off_site(browser, sessions, shop):
    r = login(browser, "owner@acme.example", next_url="//evil.example/x")
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_logout_ends_the_session(browser, sessions, shop):
    client_id, _ = make_app(sessions)
    _, challenge = pkce()
    url = authorize_url(client_id, challenge)
    login(browser, "owner@acme.example", next_url=url)
    assert browser.get(url).status_code == 200
    fields = form_fields(browser.get("/logout").text, "/logout")
    assert browser.post("/logout", data=fields).status_code == 200
    assert browser.get(url, follow_redirects=False).status_code == 302


def test_revocation_introspection_and_metadata(browser, sessions, shop):
    client_id, secret = make_app(sessions)
    other_id, other_secret = make_app(sessions, name="Other")
    token = install(browser, sessions, client_id, secret, "owner@acme.example")
    meta = browser.get("/.well-known/oauth-authorization-server").json()
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint"] == "http://localhost/oauth/token"
    from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
    AuthorizationServerMetadata(meta).validate()
    r = browser.post("/oauth/introspect", data={"token": token["access_token"]},
                     auth=(client_id, secret))
    assert r.status_code == 200 and r.json()["active"] is True
    assert r.json()["client_id"] == client_id and r.json()["haina_tenant_id"] == shop[0].id
    # another app learns nothing of it
    r = browser.post("/oauth/introspect", data={"token": token["access_token"]},
                     auth=(other_id, other_secret))
    assert r.json() == {"active": False}
    r = browser.post("/oauth/revoke", data={"token": token["access_token"]},
                     auth=(client_id, secret))
    assert r.status_code == 200
    assert browser.get("/v1/orders", headers={
        "Authorization": f"Bearer {token['access_token']}"}).status_code == 401
    r = browser.post("/oauth/introspect", data={"token": token["access_token"]},
                     auth=(client_id, secret))
    assert r.json() == {"active": False}
    # a wrong secret is no client at all
    r = browser.post("/oauth/introspect", data={"token": token["refresh_token"]},
                     auth=(client_id, "hnsec_wrong"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_client_credentials_reach_the_apps_own_routes_and_no_merchant(browser, sessions, shop):
    client_id, secret = make_app(sessions)
    install(browser, sessions, client_id, secret, "owner@acme.example")
    r = browser.post("/oauth/token", data={"grant_type": "client_credentials"},
                     auth=(client_id, secret))
    assert r.status_code == 200, r.text
    own = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert "refresh_token" not in r.json()
    installs = browser.get("/v1/apps/me/installations", headers=own)
    assert installs.status_code == 200
    assert [i["tenant_slug"] for i in installs.json()] == ["acme"]
    assert browser.get("/v1/apps/me", headers=own).json()["client_id"] == client_id
    r = browser.get("/v1/orders", headers=own)
    assert r.status_code == 403 and r.json()["type"].endswith("/no-merchant")
    # a merchant's token is not an app's own
    r = browser.get("/v1/apps/me", headers={"Authorization": f"Bearer {shop[1]}"})
    assert r.status_code == 403


def test_the_worker_purges_expired_sign_in_sessions(browser, sessions, shop):
    import datetime as dt

    from haina.core.db import transaction
    from haina.platform import staff
    from haina.worker import run_once
    login(browser, "owner@acme.example")
    with transaction(sessions) as s:
        who = staff.authenticate_staff(s, "owner@acme.example", "correct horse battery")
        staff.open_session(s, who.id, now=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))  # long expired
    assert run_once(sessions)["staff_sessions_purged"] == 1
    assert browser.get("/logout").text.count("owner@acme.example") == 1  # the live one stays
