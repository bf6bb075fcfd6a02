"""The merchant console over HTTP (the browser tests drive it in chromium): the sign-in
contract, every page for a signed-in account, roles and CSRF on every form, languages, and one
merchant never seeing another's rows. On SQLite and PostgreSQL."""

from __future__ import annotations

import re

from console_support import form_token
from fastapi.testclient import TestClient
from sqlalchemy import text

from haina.core.db import transaction
from haina.marketing import service as marketing
from haina.webhooks import service as webhooks
from haina.webhooks.delivery import Dispatcher
from haina.webhooks.schemas import EndpointIn

PAGES = ("/console", "/console/members", "/console/lifecycle", "/console/orders",
         "/console/payments", "/console/carts", "/console/staff", "/console/audit",
         "/console/storefront", "/console/settings", "/console/products",
         "/console/coupons", "/console/promotions", "/console/service-points",
         "/console/crossborder", "/console/data-requests", "/console/apps", "/console/webhooks")


def test_the_console_without_a_session_shows_a_sign_in_form_with_a_password_field(app, shop):
    with TestClient(app) as anonymous:
        for path in (*PAGES, f"/console/members/{shop['member']['id']}"):
            r = anonymous.get(path)
            assert r.status_code == 200
            assert '<form method="post" action="/login">' in r.text
            assert 'type="password"' in r.text and 'name="csrf_token"' in r.text
            assert f'name="next" value="{path}"' in r.text  # back here after signing in
            assert shop["member"]["name"] not in r.text
        assert anonymous.get("/", follow_redirects=False).headers["location"] == "/console"


def test_a_signed_in_owner_sees_every_page_with_the_shops_data(browser_as, shop, client):
    r = client.post("/v1/promotions", json={
        "name": "满300减40", "kind": "threshold", "repeat": True,
        "tiers": [{"min_subtotal": "300.00", "off": "40.00"}],
        "budget": {"amount": "5000.00", "currency": "CNY"}})
    assert r.status_code == 201, r.text
    owner = browser_as("owner")
    for path in PAGES:
        r = owner.get(path)
        assert r.status_code == 200, (path, r.text[:500])
        assert r.headers["x-frame-options"] == "DENY"
        assert "script-src 'none'" in r.headers["content-security-policy"]
        assert 'aria-current="page"' in r.text and "owner@acme.example" in r.text
    dashboard = owner.get("/console").text
    assert dashboard.count('<svg class="chart"') == 3 and "CN¥900" in dashboard
    members = owner.get("/console/members", params={"q": "li"}).text
    assert "Li Lei" in members and f"/console/members/{shop['member']['id']}" in members
    assert "Li Lei" not in owner.get("/console/members", params={"q": "zhang"}).text
    member = owner.get(f"/console/members/{shop['member']['id']}").text
    assert shop["order"]["id"] in member and "No scores yet" in member
    assert "900" in member  # the points of a ¥900 purchase
    order = owner.get(f"/console/orders/{shop['order']['id']}").text
    for shown in ("order.created", "order.paid", shop["intent"]["id"], "platform_cash",
                  "Not shipped yet"):
        assert shown in order, shown
    promotions = owner.get("/console/promotions").text
    assert "满300减40" in promotions and "spend threshold" in promotions
    assert "CN¥0.00 / CN¥5,000.00" in promotions
    paid = owner.get("/console/orders", params={"status": "paid", "since": "2000-01-01"}).text
    assert shop["order"]["id"] in paid
    assert shop["order"]["id"] not in owner.get("/console/orders",
                                                 params={"status": "cancelled"}).text


def test_another_merchants_rows_are_not_found(browser_as, shop, sessions, app):
    from support import make_tenant
    _, token = make_tenant(sessions, "globex")
    with TestClient(app) as other:
        other.headers["Authorization"] = f"Bearer {token}"
        other.post("/v1/products", json={"sku": "G-1", "title": "G", "stock": 3,
                                         "price": {"amount": "10.00", "currency": "CNY"}})
        theirs = other.post("/v1/members", json={"name": "Globex Buyer"}).json()["id"]
        order = other.post("/v1/orders", json={"lines": [{"sku": "G-1", "quantity": 1}]}).json()
    owner = browser_as("owner")
    for path in (f"/console/members/{theirs}", f"/console/orders/{order['id']}"):
        r = owner.get(path)
        assert r.status_code == 404 and "Globex" not in r.text
    assert "Globex Buyer" not in owner.get("/console/members").text


def _coupon(code: str, **extra: str) -> dict[str, str]:
    return {"code": code, "kind": "percent", "percent": "15", "min_spend": "100.00",
            "usage_limit": "50", "ends_on": "2030-12-31", "description": "Welcome", **extra}


def test_staff_create_coupons_and_a_wrong_one_is_explained(browser_as, shop, sessions):
    staff = browser_as("staff")
    token = form_token(staff.get("/console/coupons").text)
    r = staff.post("/console/coupons", data={**_coupon("WELCOME15"), "csrf_token": token},
                   follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/coupons?created=WELCOME15"
    page = staff.get(r.headers["location"]).text
    assert "Coupon WELCOME15 created." in page and "15% off" in page
    bad = staff.post("/console/coupons", data={**_coupon("BROKEN", percent=""),
                                               "csrf_token": token})
    assert bad.status_code == 422 and "The coupon was not created" in bad.text
    assert 'value="BROKEN"' in bad.text  # the form keeps what was typed
    again = staff.post("/console/coupons", data={**_coupon("welcome15"), "csrf_token": token})
    assert again.status_code == 409 and "WELCOME15&#39; exists" in again.text
    with transaction(sessions) as s:
        from haina.platform import service as platform
        tenant = platform.tenant_for_slug(s, "acme")
        assert [c.code for c in marketing.list_coupons(s, tenant).data] == ["WELCOME15"]


def test_read_only_accounts_see_no_forms_and_every_write_is_refused(browser_as, shop, sessions):
    viewer = browser_as("read-only")
    page = viewer.get("/console/coupons").text
    assert 'action="/console/coupons"' not in page and "can look but not change" in page
    token = form_token(page)  # the sign-out form's: a valid token of this session
    for path, data in (("/console/coupons", _coupon("SNEAKY")),
                       ("/console/webhooks/deliveries/whd_x/replay", {}),
                       ("/console/apps/grants/grant_x/uninstall", {})):
        r = viewer.post(path, data={**data, "csrf_token": token})
        assert r.status_code == 403 and "read-only" in r.text, path
    staff = browser_as("staff")
    r = staff.post("/console/apps/grants/grant_x/uninstall",
                   data={"csrf_token": form_token(staff.get("/console/apps").text)})
    assert r.status_code == 403  # removing an app is an owner's decision
    with transaction(sessions) as s:
        assert s.execute(text("SELECT count(*) FROM coupons")).scalar() == 0


def test_a_form_without_the_sessions_csrf_token_is_refused(browser_as, shop, app):
    owner = browser_as("owner")
    for token in ("", "forged"):
        r = owner.post("/console/coupons", data={**_coupon("CSRF1"), "csrf_token": token})
        assert r.status_code == 403 and "expired or did not come from this site" in r.text
    with TestClient(app) as anonymous:  # no session: back to the sign-in form
        r = anonymous.post("/console/coupons", data=_coupon("CSRF2"), follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console"


def test_an_owner_replays_a_failed_webhook_delivery(browser_as, shop, sessions):
    from haina.platform import service as platform
    with transaction(sessions) as s:
        tenant = platform.tenant_for_slug(s, "acme")
        webhooks.create_endpoint(s, tenant, EndpointIn(url="http://127.0.0.1:9/down",
                                                       event_types=["order.*"]))
    jobs = Dispatcher(sessions).fan_out(100)
    assert jobs
    with transaction(sessions) as s:  # as if every attempt had failed (the schedule: tests/webhooks)
        s.execute(text("UPDATE webhook_deliveries SET status = 'failed', attempts = 8, "
                       "last_error = 'connection refused'"))
    owner = browser_as("owner")
    page = owner.get("/console/webhooks", params={"status": "failed"}).text
    delivery = jobs[0].delivery_id
    assert delivery in page and "connection refused" in page
    r = owner.post(f"/console/webhooks/deliveries/{delivery}/replay",
                   data={"csrf_token": form_token(page), "status": "failed"},
                   follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/webhooks?replayed={delivery}&status=failed"
    with transaction(sessions) as s:
        again = webhooks.get_delivery(s, platform.tenant_for_slug(s, "acme"), delivery)
        assert again.status == "pending" and again.attempts == 0
        events = s.execute(text("SELECT count(*) FROM events WHERE type LIKE 'webhook%'")).scalar()
        assert events == 0  # a replay is not an event of its own; its audit is the delivery
    missing = owner.post("/console/webhooks/deliveries/whd_nope/replay",
                         data={"csrf_token": form_token(page)})
    assert missing.status_code == 404


def test_language_switch_translates_pages_and_formats_money_and_dates(browser_as, shop):
    owner = browser_as("owner")
    english = owner.get("/console").text
    assert '<html lang="en">' in english and "Sales per week" in english
    chinese = owner.get("/console", params={"lang": "zh"})
    assert chinese.cookies.get("haina_lang") == "zh"
    assert '<html lang="zh-CN">' in chinese.text and "每周销售额" in chinese.text
    assert "¥900.00" in chinese.text and "CN¥" not in chinese.text
    later = owner.get(f"/console/orders/{shop['order']['id']}").text  # remembered
    assert "时间线" in later and re.search(r"\d{4}年\d{1,2}月\d{1,2}日", later)
    assert "已付款" in later  # the order's status, a word from data
    assert "Placed from" in owner.get("/console/orders", params={"lang": "en"}).text


def test_an_owner_uninstalls_an_app_from_the_apps_page(browser_as, shop, sessions):
    from support import app_token
    app_token(sessions, "acme", "orders:read members:read")
    owner = browser_as("owner")
    page = owner.get("/console/apps").text
    assert "An app" in page and "orders:read" in page
    grant = re.search(r'action="/console/apps/grants/([^/"]+)/uninstall"', page).group(1)
    r = owner.post(f"/console/apps/grants/{grant}/uninstall",
                   data={"csrf_token": form_token(page)}, follow_redirects=False)
    assert r.status_code == 303
    page = owner.get(r.headers["location"]).text
    assert "was uninstalled" in page and "/uninstall" not in page


    r = owner.post("/logout", data={"csrf_token": form_token(page)})  # and signs out
    assert r.status_code == 200
    assert 'type="password"' in owner.get("/console").text


def test_a_bad_address_is_answered_with_a_page_not_an_error(browser_as, shop):
    owner = browser_as("owner")
    r = owner.get("/console/orders", params={"cursor": "not-a-cursor", "status": "nonsense",
                                             "since": "yesterday"})
    assert r.status_code == 422 and "<h1>This could not be done</h1>" in r.text
    assert owner.get("/console/members", params={"stage": "x", "segment": "y"}).status_code == 200
    assert owner.get("/console/lifecycle/plots/holdout_fit.svg").status_code == 404  # no run yet
    assert owner.get("/console/lifecycle/plots/../../etc.svg").status_code == 404
